from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from pipeline.config import PrepareConfig
from pipeline.engines import duckdb_prepare as prepare_module
from pipeline.engines.duckdb_prepare import prepare, prepare_as_of
from pipeline.engines.prepared import PreparedData
from pipeline.errors import InputError

ROWS = [
    # customer A: two purchases on 2020-01-01 merge into one of 15.0
    ("A", "2020-01-01", "10.0"),
    ("A", "2020-01-01", "5.0"),
    ("A", "2020-01-15", "20.0"),
    ("A", "2020-01-29", "30.0"),
    ("A", "2020-02-10", "7.0"),  # holdout
    ("A", "2020-02-10", "3.0"),
    ("A", "2020-03-01", "4.0"),
    ("B", "2020-01-20", "50.0"),  # one-time buyer
    ("C", "2020-02-05", "12.0"),  # first purchase in the holdout
    # bad rows
    (None, "2020-01-05", "9.0"),
    ("D", "2020-13-45", "9.0"),
    ("D", None, "9.0"),
    ("D", "2020-01-05", "abc"),
    ("D", "2020-01-05", "nan"),
    ("D", "2020-01-05", "-5"),  # a return by a customer without purchases: used, but unmatched
    ("A", "2020-04-05", "9.0"),  # after observation_end
]
CONFIG = PrepareConfig(
    period="day", time_unit="week", calibration_end=dt.date(2020, 1, 31), observation_end=dt.date(2020, 3, 31)
)


def _relation(rows: Sequence[tuple[object, ...]]) -> duckdb.DuckDBPyRelation:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return duckdb.connect().from_df(frame)


def _quarantined(prepared: PreparedData) -> pd.DataFrame:
    """The quarantined rows of a DuckDB prepare, whose quarantine is a lazy relation."""
    frame: pd.DataFrame = cast(duckdb.DuckDBPyRelation, prepared.quarantine).df()
    return frame


def test_summaries_by_hand() -> None:
    prepared = prepare(_relation(ROWS), CONFIG, "%Y-%m-%d")
    cal = prepared.calibration.set_index("customer_id")
    assert list(cal.index) == ["A", "B"]
    a = cal.loc["A"]
    assert (a["frequency"], a["recency"], a["T"]) == (2.0, 28 / 7, 30 / 7)
    assert a["monetary_value"] == 25.0  # mean of the repeat purchases 20 and 30
    assert a["total_spend"] == 65.0
    assert (a["frequency_holdout"], a["revenue_holdout"]) == (2.0, 14.0)
    assert a["monetary_value_holdout"] == pytest.approx(14 / 3)  # mean of raw holdout rows, as lifetimes
    b = cal.loc["B"]
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0.0, 0.0, 11 / 7, 0.0)
    assert (b["frequency_holdout"], b["revenue_holdout"]) == (0.0, 0.0)
    assert prepared.duration_holdout == 60 / 7

    full = prepared.full.set_index("customer_id")
    assert list(full.index) == ["A", "B", "C"]
    assert (full.loc["A", "frequency"], full.loc["A", "recency"], full.loc["A", "T"]) == (4.0, 60 / 7, 90 / 7)
    assert full.loc["A", "monetary_value"] == 16.0


def test_bad_rows_are_quarantined_and_counted() -> None:
    prepared = prepare(_relation(ROWS), CONFIG, "%Y-%m-%d")
    ledger = prepared.ledger
    assert ledger.quarantined == {
        "missing_customer_id": 1,
        "missing_timestamp": 1,
        "invalid_timestamp": 1,
        "invalid_amount": 2,
        "after_observation_end": 1,
    }
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (16, 10, 6)
    assert (ledger.returns_netted, ledger.returns_unmatched) == (0, 1)
    assert ledger.reconciled
    quarantine = _quarantined(prepared)
    assert len(quarantine) == 6
    assert set(quarantine["reason"]) == set(ledger.quarantined)
    assert prepared.customers_new_in_holdout == 1  # customer C


def test_calibration_end_outside_the_data_is_an_input_error() -> None:
    late = CONFIG.model_copy(update={"calibration_end": dt.date(2021, 1, 1), "observation_end": None})
    with pytest.raises(InputError, match=r"calibration_end 2021-01-01 is outside the data \(2020-01-01 to"):
        prepare(_relation(ROWS), late, "%Y-%m-%d")


