"""End to end (slow): a generated subscription feed trains with business.type contractual, is registered and
scores through pyfunc and REST with the training numbers; run as non_contractual it is told to switch."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import clean_env, clv_command
from tests.rest import post, predictions, serve, split
from tests.subscription_feed import ALPHA, BETA, subscription_feed, subscriptions_table, write_subscription_feed

pytestmark = pytest.mark.slow

SCORE_COLUMNS = ["p_renew", "churn_risk", "expected_remaining_lifetime", "derl", "clv"]


@dataclass(frozen=True)
class Trained:
    folder: Path
    uri: str
    summary: dict[str, object]
    stdout: str

    def env(self) -> dict[str, str]:
        import os
        import sys

        path = f"{Path(sys.executable).parent}{os.pathsep}{clean_env().get('PATH', '')}"
        return clean_env() | {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}


def _train(folder: Path, business_type: str) -> subprocess.CompletedProcess[str]:
    (folder / "job.yaml").write_text(
        "data: {source: csv, path: billing.csv, columns: {timestamp: charge_date}}\n"
        "prepare: {calibration_end: 2023-12-31}\n"
        f"business: {{type: {business_type}}}\n"
        "tracking: {model_name: subscriptions}\n"
    )
    env = clean_env() | {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [str(clv_command()), "train", "--config", "job.yaml", "--summary", "summary.json", "--output", "out"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("contractual")
    write_subscription_feed(folder / "billing.csv")
    done = _train(folder, "contractual")
    assert done.returncode == 0, done.stderr
    summary = json.loads((folder / "summary.json").read_text())
    return Trained(folder, f"sqlite:///{folder / 'mlflow.db'}", summary, done.stdout)


def test_the_subscription_feed_trains_and_registers(trained: Trained) -> None:
    s = trained.summary
    assert s["business_type"] == "contractual"
    assert s["promoted"] is True
    assert s["version"] == 1
    assert s["alias"] == "champion"
    data = s["data"]
    assert isinstance(data, dict)
    assert data["rows_in"] == data["rows_used"] + data["rows_quarantined"]
    # The feed's row identical to its first charge is kept: without an order id it is a real line
    # (prepare.duplicates: auto), so 3 rows are quarantined, not 4.
    assert data["rows_quarantined"] == 3
    assert data["subscribers"] == 9600
    fit = s["fit"]
    assert isinstance(fit, dict)
    assert fit["production"]["alpha"] == pytest.approx(ALPHA, rel=0.15)
    assert fit["production"]["beta"] == pytest.approx(BETA, rel=0.15)
    metrics = s["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["survival_mape"] < metrics["baseline_last_period_survival_mape"]
    assert metrics["survival_mape"] < metrics["baseline_average_lifetime_survival_mape"]
    assert s["advice"] == []
    assert "registered as subscriptions version 1, alias 'champion'" in trained.stdout


def _training_scores(trained: Trained) -> pd.DataFrame:
    return pd.read_parquet(trained.folder / "out" / "scores.parquet").sort_values("customer_id").reset_index(drop=True)


def test_pyfunc_scores_equal_the_training_scores(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    mlflow.set_tracking_uri(trained.uri)
    mlflow.set_registry_uri(trained.uri)  # an earlier test in this process may have pointed the registry elsewhere
    scores = _training_scores(trained)
    assert len(scores) > 1000
    model = mlflow.pyfunc.load_model("models:/subscriptions@champion")
    predicted = model.predict(scores[["customer_id", "cohort", "renewals", "price"]])
    assert predicted["customer_id"].tolist() == scores["customer_id"].tolist()
    for column in SCORE_COLUMNS:
        assert predicted[column].to_numpy() == pytest.approx(scores[column].to_numpy(), rel=1e-12)
    assert (predicted["clv"] > 0).all()


def test_clv_score_scores_the_active_subscribers_with_the_training_numbers(trained: Trained) -> None:
    data = trained.summary["data"]
    assert isinstance(data, dict)
    as_of = data["observation_end"]
    done = subprocess.run(
        [
            str(clv_command()),
            "score",
            "--model-uri",
            "models:/subscriptions@champion",
            "--input",
            "billing.csv",
            "--as-of",
            str(as_of),
            "--output",
            "scored.parquet",
        ],
        cwd=trained.folder,
        env=trained.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    scores = _training_scores(trained)
    assert f"clv score: {len(scores):,} active subscribers scored as of {as_of}" in done.stdout
    assert "59,091 rows in, 59,088 used, 3 quarantined" in done.stdout
    scored = pd.read_parquet(trained.folder / "scored.parquet").sort_values("customer_id").reset_index(drop=True)
    assert scored["customer_id"].tolist() == scores["customer_id"].tolist()
    for column in SCORE_COLUMNS:
        assert scored[column].to_numpy() == pytest.approx(scores[column].to_numpy(), rel=1e-12)


def test_clv_score_writes_the_quarantined_rows_as_the_non_contractual_score(trained: Trained, tmp_path: Path) -> None:
    """It said '3 quarantined' and wrote no file. Now <stem>.quarantine.parquet beside the scores, the rows as the
    non-contractual clv score writes them (the DuckDB engine's quarantine of the same feed as of the same date):
    every source column as text under its source name (charge_date, mapped as the timestamp), then reason."""
    import datetime as dt

    from pipeline.config import load_config
    from pipeline.engines import open_engine

    data = trained.summary["data"]
    assert isinstance(data, dict)
    as_of = str(data["observation_end"])
    done = subprocess.run(
        [
            *(str(clv_command()), "score", "--model-uri", "models:/subscriptions@champion", "--input", "billing.csv"),
            *("--as-of", as_of, "--output", str(tmp_path / "scored.csv")),
        ],
        cwd=trained.folder,
        env=trained.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    # the line names the file, as the non-contractual clv score's does (it said only '3 quarantined')
    assert done.stdout.splitlines() == [
        f"clv score: {len(_training_scores(trained)):,} active subscribers scored as of {as_of} with "
        f"models:/subscriptions@champion -> {tmp_path / 'scored.csv'} (59,091 rows in, 59,088 used, 3 quarantined; "
        f"quarantined rows in {tmp_path / 'scored.quarantine.parquet'})"
    ]
    written = pd.read_parquet(tmp_path / "scored.quarantine.parquet")
    assert list(written.columns) == ["customer_id", "charge_date", "amount", "plan", "reason"]
    assert written["reason"].tolist() == ["after_observation_end", "invalid_timestamp", "missing_customer_id"]
    assert written["charge_date"].tolist() == ["2031-01-01", "not a date", "2023-01-05"]
    assert written["customer_id"].tolist()[:2] == ["c00-0001", "c00-0000"]
    assert written["customer_id"].isna().tolist() == [False, False, True]  # the empty id, read as NULL
    config = load_config(trained.folder / "job.yaml")
    engine = open_engine(config.engine)
    try:
        source = engine.open(config.data.pointed_at("csv", trained.folder / "billing.csv"))
        prepared = engine.prepare_as_of(source, config.prepare, dt.date.fromisoformat(as_of))
        expected = pd.read_parquet(engine.write_quarantine(prepared, tmp_path / "non_contractual.parquet"))
    finally:
        engine.close()
    pd.testing.assert_frame_equal(written, expected)


def test_spark_udf_scores_equal_the_pyfunc_scores(  # type: ignore[no-untyped-def]
    trained: Trained, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registered subscription model as a Spark UDF in local mode (cohort as text, renewals as longs):
    the pyfunc's numbers to 1e-12, the ids back as text."""
    import mlflow

    pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    mlflow.set_tracking_uri(trained.uri)
    mlflow.set_registry_uri(trained.uri)  # an earlier test in this process may have pointed the registry elsewhere
    inputs = _training_scores(trained).loc[:, ["customer_id", "cohort", "renewals", "price"]]
    inputs = inputs.assign(renewals=inputs["renewals"].astype("int64"))
    expected = mlflow.pyfunc.load_model("models:/subscriptions@champion").predict(inputs)
    ddl = "customer_id string, " + ", ".join(f"{c} double" for c in SCORE_COLUMNS)
    udf = mlflow.pyfunc.spark_udf(spark, "models:/subscriptions@champion", result_type=ddl, env_manager="local")
    frame = spark.createDataFrame(inputs).repartition(3)
    assert [f.dataType.simpleString() for f in frame.schema.fields] == ["string", "string", "bigint", "double"]
    scored = frame.withColumn("s", udf(*frame.columns)).select("s.*").toPandas()
    scored = scored.sort_values("customer_id").reset_index(drop=True)
    assert len(scored) == len(expected) > 1000
    assert scored["customer_id"].tolist() == expected["customer_id"].tolist()
    for column in SCORE_COLUMNS:
        assert scored[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-12, abs=0)


@pytest.fixture(scope="module")
def invocations(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(
        "models:/subscriptions@champion", trained.folder, trained.env(), tmp_path_factory.mktemp("serve")
    ) as url:
        yield url


def test_rest_scores_equal_the_training_scores(trained: Trained, invocations: str) -> None:
    scores = _training_scores(trained).iloc[::97].head(40).reset_index(drop=True)
    status, body = post(invocations, split(scores[["customer_id", "cohort", "renewals", "price"]]))
    assert status == 200, body
    rest = predictions(body)
    assert rest["customer_id"].tolist() == scores["customer_id"].tolist()
    for column in SCORE_COLUMNS:
        assert rest[column].to_numpy() == pytest.approx(scores[column].to_numpy(), rel=1e-12)
    bad = scores[["customer_id", "cohort", "renewals", "price"]].head(2).assign(renewals=[-1, 2])
    status, body = post(invocations, split(bad))
    assert status == 400
    assert body["message"] == "column 'renewals' must hold finite numbers >= 0"


def test_the_same_feed_as_non_contractual_prints_the_advice_to_switch(tmp_path: Path) -> None:
    write_subscription_feed(tmp_path / "billing.csv", per_cohort=100, cohorts=24)
    done = _train(tmp_path, "non_contractual")
    advice = "clv: warning: advice: this feed looks like subscriptions"
    assert advice in done.stderr
    assert "set business.type: contractual (billing_period: month)" in done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert any(w.startswith("advice: this feed looks like subscriptions") for w in summary["warnings"])


def test_the_equivalent_subscriptions_table_trains_to_the_same_model(trained: Trained, tmp_path: Path) -> None:
    """business.input: subscriptions, the feed's subscriptions as one row each (plus 7 dirty rows): the same
    subscribers, the same sBG fits and the same holdout metrics as the billing feed, registered."""
    subscriptions_table(subscription_feed()).to_csv(tmp_path / "subscriptions.csv", index=False)
    data = trained.summary["data"]
    assert isinstance(data, dict)
    (tmp_path / "job.yaml").write_text(
        "data: {source: csv, path: subscriptions.csv, columns: {timestamp: start, amount: price}}\n"
        f"prepare: {{calibration_end: 2023-12-31, observation_end: {data['observation_end']}}}\n"
        "business: {type: contractual, input: subscriptions}\n"
        "tracking: {model_name: subscriptions}\n"
    )
    env = clean_env() | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    done = subprocess.run(
        [str(clv_command()), "train", "--config", "job.yaml", "--summary", "summary.json", "--output", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    table = summary["data"]
    assert table["rows_in"] == table["rows_used"] + table["rows_quarantined"] == data["subscribers"] + 7
    assert table["rows_quarantined"] == 7
    assert table["subscribers"] == data["subscribers"]
    assert summary["fit"] == trained.summary["fit"]
    assert summary["metrics"] == pytest.approx(trained.summary["metrics"], rel=1e-12)
    assert summary["promoted"] is True
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet").sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(scores, _training_scores(trained), rtol=1e-12)
    # clv score of the subscriptions table with the registered model: its active subscribers, the same numbers
    scored_run = subprocess.run(
        [
            str(clv_command()),
            "score",
            "--model-uri",
            "models:/subscriptions@champion",
            "--input",
            "subscriptions.csv",
            "--as-of",
            str(data["observation_end"]),
            "--output",
            "scored.parquet",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert scored_run.returncode == 0, scored_run.stderr
    assert scored_run.stdout.splitlines() == [
        f"clv score: {len(scores):,} active subscribers scored as of {data['observation_end']} with "
        f"models:/subscriptions@champion -> scored.parquet ({table['rows_in']:,} rows in, {table['rows_used']:,} used, "
        "7 quarantined; quarantined rows in scored.quarantine.parquet)"
    ]
    scored = pd.read_parquet(tmp_path / "scored.parquet").sort_values("customer_id").reset_index(drop=True)
    assert scored["customer_id"].tolist() == scores["customer_id"].tolist()
    for column in SCORE_COLUMNS:
        assert scored[column].to_numpy() == pytest.approx(scores[column].to_numpy(), rel=1e-12)


def test_mcmc_diagnostics_outside_the_limits_fail_the_gate_and_register_nothing(tmp_path: Path) -> None:
    """fit.method: mcmc with an ESS no short run reaches: exit 1, the ESS checks failed, no model registered."""
    import mlflow

    write_subscription_feed(tmp_path / "billing.csv")
    (tmp_path / "job.yaml").write_text(
        "data: {source: csv, path: billing.csv, columns: {timestamp: charge_date}}\n"
        "prepare: {calibration_end: 2023-12-31}\n"
        "business: {type: contractual}\n"
        "fit: {method: mcmc, priors: pymc_marketing, mcmc: {chains: 2, draws: 100, tune: 100, cores: 1},"
        " diagnostics: {min_ess: 1000000}}\n"
        "tracking: {model_name: subscriptions}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run(
        [str(clv_command()), "train", "--config", "job.yaml", "--summary", "summary.json"],
        cwd=tmp_path,
        env=clean_env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 1, done.stderr
    assert "not registered: " in done.stdout
    assert "mcmc_min_ess_bulk_higher_than_1e06" in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["promoted"], summary["version"]) == (False, None)
    failed = [c["metric"] for c in summary["checks"] if not c["passed"]]
    assert failed == ["mcmc_min_ess_bulk", "mcmc_min_ess_tail"]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_registered_models() == []
    run = client.get_run(summary["run_id"])
    assert run.data.tags["fit.method"] == "mcmc"
    assert run.data.metrics["mcmc_min_ess_bulk"] < 1e6
    assert run.data.metrics["mcmc_max_rhat"] > 0.99


@pytest.mark.parametrize("command", ["whatif", "monitor"])
def test_whatif_and_monitor_say_they_take_non_contractual_models(trained: Trained, command: str) -> None:
    done = subprocess.run(
        [str(clv_command()), command, "--model-uri", "models:/subscriptions@champion", "--input", "billing.csv"],
        cwd=trained.folder,
        env=trained.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "clv: error: --model-uri models:/subscriptions@champion: a business.type contractual model; clv whatif and "
        "clv monitor take non_contractual models (clv score scores every type)"
    ]
