"""The whole job on the bundled CDNOW data against a real SQLite MLflow store (slow)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline.commands.train import run_training as train
from pipeline.config import Config, Criterion, ValidateConfig, config_as_dict
from tests.conftest import REPO, clean_env

pytestmark = pytest.mark.slow

FRESH_PROCESS = """
import os, sys
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/clv@champion")
frame = pd.read_parquet(sys.argv[1])
model.predict(frame).to_parquet(sys.argv[2])
print(sorted(m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")))
"""


RUN_PLOTS = (
    "churn_calibration",
    "purchase_tracking",
    "purchases_by_frequency",
    "repeat_purchases",
    "revenue_by_frequency",
)
RUN_TABLES = (
    "at_risk_valuable.sample.parquet",  # with --output the per-customer tables are samples in the run
    "churn_calibration.csv",
    "fit_attempts.csv",
    "holdout.sample.parquet",
    "holdout_by_frequency.csv",
    "production_fit_attempts.csv",
    "production_spend_fit_attempts.csv",
    "purchase_tracking.csv",
    "repeat_purchases.csv",
    "scores.sample.parquet",
    "spend_fit_attempts.csv",
)
"""What a default `clv train --output` stores in its run (the same before and after its writes were batched)."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Run `clv train` once on the default config, in its own folder with the default store."""
    folder = tmp_path_factory.mktemp("job")
    clv = Path(sys.executable).parent / "clv"
    env = clean_env()
    done = subprocess.run(
        [str(clv), "train", "--output", "out", "--summary", "out/summary.json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "registered  clv version 1, alias 'champion' moved" in done.stdout
    return folder, json.loads((folder / "out" / "summary.json").read_text())


def test_summary_json(trained: tuple[Path, dict[str, Any]]) -> None:
    _, summary = trained
    assert summary["promoted"] is True
    assert summary["version"] == 1
    assert summary["model_name"] == "clv"
    params = summary["parameters"]["calibration"]
    # BG/NBD on the full CDNOW master file, weeks, calibration to 1997-09-30 (measured with lifetimes).
    assert params["r"] == pytest.approx(0.25162, rel=1e-3)
    assert params["alpha"] == pytest.approx(4.78895, rel=1e-3)
    assert params["a"] == pytest.approx(0.72343, rel=1e-3)
    assert params["b"] == pytest.approx(2.16109, rel=1e-3)
    metrics = summary["metrics"]
    assert metrics["revenue_mae"] == pytest.approx(32.68, abs=0.05)
    assert metrics["baseline_repeat_spend_rate_revenue_mae"] == pytest.approx(42.18, abs=0.05)
    assert metrics["churn_auc"] == pytest.approx(0.7466, abs=5e-4)
    assert metrics["revenue_spearman"] == pytest.approx(0.4208, abs=5e-4)
    assert metrics["baseline_repeat_spend_rate_revenue_spearman"] == pytest.approx(0.4788, abs=5e-4)
    assert metrics["baseline_historical_clv_revenue_mae"] == pytest.approx(36.20, abs=0.05)
    assert metrics["revenue_gini"] == pytest.approx(0.6722, abs=5e-4)
    assert metrics["purchases_cumulative_pct_error"] == pytest.approx(-6.06, abs=0.05)
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["beats_historical_baseline"]["passed"] is True
    assert all(c["passed"] for c in checks.values())
    data = summary["data"]
    assert (data["rows_in"], data["rows_used"], data["customers_calibration"]) == (69_659, 69_659, 23_570)
    stages = summary["stage_seconds"]
    assert list(stages) == ["prepare", "calibration_fit", "champion", "production_fit", "score", "business"]
    assert all(seconds >= 0 for seconds in stages.values())


def test_output_tables(trained: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = trained
    scores = pd.read_parquet(folder / "out" / "scores.parquet")
    holdout = pd.read_parquet(folder / "out" / "holdout.parquet")
    assert len(scores) == len(holdout) == 23_570
    for column in (
        "customer_id",
        "p_alive",
        "churn_risk",
        "risk_tier",
        "expected_purchases_30d",
        "expected_purchases_90d",
        "expected_purchases_365d",
        "expected_order_value",
        "clv",
        "historical_clv",
        "clv_30d",
        "clv_60d",
        "clv_90d",
        "clv_365d",
        "value_segment",
    ):
        assert column in scores.columns
    assert scores.drop(columns=["customer_id", "risk_tier"]).notna().all().all()
    for column in (
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "actual_purchases",
        "actual_revenue",
        "expected_purchases",
        "expected_revenue",
        "p_alive",
    ):
        assert column in holdout.columns
    assert holdout["actual_purchases"].sum() == 19_684


def test_run_and_registry_in_the_default_store(trained: tuple[Path, dict[str, Any]]) -> None:
    folder, summary = trained
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(str(summary["run_id"]))
    assert run.info.status == "FINISHED"
    assert run.data.tags["gate.passed"] == "True"
    assert len(run.data.tags["data.fingerprint"]) == 64
    assert run.data.metrics["bgnbd_r"] == pytest.approx(0.25162, rel=1e-3)
    assert {f"stage_seconds_{s}" for s in ("prepare", "calibration_fit", "score")} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "ledger.json", "plots", "tables", "report.html"}
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {f"plots/{name}.png" for name in RUN_PLOTS}
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert tables == {f"tables/{name}" for name in RUN_TABLES}
    # each figure is rendered once: the run's PNG is the very image the report shows
    report = Path(client.download_artifacts(run.info.run_id, "report.html", str(folder))).read_text(encoding="utf-8")
    for path in sorted(plots - {"plots/repeat_purchases.png"}):
        png = Path(client.download_artifacts(run.info.run_id, path, str(folder / "downloaded"))).read_bytes()
        assert base64.b64encode(png).decode("ascii") in report, path
    version = client.get_model_version_by_alias("clv", "champion")
    assert int(version.version) == 1
    assert version.tags["gate.passed"] == "true"
    assert (folder / "mlartifacts").is_dir()


def test_champion_loads_and_predicts_in_a_fresh_process(trained: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = trained
    scores = pd.read_parquet(folder / "out" / "scores.parquet")
    holdout = pd.read_parquet(folder / "out" / "holdout.parquet")
    customers = holdout[["customer_id", "frequency", "recency", "T", "monetary_value"]].head(50)
    customers.to_parquet(folder / "in.parquet")
    env = clean_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder / "in.parquet"), str(folder / "pred.parquet")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", "the registered model must not need the pipeline package"
    predicted = pd.read_parquet(folder / "pred.parquet")
    assert len(predicted) == 50
    pipeline_only = {"historical_clv", "clv_30d", "clv_60d", "clv_90d", "clv_365d", "value_segment"}
    assert set(scores.columns) - pipeline_only == set(predicted.columns)
    assert predicted["p_alive"].between(0, 1).all()


def test_gate_failure_registers_nothing(tracking_store: str, tmp_path: Path) -> None:
    strict = ValidateConfig(criteria=(Criterion(metric="churn_auc", threshold=0.99, direction="higher"),))
    config = Config(data={"source": "cdnow_sample"}, validate=strict)  # type: ignore[arg-type]
    result = train(config, json.dumps(config_as_dict(config)), output_dir=tmp_path / "out")
    assert result.exit_code == 1
    assert not result.promoted
    assert [c.name for c in result.gate.failed] == ["churn_auc_higher_than_0.99"]
    assert MlflowClient().search_registered_models() == []
    assert (tmp_path / "out" / "holdout.parquet").exists()
    assert not (tmp_path / "out" / "scores.parquet").exists()
    assert mlflow.get_run(result.run_id).data.tags["gate.passed"] == "False"


def test_failed_gate_keeps_the_existing_champion(tracking_store: str) -> None:
    config = Config(data={"source": "cdnow_sample"})  # type: ignore[arg-type]
    first = train(config, "{}")
    assert first.promoted
    assert first.version == 1
    strict = ValidateConfig(criteria=(Criterion(metric="revenue_mae_skill", threshold=0.9, direction="higher"),))
    second = train(config.model_copy(update={"validate_": strict}), "{}")
    assert second.exit_code == 1
    client = MlflowClient()
    assert int(client.get_model_version_by_alias("clv", "champion").version) == 1
    assert len(client.search_model_versions("name='clv'")) == 1


def test_same_input_and_config_give_identical_results_and_a_recognisable_rerun(
    tracking_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    config = Config(data={"source": "cdnow_sample"})  # type: ignore[arg-type]
    first, second = train(config, "{}"), train(config, "{}")
    assert first.calibration_fit.params() == second.calibration_fit.params()
    assert first.validation.metrics == second.validation.metrics
    assert main(["compare"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(second.run_id[:8])
    assert f"rerun of {first.run_id[:8]} (same data and config)" in lines[1]
    assert "rerun of" not in lines[2]
    run = mlflow.get_run(second.run_id)
    assert run.data.tags["data.fingerprint"] == first.data.fingerprint
    assert run.data.metrics["rows_in"] == 6919


def test_spark_engine_trains_the_same_model(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """`clv train --config configs/spark-example.yaml`: Spark local mode, the DuckDB job's numbers exactly."""
    pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")
    duck_folder, duck = trained
    clv = Path(sys.executable).parent / "clv"
    done = subprocess.run(
        [
            str(clv),
            "train",
            "--config",
            str(REPO / "configs" / "spark-example.yaml"),
            "--output",
            "out",
            "--summary",
            "out/summary.json",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "registered  clv version 1, alias 'champion' moved" in done.stdout
    ours = json.loads((tmp_path / "out" / "summary.json").read_text())
    for key in ("data", "parameters", "log_likelihood", "metrics", "checks", "promoted"):
        assert ours[key] == duck[key], key
    # Scored on the executors, written by them as a Parquet folder: the DuckDB job's scores exactly.
    assert (tmp_path / "out" / "scores.parquet" / "_SUCCESS").exists()
    spark_scores = pd.read_parquet(tmp_path / "out" / "scores.parquet").sort_values("customer_id", ignore_index=True)
    duck_scores = pd.read_parquet(duck_folder / "out" / "scores.parquet")
    pd.testing.assert_frame_equal(spark_scores, duck_scores[spark_scores.columns], check_exact=True)
    assert not list((tmp_path / "out").glob(".clv-scores-*"))
