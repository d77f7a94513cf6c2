"""Every claimed refusal, run where the job runs it: each test fails when the refusal's code is taken out.

The retries at the product's default and the alias moving last are in test_run_failures.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.fitted import FitError
from models.gamma_gamma import GammaGammaParams
from models.mle import check_mean_spend, fit_gamma_gamma
from pipeline.cli import main
from pipeline.engines import duckdb_prepare
from pipeline.engines.prepared import Ledger, ReasonCounts, reconciled_ledger
from tests.conftest import clean_env, clv_command

HEADER = "customer_id,timestamp,amount"


def _heavy_tailed_spend() -> tuple[np.ndarray, np.ndarray]:
    """Spend rates Gamma(0.9, rate 15) across customers: Gamma-Gamma's q comes out below 1."""
    rng = np.random.default_rng(2)
    x = rng.geometric(0.4, 3000).astype(np.float64)
    return x, rng.gamma(4 * x, 1 / (x * rng.gamma(0.9, 1 / 15, 3000)))


def test_gamma_gamma_with_q_at_most_one_is_refused() -> None:
    x, m = _heavy_tailed_spend()
    with pytest.raises(FitError, match=r"q = 0\.873\d* <= 1, so the mean spend is undefined"):
        fit_gamma_gamma(x, m)
    with pytest.raises(FitError, match=r"q = 1 <= 1"):
        check_mean_spend(GammaGammaParams(2.0, 1.0, 10.0), "the boundary")
    assert check_mean_spend(GammaGammaParams(2.0, 1.0001, 10.0), "just above") == GammaGammaParams(2.0, 1.0001, 10.0)


def _rows(customers: int = 300, seed: int = 3) -> list[str]:
    """Two years of purchases by customers who first bought in 2020-Q1."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        first = np.datetime64("2020-01-01") + rng.integers(0, 90)
        days = np.unique(np.concatenate([[0], rng.integers(0, 545 - 90, rng.poisson(4))]))
        rows += [f"c{i:04d},{first + day},{rng.lognormal(3, 0.5):.2f}" for day in days]
    return rows


def _csv_config(folder: Path, rows: list[str], **prepare: object) -> Path:
    (folder / "tx.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    dates = {"calibration_end": "2020-12-31", "observation_end": "2021-06-30"} | prepare
    lines = ["data: {source: csv, path: tx.csv}", "prepare: " + json.dumps(dates)]
    (folder / "config.yaml").write_text("\n".join(lines) + "\n")
    return folder / "config.yaml"


def test_amounts_at_the_1e13_cap_are_counted_as_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without prepare.max_amount, |amount| >= 1e13 is quarantined as amount_too_large, each row counted."""
    rows = [*_rows(), "c0001,2020-03-01,1e13", "c0002,2020-03-02,-2.5e13", "c0003,2020-03-03,9.99e12"]
    config = _csv_config(tmp_path, rows)
    assert main(["prepare", "--config", str(config), "--output", str(tmp_path / "out")]) == 0
    ledger = json.loads((tmp_path / "out" / "ledger.json").read_text())
    assert ledger["quarantined"] == {"amount_too_large": 2}  # 9.99e12 is under the cap: kept
    assert ledger["rows_in"] == len(rows)
    assert ledger["rows_used"] == len(rows) - 2
    assert "2 amount_too_large" in capsys.readouterr().out


def test_a_row_reconciliation_mismatch_stops_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One input row that is neither used nor quarantined (injected: the count of rows in is one more than
    the rows classified) stops the job with exit 2 and one line, before anything is written."""

    def one_row_lost(rows_in: int, counts: ReasonCounts, netted: int, unmatched: int, source: str) -> Ledger:
        return reconciled_ledger(rows_in + 1, counts, netted, unmatched, source)

    monkeypatch.setattr(duckdb_prepare, "reconciled_ledger", one_row_lost)
    rows = _rows()
    config = _csv_config(tmp_path, rows)
    assert main(["prepare", "--config", str(config), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        f"clv: error: {tmp_path / 'tx.csv'}: row reconciliation failed: {len(rows) + 1} rows in, "
        f"{len(rows)} used + 0 quarantined"
    ]
    assert not (tmp_path / "out" / "ledger.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("correlated", [True, False], ids=["correlated", "independent"])
def test_spend_and_frequency_correlation_is_tagged_and_warned(
    tmp_path: Path, cdnow_sample: pd.DataFrame, correlated: bool
) -> None:
    """Gamma-Gamma assumes spend independent of frequency: the CDNOW sample with each order's amount made
    proportional to the customer's number of orders is tagged ``violated`` and warned about on stderr; the
    sample as it is is tagged ``ok`` without a warning."""
    feed = cdnow_sample.assign(timestamp=cdnow_sample["date"].dt.strftime("%Y-%m-%d"))
    if correlated:
        orders = feed.groupby("customer_id")["amount"].transform("size")
        feed = feed.assign(amount=(10.0 * orders * np.random.default_rng(5).lognormal(0, 0.2, len(feed))).round(2))
    feed[["customer_id", "timestamp", "amount"]].to_csv(tmp_path / "tx.csv", index=False)
    (tmp_path / "config.yaml").write_text("data: {source: csv, path: tx.csv}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = clean_env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [str(clv_command()), "train", "--config", "config.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("clv: warning: spend and frequency")]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("clv")
    assert experiment is not None
    (run,) = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    tag = run.data.tags["assumption.spend_frequency_independence"]
    correlation = run.data.metrics["spend_frequency_correlation"]
    if correlated:
        assert correlation > 0.3
        assert tag == "violated"
        assert len(warnings) == 1
        assert f"r = {correlation:.3f}, threshold 0.3" in warnings[0]
    else:
        assert abs(correlation) <= 0.3
        assert (tag, warnings) == ("ok", [])


@pytest.mark.slow
def test_the_production_refit_is_gated_on_its_mcmc_diagnostics_at_the_default_limits(tmp_path: Path) -> None:
    """An MCMC training with every default (2 chains x 500 draws; r-hat <= 1.05, ESS >= 100, no divergence):
    the full-history refit's diagnostics are gate checks of their own, recorded on the run and the version."""
    (tmp_path / "mcmc.yaml").write_text("data: {source: cdnow_sample}\nfit: {method: mcmc}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = clean_env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [str(clv_command()), "train", "--config", "mcmc.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("clv", "1")
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    checks = {
        "production_mcmc_max_rhat_lower_than_1.05": metrics["production_mcmc_max_rhat"] <= 1.05,
        "production_mcmc_min_ess_bulk_higher_than_100": metrics["production_mcmc_min_ess_bulk"] >= 100,
        "production_mcmc_min_ess_tail_higher_than_100": metrics["production_mcmc_min_ess_tail"] >= 100,
        "production_mcmc_divergences_lower_than_0": metrics["production_mcmc_divergences"] <= 0,
    }
    assert checks == dict.fromkeys(checks, True)
    assert {name: tags[f"gate.{name}"] for name in checks} == dict.fromkeys(checks, "pass")
    assert all(f"gate.{name}" in version.tags for name in checks)  # the version carries its production checks
