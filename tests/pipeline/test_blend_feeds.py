"""The blend on the feed shapes new users bring: integer and messy text customer ids through ``serving_input``,
``production_blend``, ``with_blend`` and ``clv score``; invoice lines with an order id (the challenger's
purchases are orders merged per day, as BTYD's); an event feed without amounts (the challenger is ineligible,
BTYD stands)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.blend import blend_columns, btyd_over, score_blend
from models.challenger import fit_challenger
from models.challenger_features import FEATURE_COLUMNS, activity_from_transactions, features, labels, serving_input
from models.scoring import score_customers
from pipeline.commands.score import score_file
from pipeline.commands.train import run_training
from pipeline.config import ChallengerConfig, Config
from pipeline.contest import production_blend, with_blend
from pipeline.engines import Engine, Source, open_engine
from pipeline.engines.prepared import Ledger, PreparedData
from pipeline.recorder import model_log, store
from pipeline.summary import summary_text
from pipeline.workflow import train
from tests.models.test_blend import BTYD, H
from tests.models.test_challenger import btyd_summary, simulate_bgnbd

CALIBRATION_END = dt.date(2000, 7, 1)
OBSERVATION_END = dt.date(2000, 12, 30)  # a 26-week holdout: H = 182 days, BTYD's second horizon
CUSTOMERS = 1_000
BLEND = [c for c in blend_columns(H) if c != "value_model"]


def _transactions() -> pd.DataFrame:
    """1,000 customers of a pure BG/NBD x Gamma-Gamma world (integer ids 0..999), 2000-01-01..2001-06-29."""
    return simulate_bgnbd(CUSTOMERS, seed=1)


def _messy(ids: pd.Series) -> pd.Series:
    """Zero-padded text ids, every third one with spaces around it (``' 00042 '``), every third with a float
    export's tail (``'00042.0'``): prepare trims the spaces and drops the ``.0``, and keeps the zeros."""
    return ids.map(lambda i: (f" {i:05d} ", f"{i:05d}.0", f"{i:05d}")[i % 3])


def _ratio(scores: pd.DataFrame) -> np.ndarray:
    btyd, blend = scores[f"btyd_expected_revenue_{H}d"].to_numpy(), scores[f"expected_revenue_{H}d"].to_numpy()
    return np.where(btyd > 0, blend / np.where(btyd > 0, btyd, 1.0), 1.0)


# --- ids through the pure functions --------------------------------------------------------------------------


def test_serving_input_keeps_integer_float_and_padded_ids_as_canonical_text() -> None:
    """Integer ids (int64 in both tables), whole-number float ids (a pandas export with a missing id) against
    text activity, and padded text with spaces: the rows follow the customers, ids are the prepare's text."""
    activity = activity_from_transactions(_transactions().head(40))
    customers = btyd_summary(activity, pd.Timestamp(OBSERVATION_END)).reset_index().iloc[[7, 0, 3]]
    assert customers["customer_id"].dtype == np.int64
    direct = features(activity, OBSERVATION_END).loc[customers["customer_id"]].to_numpy()

    as_int = serving_input(customers, activity, OBSERVATION_END)
    ids = [str(i) for i in customers["customer_id"]]
    assert as_int["customer_id"].tolist() == ids
    assert all(type(i) is str for i in as_int["customer_id"])  # not 7.0, not 7
    np.testing.assert_array_equal(as_int[list(FEATURE_COLUMNS)].to_numpy(), direct)

    as_float = serving_input(
        customers.assign(customer_id=customers["customer_id"].astype(np.float64)),
        activity.assign(customer_id=activity["customer_id"].astype(str)),
        OBSERVATION_END,
    )
    assert as_float["customer_id"].tolist() == ids  # 7.0 is the customer '7'
    np.testing.assert_array_equal(as_float[list(FEATURE_COLUMNS)].to_numpy(), direct)

    padded = serving_input(
        customers.assign(customer_id=_messy(customers["customer_id"]).to_numpy()),
        activity.assign(customer_id=activity["customer_id"].map("{:05d}".format)),
        OBSERVATION_END,
    )
    assert padded["customer_id"].tolist() == [f"{int(i):05d}" for i in ids]  # '00007', trimmed, zeros kept
    np.testing.assert_array_equal(padded[list(FEATURE_COLUMNS)].to_numpy(), direct)


