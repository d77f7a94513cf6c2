"""The feeds data scientists bring, end to end (slow): each one trains (exit 0 or 1, never 2), every row is
reconciled, no distinct line is quarantined, and the registered models score int-typed input through
`clv score`, pyfunc, REST and Spark with the training job's numbers.

The corpus: UCI-style invoice lines (float-looking and empty ids, cancellations, several products per
invoice at the same quantity and price, `%m/%d/%Y %H:%M` timestamps); a monthly subscription at a
constant price per plan; purchases at one fixed price; lifetimes' event feed with no amount column;
customers whose first purchase is on the calibration end.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import clean_env, clv_command
from tests.feeds import bgnbd_purchases, fixed_price_feed, online_retail_lines, subscription_feed
from tests.rest import post, predictions, serve, split

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Feed:
    name: str
    path: str
    config: str
    quarantined: dict[str, int] = field(default_factory=dict)
    registered: bool = True


def _retail(folder: Path) -> Feed:
    feed = online_retail_lines()
    feed.lines.to_csv(folder / "retail.csv", index=False)
    config = """
data:
  source: csv
  path: retail.csv
  columns: {customer_id: CustomerID, timestamp: InvoiceDate, quantity: Quantity, unit_price: UnitPrice,
            order_id: InvoiceNo}
prepare: {calibration_end: 2011-09-09}
tracking: {model_name: retail}
"""
    quarantined = {"missing_customer_id": feed.empty_ids, "duplicate": feed.true_duplicates}
    return Feed("retail", "retail.csv", config, quarantined)


def _subscription(folder: Path) -> Feed:
    charges, _ = subscription_feed()
    charges.to_csv(folder / "subscription.csv", index=False)
    config = """
data: {source: csv, path: subscription.csv, columns: {customer_id: account, timestamp: charged_at}}
prepare: {calibration_end: 2023-06-30}
tracking: {model_name: subscription}
"""
    # Purchase models misread a subscription (the gate says so); the point here is that it trains.
    return Feed("subscription", "subscription.csv", config, registered=False)


def _fixed_price(folder: Path) -> Feed:
    fixed_price_feed().to_csv(folder / "fixed.csv", index=False)
    # No criteria beyond the built-in checks: this case is about the spend model (every order costs 9.99),
    # and its model must be registered to be scored.
    config = """
data: {source: csv, path: fixed.csv, columns: {customer_id: user_id, timestamp: purchased_on, amount: price}}
prepare: {calibration_end: 2022-09-30}
validate: {criteria: []}
tracking: {model_name: fixed}
"""
    return Feed("fixed", "fixed.csv", config)


def _events(folder: Path) -> Feed:
    resource = importlib.resources.files("lifetimes") / "datasets" / "example_transactions.csv"
    (folder / "events.csv").write_bytes(resource.read_bytes())
    config = """
data: {source: csv, path: events.csv, columns: {customer_id: id, timestamp: date, amount: null}}
prepare: {calibration_end: 2014-09-30}
tracking: {model_name: events}
"""
    return Feed("events", "events.csv", config)


def _born_on_calibration_end(folder: Path) -> Feed:
    days = bgnbd_purchases(2000, dt.date(2021, 1, 1), 540, seed=5, birth_days=180)
    calibration_end = pd.Timestamp("2021-12-31")
    rng = np.random.default_rng(6)
    late = pd.DataFrame({"customer": np.arange(40) + 10_000, "day": calibration_end})  # first purchase that day
    later = late.assign(day=calibration_end + pd.to_timedelta(rng.integers(1, 170, 40), unit="D")).iloc[::2]
    frame = pd.concat([days, late, later]).sort_values(["customer", "day"])
    frame["amount"] = np.round(rng.gamma(4.0, 6.0, len(frame)), 2)
    frame.assign(day=frame["day"].dt.strftime("%Y-%m-%d")).to_csv(folder / "born.csv", index=False)
    config = """