def test_customer_ids_lose_ascii_spaces_at_both_ends_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = ["a", " a", "a ", "  a  ", "\u00a0a", "é", " é", "a b", "\ta"]
    con = duckdb.connect()
    for text in ids:
        trimmed = con.execute(f"SELECT {prepare_module._trimmed('x')} FROM (SELECT ? AS x)", [text]).fetchall()
        assert trimmed == [(text.strip(" "),)]
    rows = [(c, day, "10") for c in ids for day in ("2020-01-05", "2020-01-20", "2020-02-10")]
    one_pass = prepare(_relation(rows), CONFIG, "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", 5)  # ids that trim alike share a bucket
    monkeypatch.setattr(prepare_module, "ROWS_PER_FULL_PASS", 5)
    buckets = prepare(_relation(rows), CONFIG, "%Y-%m-%d")
    assert one_pass.full["customer_id"].tolist() == ["\ta", "a", "a b", "\u00a0a", "é"]
    assert one_pass.full.set_index("customer_id").loc["a", "frequency"] == 2.0  # four ids, one customer, 3 days
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)


def test_a_day_too_large_for_exact_sums_is_an_input_error() -> None:
    rows = ROWS + [("E", "2020-01-05", "9000000000000")] * 1100  # 9.9e15: beyond 922 trillion
    with pytest.raises(InputError, match=r"customer 'E' has more than 9.22e\+14 in purchases or returns on one day"):
        prepare(_relation(rows), CONFIG, "%Y-%m-%d")


def test_no_usable_rows_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no usable transactions"):
        prepare(_relation([(None, "2020-01-01", "1")]), CONFIG, "%Y-%m-%d", source="f.csv")


def _lifetimes_frame(prepared_calibration: pd.DataFrame) -> pd.DataFrame:
    return prepared_calibration.set_index("customer_id")


def _assert_equal_to_lifetimes(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert ours.index.tolist() == sorted(ref.index.tolist())
    ref = ref.loc[ours.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column], ref[f"{column}_cal"], err_msg=column)
    for column in ("frequency_holdout", "duration_holdout"):
        np.testing.assert_array_equal(ours[column], ref[column], err_msg=column)
    # Means of the same numbers; DuckDB and pandas may add them in another order (last-bit differences).
    np.testing.assert_allclose(ours["monetary_value"], ref["monetary_value_cal"], rtol=1e-13, atol=0)
    np.testing.assert_allclose(ours["monetary_value_holdout"], ref["monetary_value_holdout"], rtol=1e-13, atol=0)