@pytest.fixture(scope="module")
def integer_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The activity (integer ids) up to the observation end, and its BTYD summary (integer ``customer_id``)."""
    activity = activity_from_transactions(_transactions())
    activity = activity[activity["date"] <= pd.Timestamp(OBSERVATION_END)].reset_index(drop=True)
    full = btyd_summary(activity, pd.Timestamp(OBSERVATION_END)).reset_index()
    return activity, full


def test_production_blend_on_integer_ids_gives_one_row_per_customer_and_the_winner_value(
    integer_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    activity, full = integer_world
    shuffled = full.sample(frac=1.0, random_state=0)  # any order: the rows follow ``full``
    blended, served = production_blend(ChallengerConfig(enabled=True), activity, BTYD, shuffled, OBSERVATION_END, H)
    assert len(blended) == len(full) == blended["customer_id"].nunique() == CUSTOMERS
    assert blended["customer_id"].tolist() == [str(i) for i in shuffled["customer_id"]]
    assert served.example["customer_id"].tolist() == [str(i) for i in shuffled["customer_id"].head(5)]
    # The challenger's total is rescaled to BTYD's over H; the blend is their half-and-half mean, per customer.
    btyd = blended[f"btyd_expected_revenue_{H}d"]
    assert blended[f"challenger_expected_revenue_{H}d"].sum() == pytest.approx(btyd.sum(), rel=1e-9)
    np.testing.assert_allclose(
        blended[f"expected_revenue_{H}d"],
        0.5 * btyd + 0.5 * blended[f"challenger_expected_revenue_{H}d"],
        rtol=1e-12,
    )
    direct = btyd_over(BTYD, shuffled.reset_index(drop=True), H)["expected_revenue"]
    np.testing.assert_allclose(btyd, direct, rtol=1e-12)
    # The served model's clv is BTYD's clv times the blend / BTYD revenue ratio over H, customer by customer.
    frame = serving_input(shuffled, activity, OBSERVATION_END)
    scored = score_blend(served.model, frame)
    alone = score_customers(BTYD, frame)
    assert scored["customer_id"].tolist() == blended["customer_id"].tolist()
    np.testing.assert_allclose(scored["clv"], alone["clv"] * _ratio(blended), rtol=1e-12)
    np.testing.assert_array_equal(scored["btyd_clv"], alone["clv"])
    print(
        f"integer ids: {len(blended)} customers, BTYD total over {H} d {btyd.sum():.2f}, clv total BTYD "
        f"{alone['clv'].sum():.2f} -> winner {scored['clv'].sum():.2f}"
    )


# --- ids through the engine, with_blend and clv score -------------------------------------------------------


def _config(path: Path, columns: dict[str, str | None] | None = None, **prepare: object) -> Config:
    return Config.model_validate(
        {
            "data": {"source": "csv", "path": str(path), "columns": columns or {}},
            "prepare": {"calibration_end": CALIBRATION_END, "observation_end": OBSERVATION_END} | prepare,
            "challenger": {"enabled": True, "bootstrap_draws": 200},
        }
    )


def _csv(transactions: pd.DataFrame, ids: pd.Series, path: Path) -> Path:
    transactions.assign(customer_id=ids, timestamp=transactions["date"].dt.strftime("%Y-%m-%d"))[
        ["customer_id", "timestamp", "amount"]
    ].to_csv(path, index=False)
    return path


def _prepared(config: Config) -> tuple[Engine, Source, PreparedData]:
    engine = open_engine(config.engine)
    data = engine.open(config.resolved().data)
    return engine, data, engine.prepare(data, config.prepare)


SHAPES: dict[str, Callable[[pd.Series], pd.Series]] = {"integer": lambda ids: ids, "messy text": _messy}
CANONICAL: dict[str, Callable[[int], str]] = {"integer": str, "messy text": "{:05d}".format}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_with_blend_and_clv_score_keep_the_ids_and_give_the_winner_value(
    shape: str, tracking_store: str, tmp_path: Path
) -> None:
    tx = _transactions()
    path = _csv(tx, SHAPES[shape](tx["customer_id"]), tmp_path / "feed.csv")
    config = _config(path)
    engine, data, prepared = _prepared(config)
    try:
        assert prepared.ledger.reconciled
        scores = engine.score(BTYD, prepared, tmp_path)
        out, warning, served = with_blend(config.resolved(), engine, data, prepared, BTYD, scores)
    finally:
        engine.close()
    assert warning is None
    assert served is not None
    expected = sorted(CANONICAL[shape](i) for i in range(CUSTOMERS))
    assert sorted(out["customer_id"]) == expected  # ' 00042 ', '00042.0' and '00042' are one customer, '00042'
    assert len(out) == out["customer_id"].nunique() == CUSTOMERS
    assert all(type(i) is str for i in out["customer_id"])
    assert (out["value_model"] == "blend").all()
    np.testing.assert_allclose(out["clv"], out["btyd_clv"] * _ratio(out), rtol=1e-12)
    np.testing.assert_array_equal(out["churn_risk"], out[f"churn_risk_{H}d"])
    assert not np.allclose(out["clv"], out["btyd_clv"])

    # The same blend registered and served by `clv score` on the same file: the same ids and numbers.
    experiment = store.connect("blend-feeds")
    yaml_text = (
        f"data: {{source: csv, path: {path}}}\n"
        f"prepare: {{calibration_end: {CALIBRATION_END}, observation_end: {OBSERVATION_END}}}\n"
    )
    with store.run(experiment):
        uri = model_log.log_model(BTYD, served.example, yaml_text, served.model)
    result = score_file(uri, path, tmp_path / "scored.parquet", OBSERVATION_END)
    assert result.customers == CUSTOMERS
    assert isinstance(result.ledger, Ledger)  # a transaction feed's ledger, not a billing one
    assert result.ledger.reconciled
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert sorted(scored["customer_id"]) == expected
    assert len(scored) == scored["customer_id"].nunique() == CUSTOMERS
    by_id, want = scored.set_index("customer_id"), out.set_index("customer_id")
    assert (by_id["value_model"] == "blend").all()
    for column in (*BLEND, "clv", "btyd_clv", "churn_risk", "btyd_churn_risk"):
        np.testing.assert_allclose(by_id.loc[want.index, column], want[column], rtol=1e-9, err_msg=column)
    np.testing.assert_allclose(by_id["clv"], by_id["btyd_clv"] * _ratio(by_id), rtol=1e-12)
    print(
        f"{shape} ids: {len(out)} customers; clv total BTYD {out['btyd_clv'].sum():.2f} -> winner "
        f"{out['clv'].sum():.2f}; challenger total over {H} d {out[f'challenger_expected_revenue_{H}d'].sum():.2f}"
    )


# --- invoice lines with an order id --------------------------------------------------------------------------

LINE_COLUMNS = ["InvoiceNo", "StockCode", "Quantity", "UnitPrice", "InvoiceDate", "CustomerID"]
LINE_MAPPING: dict[str, str | None] = {
    "customer_id": "CustomerID",
    "timestamp": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "order_id": "InvoiceNo",
}
CUSTOMER_LINES = [
    # order 1001 on 2000-01-03: three products (35.00), one line loaded twice
    ("1001", "A1", 2, 5.0, "2000-01-03 10:00", "00042"),
    ("1001", "B2", 1, 20.0, "2000-01-03 10:00", "00042"),
    ("1001", "C3", 2, 2.5, "2000-01-03 10:00", "00042"),
    ("1001", "C3", 2, 2.5, "2000-01-03 10:00", "00042"),
    # orders 1002 and 1003 on 2000-01-10 (20.00): the same day, one purchase for BTYD and the challenger
    ("1002", "A1", 1, 7.0, "2000-01-10 09:00", "00042"),
    ("1002", "D4", 1, 8.0, "2000-01-10 09:00", "00042"),
    ("1003", "E5", 1, 5.0, "2000-01-10 17:30", "00042"),
    # order 1004 on 2000-01-24: two distinct products at the same quantity and price (40.00), both real
    ("1004", "F6", 2, 10.0, "2000-01-24 12:00", "00042"),
    ("1004", "G7", 2, 10.0, "2000-01-24 12:00", "00042"),
    ("2001", "A1", 1, 9.0, "2000-01-05 11:00", "7"),
    ("2002", "A1", 1, 9.0, "2000-02-20 11:00", "7"),
]


def _lines(rows: Sequence[tuple[object, ...]], path: Path) -> Config:
    pd.DataFrame(rows, columns=LINE_COLUMNS).to_csv(path, index=False)
    return _config(path, LINE_MAPPING, calibration_end=dt.date(2000, 1, 31), observation_end=dt.date(2000, 2, 29))


def test_invoice_lines_of_one_order_are_one_purchase_in_the_challengers_features(tmp_path: Path) -> None:
    """Customer '00042' by hand at 2000-01-31: purchases on 2000-01-03 (35), 01-10 (20), 01-24 (40), i.e. 28, 21
    and 7 days before the cutoff, a life of 29 days; gaps 7 and 14 days."""
    config = _lines(CUSTOMER_LINES, tmp_path / "lines.csv")
    engine, data, prepared = _prepared(config)
    try:
        activity = engine.activity(data, config.prepare, dt.date(2000, 1, 31))
    finally:
        engine.close()
    assert prepared.ledger.rows_in == 11 == prepared.ledger.rows_used + prepared.ledger.rows_quarantined
    assert prepared.ledger.quarantined == {"duplicate": 1}  # the line loaded twice; 1004's two lines both used
    assert activity["customer_id"].tolist() == ["00042", "00042", "00042", "7"]
    assert activity["purchases"].tolist() == [1, 1, 1, 1]
    assert activity["revenue"].tolist() == [35.0, 20.0, 40.0, 9.0]

    got = features(activity, dt.date(2000, 1, 31)).loc["00042"]
    expected = {
        "purchases": 3.0,
        "repeat_purchases": 2.0,
        "recency_ratio": 21 / 29,
        "days_since_last": 7.0,
        "purchases_per_week": 3 / (29 / 7),
        "spend_per_week": 95 / (29 / 7),
        "mean_gap_days": 10.5,
        "std_gap_days": 3.5,
        "last_gap_days": 14.0,
        "overdue_ratio": 7 / 10.5,
        "first_spend": 35.0,
        "last_spend": 40.0,
        "max_spend": 40.0,
        "mean_spend": 95 / 3,
        "std_spend": float(np.std([35.0, 20.0, 40.0])),
        "repeat_mean_spend": 30.0,
        "last_to_mean_spend": 40 / (95 / 3),
        "purchases_4w": 2.0,  # 28 days before is outside the last 4 weeks
        "purchases_13w": 3.0,
        "purchases_26w": 3.0,
        "spend_4w": 60.0,
        "spend_13w": 95.0,
        "spend_26w": 95.0,
    }
    assert set(expected) == set(FEATURE_COLUMNS)
    for column, value in expected.items():
        assert got[column] == pytest.approx(value, rel=1e-12), column
    # The same purchases as BTYD's calibration summary: 2 repeat orders worth 30 on average, 95 in all.
    btyd = prepared.calibration.set_index("customer_id").loc["00042"]
    assert (btyd["frequency"], btyd["monetary_value"]) == (got["repeat_purchases"], got["repeat_mean_spend"]) == (2, 30)
    assert prepared.full.set_index("customer_id").loc["00042", "total_spend"] == 95.0


def test_an_order_whose_lines_span_midnight_is_one_purchase_for_the_challenger_as_for_btyd(tmp_path: Path) -> None:
    late = [
        ("1005", "A1", 1, 3.0, "2000-01-30 23:58", "00042"),
        ("1005", "B2", 1, 4.0, "2000-01-31 00:01", "00042"),
    ]
    config = _lines(CUSTOMER_LINES + late, tmp_path / "lines.csv")
    engine, data, prepared = _prepared(config)
    try:
        activity = engine.activity(data, config.prepare, dt.date(2000, 1, 31))
    finally:
        engine.close()
    btyd = prepared.calibration.set_index("customer_id").loc["00042"]
    assert (btyd["frequency"], btyd["monetary_value"]) == (3, 67 / 3)  # 1005 is one order of 7.00 on 01-30
    mine = activity[activity["customer_id"] == "00042"]
    assert mine["revenue"].tolist() == [35.0, 20.0, 40.0, 7.0]  # was [35, 20, 40, 3, 4]: two purchases
    assert features(activity, dt.date(2000, 1, 31)).loc["00042", "repeat_purchases"] == btyd["frequency"]


# --- an event feed without amounts ---------------------------------------------------------------------------


def test_an_event_feed_makes_the_challenger_ineligible_with_one_line_and_btyd_stands(tmp_path: Path) -> None:
    """``date,id`` rows (``amount: null``) with the contest on: the training job runs, the contest says in one
    line why the challenger cannot compete, and the scores stay BTYD's."""
    tx = _transactions()
    path = tmp_path / "events.csv"
    tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp"]].to_csv(path, index=False)
    config = _config(path, {"amount": None})
    engine = open_engine(config.engine)
    try:
        result = train(config, engine, engine.open(config.resolved().data))
    finally:
        engine.close()
    assert not result.prepared.has_amounts
    contest = result.contest
    assert contest is not None
    assert not contest.eligible
    assert contest.result is None
    assert contest.reason == f"{path}: the challenger needs amounts, and this feed has none"
    assert contest.metrics() == {"contest_eligible": 0.0, "contest_horizon_days": 182.0}
    assert contest.registered == "btyd"
    (line,) = [x for x in summary_text(result).splitlines() if x.startswith("  contest")]
    assert line == f"  contest     challenger ineligible, BTYD stands: {contest.reason}"
    assert result.scores is None or "value_model" not in result.scores.columns