data: {source: csv, path: born.csv, columns: {customer_id: customer, timestamp: day, amount: amount}}
prepare: {calibration_end: 2021-12-31}
tracking: {model_name: born}
"""
    return Feed("born", "born.csv", config)


@dataclass(frozen=True)
class Trained:
    feed: Feed
    folder: Path
    returncode: int
    stdout: str
    stderr: str
    summary: dict[str, object]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Trained]]:
    """Every feed trained by `clv train` into one SQLite store (one registered model per feed)."""
    folder = tmp_path_factory.mktemp("feeds")
    trained = {}
    for make in (_retail, _subscription, _fixed_price, _events, _born_on_calibration_end):
        feed = make(folder)
        (folder / f"{feed.name}.yaml").write_text(feed.config)
        command = ["train", "--config", f"{feed.name}.yaml", "--summary", f"{feed.name}.json"]
        done = subprocess.run(
            [str(clv_command()), *command, "--output", f"out_{feed.name}"],
            cwd=folder,
            env=_env(folder),
            capture_output=True,
            text=True,
            timeout=900,
        )
        summary = json.loads((folder / f"{feed.name}.json").read_text()) if done.returncode in (0, 1) else {}
        trained[feed.name] = Trained(feed, folder, done.returncode, done.stdout, done.stderr, summary)
    return folder, trained


def _env(folder: Path) -> dict[str, str]:
    """The feeds' store; the venv's bin folder first on PATH (`mlflow models serve` runs `uvicorn` from it)."""
    base = clean_env()
    path = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    return base | {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "PATH": path}


def test_every_feed_trains_and_every_row_is_reconciled(corpus: tuple[Path, dict[str, Trained]]) -> None:
    _, trained = corpus
    for name, run in trained.items():
        assert run.returncode in (0, 1), f"{name}: exit {run.returncode}: {run.stderr}"
        assert run.returncode == (0 if run.feed.registered else 1), f"{name}: {run.stdout}"
        data = run.summary["data"]
        assert isinstance(data, dict)
        quarantined = data["rows_quarantined"]
        assert quarantined == run.feed.quarantined, name  # no distinct line quarantined
        assert data["rows_in"] == data["rows_used"] + sum(quarantined.values()), name
        # A clean run: no MLflow registration lines, no warnings leaking from numpy or pandas.
        assert "Successfully registered" not in run.stdout + run.stderr, name
        assert "Warning" not in run.stderr, f"{name}: {run.stderr}"


def test_the_spend_model_matches_the_feed(corpus: tuple[Path, dict[str, Trained]]) -> None:
    _, trained = corpus
    assert trained["fixed"].summary["spend_model"] == "pooled_mean"  # every order costs 9.99
    assert trained["fixed"].summary["parameters"]["calibration"]["mean"] == pytest.approx(9.99)  # type: ignore[index]
    assert "pooled mean 9.99 for everyone" in trained["fixed"].stdout
    assert trained["events"].summary["spend_model"] == "none"
    assert trained["retail"].summary["spend_model"] == "gamma_gamma"
    # Two price plans: spend varies across subscribers, and Gamma-Gamma is fitted.
    assert trained["subscription"].summary["spend_model"] == "gamma_gamma"
    scores = pd.read_parquet(trained["events"].folder / "out_events" / "scores.parquet")
    assert not [c for c in scores.columns if "clv" in c or "order_value" in c or "segment" in c]


def test_first_purchase_on_the_calibration_end(corpus: tuple[Path, dict[str, Trained]]) -> None:
    run = corpus[1]["born"]
    check = run.summary["repeat_purchase_check"]
    assert isinstance(check, dict)
    assert np.isfinite(check["chi_square"])
    holdout = pd.read_parquet(run.folder / "out_born" / "holdout.parquet")
    born = holdout[holdout["T"] == 0]
    assert len(born) == 40
    assert (born["p_alive"] == 1.0).all()
    assert np.isfinite(born["expected_purchases"]).all()


def test_retail_lines_keep_their_revenue(corpus: tuple[Path, dict[str, Trained]]) -> None:
    run = corpus[1]["retail"]
    feed = online_retail_lines()
    data = run.summary["data"]
    assert isinstance(data, dict)
    assert data["timestamp_format"] == "%m/%d/%Y %H:%M"  # detected
    assert data["customers_full"] == feed.customers
    assert data["returns_netted"] == feed.cancellation_lines
    assert "2,011 quarantined (1,993 missing_customer_id, 18 duplicate)" in run.stdout


def _scores(run: Trained) -> pd.DataFrame:
    return pd.read_parquet(run.folder / f"out_{run.feed.name}" / "scores.parquet").set_index("customer_id")


def _customers(run: Trained) -> pd.DataFrame:
    """The full-history summaries the model scored, as int-typed input: ints for ids and counts."""
    prepared = pd.read_parquet(run.folder / f"out_{run.feed.name}" / "customers.parquet")
    columns = [c for c in ("customer_id", "frequency", "recency", "T", "monetary_value") if c in prepared]
    frame = prepared[columns].copy()
    frame["customer_id"] = frame["customer_id"].astype(np.int64)
    frame["frequency"] = frame["frequency"].astype(np.int64)
    return frame


def _same(scored: pd.DataFrame, batch: pd.DataFrame) -> None:
    scored = scored.set_index(scored["customer_id"].astype(str)).drop(columns="customer_id")
    batch = batch.loc[scored.index, list(scored.columns)]
    for column in scored.columns:
        if not pd.api.types.is_numeric_dtype(scored[column]):
            assert scored[column].tolist() == batch[column].tolist(), column
        else:
            np.testing.assert_allclose(scored[column], batch[column], rtol=1e-12, err_msg=column)


REGISTERED = ("retail", "fixed", "events", "born")


@pytest.fixture(scope="module")
def prepared(corpus: tuple[Path, dict[str, Trained]]) -> dict[str, pd.DataFrame]:
    """`clv prepare` of each registered feed (its full-history summaries: what the model scored)."""
    folder, trained = corpus
    out = {}
    for name in REGISTERED:
        done = subprocess.run(
            [str(clv_command()), "prepare", "--config", f"{name}.yaml", "--output", f"out_{name}"],
            cwd=folder,
            env=_env(folder),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        out[name] = _customers(trained[name])
    return out


def test_clv_score_gives_the_training_numbers(corpus: tuple[Path, dict[str, Trained]]) -> None:
    folder, trained = corpus
    for name in REGISTERED:
        run = trained[name]
        output = folder / f"{name}_scored.csv"
        as_of = str(run.summary["data"]["observation_end"])  # type: ignore[index]
        command = ["score", "--model-uri", f"models:/{name}@champion", "--input", run.feed.path, "--as-of", as_of]
        done = subprocess.run(
            [str(clv_command()), *command, "--output", str(output)],
            cwd=folder,
            env=_env(folder),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        scored = pd.read_csv(output, dtype={"customer_id": str})
        batch = _scores(run)
        assert list(scored.columns) == ["customer_id", *batch.columns]  # the same columns as training's
        _same(scored, batch)


def test_pyfunc_takes_int_typed_input(
    corpus: tuple[Path, dict[str, Trained]], prepared: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    folder, trained = corpus
    _use_store(folder, monkeypatch)
    for name in REGISTERED:
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        _same(model.predict(prepared[name]), _scores(trained[name]))


def test_rest_takes_int_typed_input(
    corpus: tuple[Path, dict[str, Trained]], prepared: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    folder, trained = corpus
    for name in REGISTERED:
        sample = prepared[name].iloc[:: max(len(prepared[name]) // 40, 1)]
        with serve(f"models:/{name}@champion", folder, _env(folder), tmp_path) as url:
            status, body = post(url, split(sample))
        assert status == 200, body
        _same(predictions(body), _scores(trained[name]))


def test_spark_udf_takes_int_typed_input(  # type: ignore[no-untyped-def]
    corpus: tuple[Path, dict[str, Trained]], prepared: dict[str, pd.DataFrame], spark, monkeypatch
) -> None:
    import mlflow

    folder, trained = corpus
    _use_store(folder, monkeypatch)
    for name in REGISTERED:
        frame = spark.createDataFrame(prepared[name]).repartition(3)
        udf = mlflow.pyfunc.spark_udf(spark, f"models:/{name}@champion", env_manager="local", result_type=_ddl(name))
        scored = frame.withColumn("s", udf(*frame.columns)).select("s.*").toPandas()
        _same(scored, _scores(trained[name]))


def _use_store(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feeds' store, by environment and in MLflow's globals (an earlier test may have set another)."""
    import mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _ddl(name: str) -> str:
    money = "" if name == "events" else ", expected_order_value double, clv double"
    return (
        "customer_id string, p_alive double, churn_risk double, risk_tier string, expected_purchases_30d double, "
        f"expected_purchases_90d double, expected_purchases_365d double{money}"
    )
