"""Candidate models in child runs, and the Bayesian fit end to end (slow: real MLflow store, PyMC)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline.commands.train import run_training as train
from pipeline.config import parse_config

pytestmark = pytest.mark.slow


def test_candidates_are_child_runs_and_the_best_is_refitted_and_registered(tracking_store: str) -> None:
    config = parse_config(
        {
            "data": {"source": "cdnow_sample"},
            "fit": {"candidates": [{"model": "bgnbd"}, {"model": "pareto_nbd"}, {"model": "mbgnbd"}]},
        }
    )
    result = train(config, "{}")
    assert result.promoted
    assert result.selection is not None
    table = result.selection.table.set_index("candidate")
    assert list(table.index) == ["bgnbd_mle", "pareto_nbd_mle", "mbgnbd_mle"]
    # Measured holdout log-likelihoods on the 1/10 sample: MBG/NBD is best, Pareto/NBD last.
    assert table["value"].to_dict() == pytest.approx(
        {"bgnbd_mle": -7573.59, "pareto_nbd_mle": -7576.54, "mbgnbd_mle": -7568.09}, abs=0.01
    )
    assert result.selection.winner == "mbgnbd_mle"
    assert result.calibration_fit.model == "mbgnbd"
    assert result.production_fit is not None
    assert result.production_fit.model == "mbgnbd"

    parent = mlflow.get_run(result.run_id)
    assert parent.data.tags["selection.winner"] == "mbgnbd_mle"
    assert parent.data.tags["selection.reason"].startswith(
        "mbgnbd_mle has the highest purchases_holdout_log_likelihood"
    )
    assert parent.data.tags["purchase_model"] == "mbgnbd"
    assert parent.data.metrics["mbgnbd_a"] == pytest.approx(result.calibration_fit.purchase.params.as_dict()["a"])
    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{result.run_id}'",
        output_format="list",
    )
    assert sorted(c.info.run_name for c in children) == ["bgnbd_mle", "mbgnbd_mle", "pareto_nbd_mle"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["candidate.status"] == "ok"
        assert "purchases_holdout_log_likelihood" in child.data.metrics
        assert "repeat_purchases_chi_square" in child.data.metrics
        assert child.data.metrics["purchases_holdout_log_likelihood"] == pytest.approx(
            table["value"][child.info.run_name]
        )

    # The registered model scores with MBG/NBD: a one-time buyer is not certainly alive.
    model = mlflow.pyfunc.load_model("models:/clv@champion")
    one_timer = pd.DataFrame(
        {"customer_id": ["x"], "frequency": [0.0], "recency": [0.0], "T": [30.0], "monetary_value": [0.0]}
    )
    assert model.predict(one_timer)["p_alive"][0] < 1
    assert MlflowClient().get_model_version("clv", "1").tags["gate.passed"] == "true"


def test_mcmc_fit_puts_credible_intervals_in_the_scores_and_gates_on_diagnostics(
    tracking_store: str, tmp_path: Path
) -> None:
    raw = {
        "data": {"source": "cdnow_sample"},
        "fit": {
            "method": "mcmc",
            "mcmc": {"chains": 2, "draws": 500, "tune": 500, "keep_draws": 40, "cores": 1, "seed": 5},
            "diagnostics": {"max_rhat": 1.1, "min_ess": 50, "max_divergences": 5},
        },
    }
    result = train(parse_config(raw), json.dumps(raw), output_dir=tmp_path / "out")
    assert result.promoted, [c.name for c in result.gate.failed]
    assert result.calibration_fit.diagnostics is not None
    run = mlflow.get_run(result.run_id)
    for name in ("mcmc_max_rhat", "mcmc_min_ess_bulk", "mcmc_divergences", "production_mcmc_max_rhat"):
        assert name in run.data.metrics, name
    assert run.data.tags["fit.method"] == "mcmc"
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    for name in ("p_alive", "expected_purchases_90d", "clv"):
        assert (scores[f"{name}_lower"] <= scores[name]).all()
        assert (scores[name] <= scores[f"{name}_upper"]).all()
        assert (scores[f"{name}_upper"] > scores[f"{name}_lower"]).any()
    # The registered model carries the draws: REST and batch scoring return the same intervals.
    model = mlflow.pyfunc.load_model("models:/clv@champion")
    columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    predicted = model.predict(result.prepared.full.loc[:, columns].head(20).reset_index(drop=True))
    pd.testing.assert_series_equal(predicted["clv_upper"], scores["clv_upper"].head(20), check_names=False, rtol=1e-12)

    # The same fit with a limit no chain can meet fails its gate and registers nothing.
    strict = raw | {"fit": raw["fit"] | {"diagnostics": {"min_ess": 1e9}}}  # type: ignore[operator]
    failed = train(parse_config(strict), json.dumps(strict))
    assert not failed.promoted
    assert "mcmc_min_ess_bulk_higher_than_1e09" in [c.name for c in failed.gate.failed]
    assert len(MlflowClient().search_model_versions("name='clv'")) == 1
