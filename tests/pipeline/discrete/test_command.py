"""End to end (slow): a generated discrete feed trains with business.type discrete, is registered, and its
pyfunc model (loaded, served over REST by ``mlflow models serve`` and as a Spark UDF) scores with the training
numbers; so does the same feed as events (no amounts)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import clean_env, clv_command
from tests.discrete_feed import ALPHA, BETA, DELTA, GAMMA, write_discrete_feed
from tests.rest import post, predictions, serve, split

SCORED = ("p_alive", "p_alive_next", "expected_transactions", "expected_order_value", "clv")
INPUTS = ("customer_id", "frequency", "recency", "n_periods", "monetary_value")


def test_spark_is_refused_with_one_line() -> None:
    from pipeline.config import parse_config
    from pipeline.discrete.command import run_discrete_training
    from pipeline.errors import ConfigError

    config = parse_config(
        {"data": {"source": "csv", "path": "x.csv"}, "engine": {"name": "spark"}, "business": {"type": "discrete"}}
    )
    with pytest.raises(ConfigError, match=r"^business.type: 'discrete' runs on DuckDB only; set engine.name: duckdb"):
        run_discrete_training(config, "")


def _clv(folder: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``clv ARGS`` in FOLDER against the tracking store URI; it must exit 0."""
    done = subprocess.run(
        [str(clv_command()), *args],
        cwd=folder,
        env=clean_env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return done


@dataclass(frozen=True)
class Donors:
    """The generated donations feed trained through ``clv train`` (model ``donors``) on its own SQLite store."""

    folder: Path
    uri: str
    stdout: str
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def donors(tmp_path_factory: pytest.TempPathFactory) -> Donors:
    folder = tmp_path_factory.mktemp("donors")
    write_discrete_feed(folder / "donations.csv")
    (folder / "job.yaml").write_text(
        "data: {source: csv, path: donations.csv, columns: {timestamp: date}}\n"
        "prepare: {calibration_end: 2023-06-30}\n"
        "business: {type: discrete, billing_period: month}\n"
        "tracking: {model_name: donors}\n"
    )
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    done = _clv(folder, uri, "train", "--config", "job.yaml", "--summary", "summary.json", "--output", "out")
    return Donors(folder, uri, done.stdout, json.loads((folder / "summary.json").read_text()))


@pytest.mark.slow
def test_the_discrete_feed_trains_registers_and_scores_through_pyfunc(
    donors: Donors, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    tmp_path, uri, summary = donors.folder, donors.uri, donors.summary
    assert "registered as donors version 1, alias 'champion'" in donors.stdout
    assert summary["business_type"] == "discrete"
    assert summary["data"]["customers"] == 5000
    assert summary["advice"] == []  # ids written one way: nothing to advise
    production = summary["fit"]["production"]
    for key, truth in zip(("alpha", "beta", "gamma", "delta"), (ALPHA, BETA, GAMMA, DELTA), strict=True):
        assert production[key] == pytest.approx(truth, rel=0.15)
    metrics = summary["metrics"]
    assert metrics["purchases_mae"] < metrics["baseline_last_period_purchases_mae"]
    assert metrics["purchases_mae"] < metrics["baseline_average_rate_purchases_mae"]

    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # an earlier test in this process may have pointed the registry elsewhere
    model = mlflow.pyfunc.load_model("models:/donors@champion")
    assert summary["fit"]["spend_model"] == "gamma_gamma"
    # The spend model's metrics and tags are named as the non-contractual job's production fit (names.py).
    run = mlflow.get_run(summary["run_id"])
    for name, value in summary["fit"]["spend"].items():
        assert run.data.metrics[f"production_gamma_gamma_{name}"] == value
        assert run.data.metrics[f"production_gamma_gamma_{name}_se"] > 0
    assert run.data.metrics["production_gamma_gamma_customers"] == summary["data"]["customers"] - sum(
        scores["frequency"].eq(0)
    )
    assert not [name for name in run.data.metrics if name.startswith("spend_")]
    assert run.data.tags["production_spend_model"] == "gamma_gamma"
    assert "production_spend.fallback" not in run.data.tags
    assert scores["clv"].gt(0).all()
    predicted = model.predict(scores[list(INPUTS)])
    assert predicted["customer_id"].tolist() == scores["customer_id"].tolist()
    for column in SCORED:
        assert predicted[column].to_numpy() == pytest.approx(scores[column].to_numpy(), rel=1e-12)
    _rest_answers_as_the_pyfunc(tmp_path, uri, scores)

    # clv score: the raw feed prepared as of the observation end with the model's config, the same numbers
    as_of = summary["data"]["observation_end"]
    args = ("--model-uri", "models:/donors@champion", "--input", "donations.csv", "--as-of", str(as_of))
    scored_run = _clv(tmp_path, uri, "score", *args, "--output", "scored.parquet")
    data = summary["data"]
    assert data["rows_quarantined"] == 0  # a clean feed: the line names no quarantine file
    assert scored_run.stdout.splitlines() == [
        f"clv score: 5,000 customers scored as of {as_of} with models:/donors@champion (BG/BB) -> scored.parquet "
        f"({data['rows_in']:,} rows in, {data['rows_used']:,} used, 0 quarantined)"
    ]
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert scored["customer_id"].tolist() == scores["customer_id"].tolist()
    for column in ("frequency", "recency", "n_periods"):
        assert scored[column].tolist() == scores[column].tolist()
    # a mean of exact sums of 1/SCALE: the same bits
    assert scored["monetary_value"].tolist() == scores["monetary_value"].tolist()
    for column in SCORED:
        assert scored[column].to_numpy() == pytest.approx(predicted[column].to_numpy(), rel=1e-12)
    assert scored["p_alive"].between(0, 1).all()


@pytest.mark.slow
def test_spark_udf_scores_equal_the_pyfunc_scores(  # type: ignore[no-untyped-def]
    donors: Donors, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registered BG/BB model as a Spark UDF in local mode (whole numbers as longs, the spend as doubles): the
    pyfunc's numbers to 1e-12, the ids back as text."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", donors.uri)
    mlflow.set_tracking_uri(donors.uri)
    mlflow.set_registry_uri(donors.uri)  # an earlier test in this process may have pointed the registry elsewhere
    inputs = pd.read_parquet(donors.folder / "out" / "scores.parquet").loc[:, list(INPUTS)]
    inputs = inputs.astype({"frequency": "int64", "recency": "int64", "n_periods": "int64"})
    expected = mlflow.pyfunc.load_model("models:/donors@champion").predict(inputs)
    ddl = "customer_id string, " + ", ".join(f"{c} double" for c in expected.columns if c != "customer_id")
    udf = mlflow.pyfunc.spark_udf(spark, "models:/donors@champion", result_type=ddl, env_manager="local")
    frame = spark.createDataFrame(inputs).repartition(3)
    scored = frame.withColumn("s", udf(*frame.columns)).select("s.*").toPandas()
    scored = scored.sort_values("customer_id").reset_index(drop=True)
    expected = expected.sort_values("customer_id").reset_index(drop=True)
    assert len(scored) == len(expected) == 5000
    assert scored["customer_id"].tolist() == expected["customer_id"].tolist()
    for column in SCORED:
        assert scored[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-12, abs=0)


@pytest.mark.slow
def test_clv_score_writes_and_names_the_quarantined_rows(donors: Donors, tmp_path: Path) -> None:
    """The feed with three bad rows: it wrote no quarantine file and its line did not name one. Now
    <stem>.quarantine.parquet beside the scores, named in the line as the non-contractual clv score names it; and
    the training run on that feed keeps the same rows in tables/quarantine.parquet."""
    feed = pd.read_csv(donors.folder / "donations.csv", dtype=str)
    bad = [("", "2023-04-01", "15.0"), ("d0-00001", "not a date", "9.0"), ("d0-00000", "2024-01-15", "30.0")]
    pd.concat([feed, pd.DataFrame(bad, columns=feed.columns)]).to_csv(tmp_path / "dirty.csv", index=False)
    data = donors.summary["data"]
    as_of = data["observation_end"]
    args = ("--model-uri", "models:/donors@champion", "--input", str(tmp_path / "dirty.csv"), "--as-of", str(as_of))
    done = _clv(donors.folder, donors.uri, "score", *args, "--output", str(tmp_path / "scored.parquet"))
    assert done.stdout.splitlines() == [
        f"clv score: 5,000 customers scored as of {as_of} with models:/donors@champion (BG/BB) -> "
        f"{tmp_path / 'scored.parquet'} ({data['rows_in'] + 3:,} rows in, {data['rows_used']:,} used, 3 quarantined; "
        f"quarantined rows in {tmp_path / 'scored.quarantine.parquet'})"
    ]
    written = pd.read_parquet(tmp_path / "scored.quarantine.parquet")
    assert list(written.columns) == ["customer_id", "date", "amount", "reason"]
    assert written["reason"].tolist() == ["after_observation_end", "invalid_timestamp", "missing_customer_id"]
    assert written["date"].tolist() == ["2024-01-15", "not a date", "2023-04-01"]
    assert written["amount"].tolist() == ["30.0", "9.0", "15.0"]
    assert written["customer_id"].tolist()[:2] == ["d0-00000", "d0-00001"]
    assert written["customer_id"].isna().tolist() == [False, False, True]  # the empty id, read as NULL
    # Training on the same feed to the same date: the run keeps the same rows (it kept their counts only).
    from mlflow.tracking import MlflowClient

    (tmp_path / "job.yaml").write_text(
        "data: {source: csv, path: dirty.csv, columns: {timestamp: date}}\n"
        f"prepare: {{calibration_end: 2023-06-30, observation_end: {as_of}}}\n"
        "business: {type: discrete, billing_period: month}\n"
        "tracking: {model_name: dirty-donors}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trained = _clv(tmp_path, uri, "train", "--config", "job.yaml", "--summary", "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text())["data"]["rows_quarantined"] == 3, trained.stdout
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("clv")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    logged = pd.read_parquet(client.download_artifacts(run.info.run_id, "tables/quarantine.parquet", str(tmp_path)))
    pd.testing.assert_frame_equal(logged, written)


def _rest_answers_as_the_pyfunc(folder: Path, uri: str, scores: pd.DataFrame) -> None:
    """A real ``mlflow models serve`` of the registered BG/BB model: the training scores for 40 customers, and a bad
    history answered with 400 and the line naming its column."""
    rows = scores.loc[:, list(INPUTS)].iloc[::125].reset_index(drop=True)
    path = f"{Path(sys.executable).parent}:{clean_env().get('PATH', '')}"  # the server starts the venv's uvicorn
    env = clean_env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}
    (folder / "serve").mkdir()
    with serve("models:/donors@champion", folder, env, folder / "serve") as url:
        status, body = post(url, split(rows))
        bad_status, bad = post(url, split(rows.head(2).assign(frequency=[0.5, 1.0])))
    assert status == 200, body
    rest = predictions(body)
    expected = scores.iloc[::125].reset_index(drop=True)
    assert len(rest) == 40
    assert rest["customer_id"].tolist() == expected["customer_id"].tolist()
    for column in SCORED:
        assert rest[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-12)
    assert (bad_status, bad["message"]) == (400, "column 'frequency' must hold whole numbers")


def test_the_summary_of_an_event_feed_says_it_counts_purchases(tmp_path: Path) -> None:
    """An event feed's run: ``has_amounts`` false in the summary, no spend model, and the text says why."""
    from pipeline.config import parse_config
    from pipeline.discrete.command import discrete_summary_dict, discrete_summary_text
    from pipeline.discrete.workflow import train_discrete
    from pipeline.engines import open_engine
    from tests.discrete_feed import as_events, discrete_feed

    as_events(discrete_feed(per_cohort=1000)).to_csv(tmp_path / "events.csv", index=False)
    config = parse_config(
        {
            "data": {
                "source": "csv",
                "path": str(tmp_path / "events.csv"),
                "columns": {"timestamp": "date", "amount": None},
            },
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )
    engine = open_engine(config.engine)
    try:
        result = train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()
    assert result.gate.passed
    summary = discrete_summary_dict(result)
    assert summary["data"]["has_amounts"] is False
    assert (summary["fit"]["spend_model"], summary["fit"]["spend"]) == ("none", None)
    assert (
        "  spend       none (an event feed: no amounts): expected_transactions counts purchases; no expected order "
        "value or CLV in money"
    ) in discrete_summary_text(result).splitlines()


PURCHASES = ("p_alive", "p_alive_next", "expected_transactions")


@pytest.mark.slow
def test_an_event_feeds_model_trains_registers_and_scores_through_clv_score_and_pyfunc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event feed (no amount column) through the real commands and a real SQLite store and registry: ``clv
    train`` registers a model that ``clv score`` and ``mlflow.pyfunc`` both score from the registry, with the
    inputs its signature asks for (no ``monetary_value``) and no money column out, and the purchase numbers of the
    model of the same rows with amounts. The events are dated 31/03/2023 (the amount feed 2023-03-31): the
    format is detected at training and at scoring, and recorded in the run."""
    import mlflow

    from tests.discrete_feed import as_events, discrete_feed

    feed = discrete_feed(per_cohort=1000)
    feed.to_csv(tmp_path / "donations.csv", index=False)
    events = as_events(feed)
    events["date"] = pd.to_datetime(events["date"]).dt.strftime("%d/%m/%Y")
    events.to_csv(tmp_path / "visits.csv", index=False)
    for name, path, amount in (("donors", "donations.csv", ""), ("members", "visits.csv", ", amount: null")):
        (tmp_path / f"{name}.yaml").write_text(
            f"data: {{source: csv, path: {path}, columns: {{timestamp: date{amount}}}}}\n"
            "prepare: {calibration_end: 2023-06-30}\n"
            "business: {type: discrete, billing_period: month}\n"
            f"tracking: {{model_name: {name}}}\n"
        )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for name in ("donors", "members"):
        trained = _clv(tmp_path, uri, "train", "--config", f"{name}.yaml", "--summary", f"{name}.json")
        assert f"registered as {name} version 1, alias 'champion'" in trained.stdout
    summary = json.loads((tmp_path / "members.json").read_text())
    assert (summary["data"]["has_amounts"], summary["fit"]["spend_model"]) == (False, "none")
    assert summary["data"]["timestamp_format"] == "%d/%m/%Y"
    donors = json.loads((tmp_path / "donors.json").read_text())
    assert summary["fit"]["production"] == donors["fit"]["production"]  # BG/BB reads (x, t_x, n) only

    # clv score, the real command: the registered model, its training config, the raw feed
    as_of = str(summary["data"]["observation_end"])
    scored = {}
    for name, path in (("donors", "donations.csv"), ("members", "visits.csv")):
        args = ("--model-uri", f"models:/{name}@champion", "--input", path, "--as-of", as_of)
        _clv(tmp_path, uri, "score", *args, "--output", f"{name}.parquet")
        scored[name] = pd.read_parquet(tmp_path / f"{name}.parquet")
    histories = ["first_period", "customer_id", "frequency", "recency", "n_periods"]
    assert list(scored["members"].columns) == [*histories, *PURCHASES]
    assert len(scored["members"]) == 2000
    same = scored["donors"].loc[:, [*histories, *PURCHASES]]
    pd.testing.assert_frame_equal(scored["members"], same, check_exact=True)

    # mlflow.pyfunc, with the inputs the registered signature asks for
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # an earlier test in this process may have pointed the registry elsewhere
    model = mlflow.pyfunc.load_model("models:/members@champion")
    inputs = model.metadata.get_input_schema().input_names()
    assert inputs == ["customer_id", "frequency", "recency", "n_periods"]
    assert model.metadata.get_output_schema().input_names() == ["customer_id", *PURCHASES]
    predicted = model.predict(scored["members"].loc[:, inputs])
    assert list(predicted.columns) == ["customer_id", *PURCHASES]
    expected = scored["members"].loc[:, ["customer_id", *PURCHASES]]
    pd.testing.assert_frame_equal(predicted, expected, check_exact=True)
    example = model.input_example  # logged with the model: the signature's columns, and they score
    assert list(example.columns) == inputs
    assert list(model.predict(example).columns) == ["customer_id", *PURCHASES]
    run = mlflow.get_run(summary["run_id"])
    assert run.data.tags["data.timestamp_format"] == "%d/%m/%Y (detected)"
    assert run.data.tags["production_spend_model"] == "none"