def test_equal_to_lifetimes_on_cdnow_master(cdnow_master: pd.DataFrame) -> None:
    raw = cdnow_master.assign(timestamp=cdnow_master["date"].dt.strftime("%Y%m%d"))
    relation = duckdb.connect().from_df(raw[["customer_id", "timestamp", "amount"]])
    config = PrepareConfig(calibration_end=dt.date(1997, 9, 30), observation_end=dt.date(1998, 6, 30))
    prepared = prepare(relation, config, "%Y%m%d")
    assert prepared.ledger.rows_used == 69_659
    assert len(prepared.calibration) == 23_570
    ref = calibration_and_holdout_data(
        cdnow_master,
        "customer_id",
        "date",
        "1997-09-30",
        "1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="amount",
    )
    _assert_equal_to_lifetimes(_lifetimes_frame(prepared.calibration), ref)
    full_ref = summary_data_from_transaction_data(
        cdnow_master,
        "customer_id",
        "date",
        observation_period_end="1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="amount",
    )
    full = prepared.full.set_index("customer_id").loc[full_ref.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(full[column], full_ref[column])
    np.testing.assert_allclose(full["monetary_value"], full_ref["monetary_value"], rtol=1e-13, atol=0)


def _generated_transactions(seed: int = 11, customers: int = 1500) -> pd.DataFrame:
    """Synthetic feed where about 10% of customer-days hold several purchases."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2021-01-01")
    rows = []
    for i in range(customers):
        first = rng.integers(0, 200)
        days = np.unique(first + np.concatenate([[0], rng.integers(0, 365 - first, rng.poisson(4))]))
        for day in days:
            for _ in range(1 + (rng.random() < 0.1) * rng.integers(1, 4)):
                rows.append((f"c{i:05d}", start + day, round(float(rng.lognormal(3, 0.8)), 2)))
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.mark.parametrize(
    ("period", "unit", "freq", "multiplier"),
    [("day", "week", "D", 7), ("day", "day", "D", 1), ("week", "week", "W", 1)],
)
def test_equal_to_lifetimes_on_generated_data(period: str, unit: str, freq: str, multiplier: int) -> None:
    tx = _generated_transactions()
    per_day = tx.groupby(["customer_id", "date"]).size()
    assert 0.07 < (per_day > 1).mean() < 0.13
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]
    config = PrepareConfig(
        period=period,  # type: ignore[arg-type]
        time_unit=unit,  # type: ignore[arg-type]
        calibration_end=dt.date(2021, 8, 31),
        observation_end=dt.date(2021, 12, 31),
    )
    prepared = prepare(duckdb.connect().from_df(raw), config, "%Y-%m-%d")
    ref = calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        "2021-08-31",
        "2021-12-31",
        freq=freq,
        freq_multiplier=multiplier,
        monetary_value_col="amount",
    )
    _assert_equal_to_lifetimes(_lifetimes_frame(prepared.calibration), ref)


def test_month_unit_is_days_over_30_4375() -> None:
    config = CONFIG.model_copy(update={"time_unit": "month"})
    cal = prepare(_relation(ROWS), config, "%Y-%m-%d").calibration.set_index("customer_id")
    assert cal.loc["A", "recency"] == 28 / 30.4375
    assert cal.loc["A", "T"] == 30 / 30.4375


def _prepared(rows: Sequence[tuple[object, ...]], columns: list[str], **config: object) -> PreparedData:
    frame = pd.DataFrame(rows, columns=columns)
    return prepare(duckdb.connect().from_df(frame), CONFIG.model_copy(update=config), "%Y-%m-%d")


def test_returns_are_netted_against_the_latest_purchase_period() -> None:
    rows = [
        ("A", "2020-01-01", 10.0),
        ("A", "2020-01-10", 30.0),
        ("A", "2020-01-12", -12.0),  # refunds part of the 2020-01-10 purchase
        ("A", "2020-01-20", 20.0),
        ("A", "2020-02-15", 25.0),  # holdout purchase ...
        ("A", "2020-02-20", -40.0),  # ... and a larger holdout refund: holdout revenue floors at 0
        ("B", "2020-01-05", 8.0),
        ("B", "2020-01-06", 9.0),
    ]
    prepared = _prepared(rows, ["customer_id", "timestamp", "amount"])
    a = prepared.calibration.set_index("customer_id").loc["A"]
    assert (a["frequency"], a["monetary_value"], a["total_spend"]) == (2.0, (18.0 + 20.0) / 2, 48.0)
    assert (a["frequency_holdout"], a["revenue_holdout"]) == (1.0, 0.0)
    full = prepared.full.set_index("customer_id").loc["A"]
    assert (full["frequency"], full["total_spend"]) == (3.0, 10.0 + 18.0 + 20.0 + 0.0)
    assert (prepared.ledger.returns_netted, prepared.ledger.returns_unmatched) == (2, 0)


def test_returns_can_be_dropped() -> None:
    rows = [
        ("A", "2020-01-01", 10.0),
        ("A", "2020-01-10", 30.0),
        ("A", "2020-01-12", -12.0),
        ("B", "2020-02-02", 1),
    ]
    prepared = _prepared(rows, ["customer_id", "timestamp", "amount"], returns="drop")
    assert prepared.ledger.quarantined == {"return_dropped": 1}
    assert prepared.calibration.set_index("customer_id").loc["A", "monetary_value"] == 30.0


def test_invoice_lines_orders_and_cancellations() -> None:
    columns = ["customer_id", "timestamp", "quantity", "unit_price", "order_id"]
    rows = [
        ("A", "2020-01-01", "2", "5.0", "o1"),
        ("A", "2020-01-01", "1", "3.0", "o1"),  # same order: one transaction of 13
        ("A", "2020-01-01", "1", "3.0", "o1"),  # exact duplicate line: quarantined (order ids mapped)
        ("A", "2020-01-08", "1", "10.0", "o2"),
        ("A", "2020-01-08", "1", "6.0", "o3"),  # second order the same day: merged into the period
        ("A", "2020-01-09", "1", "4.0", "C-o3"),  # cancellation of part of o3, positive quantity
        ("A", "2020-02-10", "1", "7.0", "o4"),
        ("A", "2020-02-10", "1", "0", "o5"),  # zero-value order, quarantined by config
    ]
    frame = pd.DataFrame(rows, columns=columns)
    config = CONFIG.model_copy(update={"cancel_prefix": "C-", "zero_amount": "quarantine"})
    prepared = prepare(duckdb.connect().from_df(frame), config, "%Y-%m-%d")
    assert prepared.ledger.quarantined == {"duplicate": 1, "zero_amount": 1}
    a = prepared.calibration.set_index("customer_id").loc["A"]
    assert (a["frequency"], a["monetary_value"], a["total_spend"]) == (1.0, 12.0, 25.0)
    assert (a["frequency_holdout"], a["revenue_holdout"], a["monetary_value_holdout"]) == (1.0, 7.0, 7.0)


def test_duplicates_are_kept_without_order_ids_by_default() -> None:
    rows = [
        ("A", "2020-01-01", 10.0),
        ("A", "2020-01-01", 10.0),
        ("A", "2020-01-09", 5.0),
        ("A", "2020-02-09", 1.0),
    ]
    kept = _prepared(rows, ["customer_id", "timestamp", "amount"])
    assert kept.ledger.quarantined == {}
    assert kept.calibration["total_spend"].tolist() == [25.0]
    dropped = _prepared(rows, ["customer_id", "timestamp", "amount"], duplicates="quarantine")
    assert dropped.ledger.quarantined == {"duplicate": 1}


@pytest.mark.parametrize(("zone", "holdout"), [("UTC", 1.0), ("America/New_York", 0.0)])
def test_offsets_are_converted_to_the_configured_zone(zone: str, holdout: float) -> None:
    rows = [
        ("A", "2020-01-02 10:00:00", "5"),
        ("A", "2020-01-31T23:30:00-05:00", "7"),  # 04:30 on Feb 1st in UTC
        ("B", "2020-01-03", "4"),
        ("B", "2020-02-03", "4"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    prepared = prepare(duckdb.connect().from_df(frame), CONFIG.model_copy(update={"timezone": zone}))
    assert prepared.ledger.quarantined == {}
    a = prepared.calibration.set_index("customer_id").loc["A"]
    assert (a["frequency"], a["frequency_holdout"]) == (1.0 - holdout, holdout)


def test_native_timestamptz_column() -> None:
    con = duckdb.connect()
    relation = con.sql(
        "SELECT * FROM (VALUES ('A', TIMESTAMPTZ '2020-01-02 10:00:00+00', 5.0), "
        "('A', TIMESTAMPTZ '2020-02-01 02:00:00+00', 7.0), ('B', TIMESTAMPTZ '2020-01-03 00:00:00+00', 1.0), "
        "('B', TIMESTAMPTZ '2020-03-03 00:00:00+00', 1.0)) "
        "t(customer_id, timestamp, amount)"
    )
    assert relation is not None
    prepared = prepare(relation, CONFIG.model_copy(update={"timezone": "America/Los_Angeles"}))
    assert prepared.calibration.set_index("customer_id").loc["A", "frequency"] == 1.0  # Jan 31st 18:00 local


def test_observation_end_before_the_data_is_an_input_error() -> None:
    early = CONFIG.model_copy(update={"calibration_end": dt.date(2019, 1, 1), "observation_end": dt.date(2019, 6, 1)})
    with pytest.raises(
        InputError,
        match=r"no usable transactions after cleaning \(11 after_observation_end, 2 invalid_amount",
    ):
        prepare(_relation(ROWS), early, "%Y-%m-%d")


def test_lines_without_an_order_id_are_one_transaction_per_day() -> None:
    columns = ["customer_id", "timestamp", "amount", "order_id"]
    rows = [
        ("a", "2020-01-01", 10.0, None),
        ("a", "2020-01-05", 10.0, ""),
        ("a", "2020-01-09", 10.0, None),
        ("a", "2020-02-09", 10.0, None),
    ]
    a = _prepared(rows, columns).calibration.set_index("customer_id").loc["a"]
    assert (a["frequency"], a["frequency_holdout"], a["revenue_holdout"]) == (2.0, 1.0, 10.0)


def test_future_dates_are_quarantined_without_an_observation_end() -> None:
    rows = [*ROWS[:9], ("A", "2099-01-01", "5.0")]
    config = CONFIG.model_copy(update={"observation_end": None})
    prepared = prepare(_relation(rows), config, "%Y-%m-%d")
    assert prepared.ledger.quarantined == {"after_observation_end": 1}
    assert prepared.observation_end == dt.date(2020, 3, 1)


def test_compact_dates_are_read_without_a_format() -> None:
    rows = [("a", "20200101", "1"), ("a", "20200110", "2"), ("b", "20200203", "3")]
    prepared = prepare(_relation(rows), CONFIG)
    assert prepared.ledger.quarantined == {}
    assert prepared.calibration.set_index("customer_id").loc["a", "frequency"] == 1.0


def test_customer_buckets_give_identical_results_and_leave_no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = _generated_transactions(customers=300)
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]
    config = PrepareConfig(calibration_end=dt.date(2021, 8, 31), observation_end=dt.date(2021, 12, 31))
    con = duckdb.connect()
    one_pass = prepare(con.from_df(raw), config, "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", len(raw) // 5)  # one pass per bucket of customers
    monkeypatch.setattr(prepare_module, "ROWS_PER_FULL_PASS", len(raw) // 5)
    buckets = prepare(con.from_df(raw), config, "%Y-%m-%d")
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.weekly, buckets.weekly, check_exact=True)
    assert one_pass.ledger == buckets.ledger
    left = con.sql("SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()")
    assert left is not None
    assert [name for (name,) in left.fetchall() if name.startswith("clv_prepare")] == []


def test_buckets_summarised_as_scanned_equal_the_kept_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the observation end configured, each bucket is summarised as soon as it is scanned (and netted
    only if it holds returns); without it, the buckets are kept until the last day is known. The same feed
    gives the same summaries, weekly table and ledger either way, and in one pass."""
    tx = _generated_transactions(customers=400)
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"), order_id=[f"o{k // 2}" for k in range(len(tx))])
    raw = raw[["customer_id", "timestamp", "amount", "order_id"]].astype({"amount": str})
    returns = raw[raw["customer_id"].isin({"c00007", "c00123", "c00311"})].assign(
        amount=lambda frame: "-" + frame["amount"], order_id=lambda frame: "r" + frame["order_id"]
    )
    bad = pd.DataFrame(
        [("", "2021-03-01", "5", "x1"), ("c00001", "2021-03-01", "abc", "x2"), ("c00002", "", "5", "x3")],
        columns=raw.columns,
    )
    raw = pd.concat([raw, returns, bad], ignore_index=True)
    last = dt.date.fromisoformat(raw["timestamp"].max())
    kept_config = PrepareConfig(calibration_end=dt.date(2021, 8, 31))  # the observation end is the last day
    streamed_config = kept_config.model_copy(update={"observation_end": last})
    con = duckdb.connect()
    one_pass = prepare(con.from_df(raw), streamed_config, "%Y-%m-%d")
    one_pass_scores = prepare_as_of(con.from_df(raw), streamed_config, dt.date(2021, 10, 31), "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", len(raw) // 6)  # 7 buckets, most without returns
    monkeypatch.setattr(prepare_module, "ROWS_PER_FULL_PASS", len(raw) // 6)
    streamed = prepare(con.from_df(raw), streamed_config, "%Y-%m-%d")
    kept = prepare(con.from_df(raw), kept_config, "%Y-%m-%d")
    assert one_pass.ledger.returns_netted > 0
    assert one_pass.ledger.quarantined == {"missing_customer_id": 1, "missing_timestamp": 1, "invalid_amount": 1}
    for other in (streamed, kept):
        pd.testing.assert_frame_equal(one_pass.calibration, other.calibration, check_exact=True)
        pd.testing.assert_frame_equal(one_pass.full, other.full, check_exact=True)
        pd.testing.assert_frame_equal(one_pass.weekly, other.weekly, check_exact=True)
        assert (one_pass.ledger, one_pass.observation_end) == (other.ledger, other.observation_end)
    scores = prepare_as_of(con.from_df(raw), streamed_config, dt.date(2021, 10, 31), "%Y-%m-%d")
    pd.testing.assert_frame_equal(one_pass_scores.customers, scores.customers, check_exact=True)
    assert one_pass_scores.ledger == scores.ledger
