"""``clv whatif`` end to end on the champion trained on the CDNOW 1/10 sample: the table, the plot, and a
``whatif`` run in MLflow linked to the model version (real processes, real store)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import Registry, clean_env, clv_command


def _clv(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(clv_command()), *args], cwd=cwd, env=clean_env() | env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_whatif_on_the_champion(registry: Registry, tmp_path: Path) -> None:
    done = _clv(
        "whatif",
        "--input", str(registry.transactions),
        "--as-of", "1998-06-30",
        "--scenario", "dropout:0.05",
        "--scenario", "dropout:0.2",
        "--response-rate", "0.3",
        "--campaign-cost", "0.5",
        "--output", "out",
        cwd=tmp_path,
        env=registry.env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "models:/clv@champion version 1" in done.stdout
    table = pd.read_csv(tmp_path / "out" / "whatif.csv")
    segments = ["top 5%", "next 15%", "middle 30%", "bottom 50%", "all selected"]
    assert table["segment"].tolist() == [s for s in segments for _ in range(2)]
    total = table[table["segment"] == "all selected"].set_index("scenario")
    # before = the scores training wrote for the same customers on the same date
    trained = pd.read_parquet(registry.scores)
    assert total.loc["dropout -5%", "customers"] == 2357
    assert total.loc["dropout -5%", "clv_before"] == pytest.approx(trained["clv"].sum(), rel=1e-9)
    # the measured effect of "+5% retention" (dropout x 0.95) on one-year CLV, and of dropout x 0.8
    top = table[table["segment"] == "top 5%"].set_index("scenario")
    assert top.loc["dropout -5%", "delta_clv_pct"] == pytest.approx(0.0062, abs=0.0005)
    assert top.loc["dropout -20%", "delta_clv_pct"] == pytest.approx(0.0255, abs=0.002)
    assert total.loc["dropout -5%", "delta_clv_pct"] == pytest.approx(0.0054, abs=0.0003)
    per_customer = top["delta_clv_per_customer"]
    assert (top["break_even_spend_per_customer"] - (per_customer * 0.3 - 0.5)).abs().max() < 1e-9
    customers = pd.read_parquet(tmp_path / "out" / "whatif_customers.parquet")
    assert len(customers) == 2 * 2357
    assert (customers["delta_clv"] >= 0).all()
    assert (tmp_path / "out" / "whatif.png").stat().st_size > 10_000

    from mlflow.tracking import MlflowClient

    client = MlflowClient(registry.uri, registry_uri=registry.uri)
    experiment = client.get_experiment_by_name("clv-whatif")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.run_type = 'whatif'", max_results=1)
    version = client.get_model_version("clv", "1")
    assert run.data.tags["model.version"] == "1"
    assert run.data.tags["model.run_id"] == version.run_id
    assert run.data.tags["whatif.scenarios"] == "dropout -5%, dropout -20%"
    assert run.data.metrics["whatif_dropout_5_delta_clv"] == pytest.approx(
        total.loc["dropout -5%", "delta_clv"], rel=1e-9
    )
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "tables")}
    logged |= {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert {"tables/whatif.csv", "tables/whatif_customers.parquet", "plots/whatif.png"} <= logged


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--scenario", "dropout:1.5"], "--scenario 'dropout:1.5': dropout x (1 - k) needs 0 <= k <= 1"),
        (["--scenario", "churn:0.1"], "unknown lever 'churn'"),
        (["--segment", "VIP"], "--segment VIP: no such segment"),
        (["--response-rate", "2"], "response rate must be between 0 and 1"),
        (["--customers", "x.csv"], "give either --input"),
        (["--scenario", "rate:0.125", "--segment-by", "cohort", "--ids", "missing.txt"], "--ids missing.txt"),
    ],
)
def test_whatif_errors(registry: Registry, tmp_path: Path, args: list[str], fragment: str) -> None:
    base = ["--input", str(registry.transactions), "--as-of", "1998-06-30"]
    done = _clv("whatif", *base, *args, cwd=tmp_path, env=registry.env())
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("clv: error:") == 1
    assert "Traceback" not in done.stderr
    assert fragment in done.stderr


@pytest.mark.slow
def test_whatif_on_listed_ids_by_risk_tier_over_five_years(registry: Registry, tmp_path: Path) -> None:
    """A list of ids (the 50 most valuable), risk tiers, and a five-year horizon: the effect grows with it."""
    trained = pd.read_parquet(registry.scores)
    done = _clv(
        "whatif", "--input", str(registry.transactions), "--as-of", "1998-06-30", "--segment-by", "all",
        "--output", "full", cwd=tmp_path, env=registry.env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ids = trained.nlargest(50, "clv")["customer_id"]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    rows = pd.read_parquet(tmp_path / "full" / "whatif_customers.parquet")
    assert len(rows) == 2357
    done = _clv(
        "whatif", "--input", str(registry.transactions), "--as-of", "1998-06-30", "--segment-by", "risk_tier",
        "--ids", "ids.txt", "--horizon-months", "60", "--output", "vip", cwd=tmp_path, env=registry.env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "vip" / "whatif.csv")
    assert table.loc[table["segment"] == "all selected", "customers"].item() == 50
    one_year = rows.set_index("customer_id").loc[ids, "delta_clv"].sum()
    five_years = table.loc[table["segment"] == "all selected", "delta_clv"].item()
    assert five_years > 3 * one_year