@pytest.mark.slow
def test_clv_train_on_an_event_feed_records_why_the_challenger_was_ineligible(
    tracking_store: str, tmp_path: Path
) -> None:
    """``clv train``'s job with its MLflow run: the contest's decision and reason are the run's tags."""
    tx = _transactions()
    path = tmp_path / "events.csv"
    tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp"]].to_csv(path, index=False)
    config = _config(path, {"amount": None})
    result = run_training(config, f"data: {{source: csv, path: {path}, columns: {{amount: null}}}}\n")
    assert result.contest is not None
    reason = f"{path}: the challenger needs amounts, and this feed has none"
    assert result.contest.reason == reason
    tags = MlflowClient(tracking_store).get_run(result.run_id).data.tags
    assert (tags["contest.decision"], tags["contest.reason"]) == ("ineligible", reason)


def test_the_challenger_does_not_depend_on_how_the_ids_sort() -> None:
    """The same 1,000 customers' training rows, sorted as integers (0, 1, 2, ...) and as text ('0', '1', '10', ...),
    which is how the engine sorts integer ids it reads as text. Measured 2026-12-02: early stopping ends at 31 vs 29
    classifier and 96 vs 121 regressor iterations; predictions at 2000-12-30 differ by a factor 0.67 to 2.38 per
    customer (Spearman 0.944). Through the engine on 3,000 customers (integer vs zero-padded ids of one feed), the
    winner's clv differed by up to 69% for a customer. ``fit_challenger`` now puts the rows in an order of their
    content (``np.lexsort`` over features and labels), 2026-12-05: the same challenger, bit for bit (the CDNOW
    contest numbers moved with it, e.g. the revenue scale 0.9294 -> 0.9165; re-measured in test_contest)."""
    activity = activity_from_transactions(_transactions())
    cutoff = pd.Timestamp(CALIBRATION_END)
    train_rows, revenue = features(activity, cutoff), labels(activity, cutoff, H)
    scoring = features(activity, OBSERVATION_END)
    as_text = np.argsort(train_rows.index.astype(str).to_numpy(), kind="stable")
    first = fit_challenger(train_rows, revenue).predict(scoring)["expected_revenue"]
    second = fit_challenger(train_rows.iloc[as_text], revenue.iloc[as_text]).predict(scoring)["expected_revenue"]
    ratio = first / second
    assert ratio.min() == ratio.max() == 1.0
    np.testing.assert_array_equal(first.to_numpy(), second.to_numpy())
