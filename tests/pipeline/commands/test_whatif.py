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


@pytest.mark.slow
def test_listed_ids_that_are_not_customers_are_named(registry: Registry, tmp_path: Path) -> None:
    trained = pd.read_parquet(registry.scores)
    known = list(trained["customer_id"].head(2))
    (tmp_path / "ids.txt").write_text("\n".join([*known, "nobody", "ghost"]) + "\n")
    done = _clv(
        "whatif", "--input", str(registry.transactions), "--as-of", "1998-06-30", "--segment-by", "all",
        "--ids", "ids.txt", cwd=tmp_path, env=registry.env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "clv: warning: --ids ids.txt: 2 of 4 ids are not customers here ('ghost', 'nobody')"
    ]
    assert "all customers  dropout -5%              2 " in done.stdout


@pytest.mark.slow
def test_a_model_without_spend_counts_purchases_and_refuses_money(registry: Registry, tmp_path: Path) -> None:
    """An event feed's model (no amounts): its what-if CLV is discounted purchases, said so; the spend lever and
    a campaign cost (a break-even spend in money) are refused."""
    events = pd.read_csv(registry.transactions)[["customer_id", "timestamp"]]
    events.to_csv(tmp_path / "events.csv", index=False)
    (tmp_path / "events.yaml").write_text(
        "data: {source: csv, path: events.csv, columns: {amount: null}}\n"
        "prepare: {calibration_end: 1997-09-30}\n"
        "tracking: {experiment: events, model_name: events}\n"
    )
    env = registry.env() | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = _clv("train", "--config", "events.yaml", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    base = ["whatif", "--model-uri", "models:/events@champion", "--input", "events.csv", "--as-of", "1998-06-30"]
    done = _clv(*base, "--segment-by", "risk_tier", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "no spend model: CLV here is the discounted expected purchases (an order value of 1)" in done.stdout
    for extra, message in [
        (["--scenario", "spend:0.05"], "--scenario spend: this model has no spend model (its feed has no amounts)"),
        (["--campaign-cost", "1"], "--campaign-cost: this model has no spend model, so its CLV counts purchases"),
    ]:
        done = _clv(*base, "--segment-by", "risk_tier", *extra, cwd=tmp_path, env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.count("clv: error:") == 1
        assert message in done.stderr
