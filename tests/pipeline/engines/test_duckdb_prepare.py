from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from pipeline.config import DataConfig, PrepareConfig
from pipeline.engines import duckdb_prepare as prepare_module
from pipeline.engines.duckdb_prepare import prepare, prepare_as_of
from pipeline.engines.duckdb_source import Transactions, open_transactions
from pipeline.engines.prepared import PreparedData
from pipeline.errors import InputError
from tests.feeds import RetailFeed, online_retail_lines

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


def _relation(rows: list[tuple[object, ...]]) -> duckdb.DuckDBPyRelation:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return duckdb.connect().from_df(frame)


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
    quarantine = prepared.quarantine.df()
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


def _prepared(rows: list[tuple[object, ...]], columns: list[str], **config: object) -> PreparedData:
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


def test_large_summaries_through_parquet_files_equal_the_direct_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = _generated_transactions(customers=300)
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]
    config = PrepareConfig(calibration_end=dt.date(2021, 8, 31), observation_end=dt.date(2021, 12, 31))
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    direct = prepare(con.from_df(raw), config, "%Y-%m-%d")
    scoring = prepare_as_of(con.from_df(raw), config, dt.date(2021, 12, 31), "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "FETCH_THROUGH_FILES", 0)
    files = prepare(con.from_df(raw), config, "%Y-%m-%d")
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    files_scoring = prepare_as_of(con.from_df(raw), config, dt.date(2021, 12, 31), "%Y-%m-%d")
    pd.testing.assert_frame_equal(scoring.customers, files_scoring.customers, check_exact=True)
    assert files.full["customer_id"].is_monotonic_increasing
    assert con.sql("SELECT current_setting('preserve_insertion_order')").fetchall() == [(False,)]


def test_customer_buckets_give_identical_results_and_leave_no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = _generated_transactions(customers=300)
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]
    config = PrepareConfig(calibration_end=dt.date(2021, 8, 31), observation_end=dt.date(2021, 12, 31))
    con = duckdb.connect()
    one_pass = prepare(con.from_df(raw), config, "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", len(raw) // 5)  # one pass per bucket of customers
    buckets = prepare(con.from_df(raw), config, "%Y-%m-%d")
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.weekly, buckets.weekly, check_exact=True)
    assert one_pass.ledger == buckets.ledger
    left = con.sql("SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()")
    assert left is not None
    assert [name for (name,) in left.fetchall() if name.startswith("clv_prepare")] == []


def _open(path: Path, columns: dict[str, object], **data: object) -> Transactions:
    config = DataConfig.model_validate({"source": "csv", "path": path, "columns": columns, **data})
    return open_transactions(duckdb.connect(), config)


def _prepare_file(tx: Transactions, config: PrepareConfig) -> PreparedData:
    return prepare(tx.relation, config, tx.timestamp_format, source=tx.description, column_names=tx.column_names)


RETAIL = {
    "order_id": "InvoiceNo",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "customer_id": "CustomerID",
    "timestamp": "InvoiceDate",
}
RETAIL_CONFIG = PrepareConfig(calibration_end=dt.date(2011, 9, 9))


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> tuple[RetailFeed, Path]:
    feed = online_retail_lines()
    path = tmp_path_factory.mktemp("retail") / "online_retail.csv"
    feed.lines.to_csv(path, index=False)
    return feed, path


def test_the_invoice_feed_is_what_the_issue_describes(retail: tuple[RetailFeed, Path]) -> None:
    feed, path = retail
    lines = feed.lines
    assert 19_000 < len(lines) < 23_000
    assert feed.customers == lines["CustomerID"].nunique() == 800
    assert lines.duplicated().sum() == feed.true_duplicates == 18
    assert feed.same_quantity_and_price > 1_000  # what the mapped-columns rule took for duplicates
    assert 1_000 < feed.empty_ids < 3_000
    assert feed.cancellation_lines == lines["InvoiceNo"].str.startswith("C").sum() == (lines["Quantity"] < 0).sum()
    text = path.read_text().splitlines()
    assert text[0] == "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    stamp = re.compile(r",([0-9]{1,2})/([0-9]{1,2})/201[01] ([0-9]{1,2}):[0-9]{2},")
    assert all(stamp.search(line) for line in text[1:])  # as 12/1/2010 8:26
    assert any(stamp.search(line)[2] == "1" and len(stamp.search(line)[3]) == 1 for line in text[1:])  # type: ignore[index]
    assert sum(re.search(r",[0-9]{5}\.0,", line) is not None for line in text) == len(lines) - feed.empty_ids
    assert any(",," in line for line in text)  # empty customer ids
    again = online_retail_lines()
    pd.testing.assert_frame_equal(again.lines, lines)


def test_invoice_lines_keep_every_distinct_line(retail: tuple[RetailFeed, Path]) -> None:
    """The UCI-style feed with the default rules: only the lines loaded twice are duplicates, lines
    without a customer id are the only other loss, and every distinct line's revenue is kept.

    Before: every timestamp was invalid without a format; with one, 1,258 lines (80,538.31 of revenue)
    were quarantined as duplicates, of which 18 were."""
    feed, path = retail
    tx = _open(path, RETAIL)
    prepared = _prepare_file(tx, RETAIL_CONFIG)
    ledger = prepared.ledger
    assert prepared.timestamp_format == "%m/%d/%Y %H:%M"  # detected: nothing configured
    assert ledger.quarantined == {"missing_customer_id": feed.empty_ids, "duplicate": feed.true_duplicates}
    assert ledger.rows_in == len(feed.lines) == ledger.rows_used + ledger.rows_quarantined
    assert (ledger.returns_netted, ledger.returns_unmatched) == (feed.cancellation_lines, 0)
    full = prepared.full
    assert len(full) == feed.customers
    assert not full["customer_id"].str.contains(r"\.").any()  # 17850.0 is customer 17850
    # Revenue: the input's purchase lines with an id, minus the quarantined ones (written with their
    # own columns), is exactly the revenue of the distinct lines; the summaries net the cancellations.
    quarantine = prepared.quarantine.df()  # type: ignore[attr-defined]
    assert list(quarantine.columns) == [*feed.lines.columns, "reason"]

    def cents(frame: pd.DataFrame) -> int:
        value = frame["Quantity"].astype(float) * frame["UnitPrice"].astype(float)
        purchase = (value > 0) & frame["CustomerID"].notna()
        return int((value[purchase] * 100).round().sum())

    assert cents(feed.lines) - cents(quarantine) == feed.revenue
    assert round(full["total_spend"].sum() * 100) == feed.revenue - feed.cancelled
    assert prepared.has_amounts


def test_products_at_the_same_quantity_and_price_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0\n"
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,2.55,17850.0\n"  # another product: kept
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,2.55,17850.0\n"  # loaded twice: duplicate
        "536366,22633,HAND WARMER,6,12/1/2010 8:28,1.85,17850.0\n"
        "536367,22633,HAND WARMER,6,1/3/2011 8:28,1.85,17850.0\n"
        "536368,22633,HAND WARMER,6,1/5/2011 8:28,1.85,13047\n"
    )
    config = PrepareConfig(calibration_end=dt.date(2010, 12, 31), observation_end=dt.date(2011, 1, 31))
    us = "%m/%d/%Y %H:%M"  # all days are 12 or less: month or day first cannot be told
    prepared = _prepare_file(_open(path, RETAIL, timestamp_format=us), config)
    assert prepared.ledger.quarantined == {"duplicate": 1}
    cal = prepared.calibration.set_index("customer_id")
    assert cal.loc["17850", "total_spend"] == 6 * 2.55 * 2 + 6 * 1.85
    assert list(prepared.full["customer_id"]) == ["13047", "17850"]
    quarantine = prepared.quarantine.df()  # type: ignore[attr-defined]
    assert quarantine.to_dict("records") == [
        {
            "InvoiceNo": "536365",
            "StockCode": "71053",
            "Description": "WHITE METAL LANTERN",
            "Quantity": "6",
            "InvoiceDate": "12/1/2010 8:26",
            "UnitPrice": "2.55",
            "CustomerID": "17850.0",
            "reason": "duplicate",
        }
    ]
    # Two loads of one line with another description: not the same row, unless the key says so.
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("WHITE METAL LANTERN", "LANTERN")
    keyed = "\n".join(lines) + "\n"
    path.write_text(keyed)
    assert _prepare_file(_open(path, RETAIL, timestamp_format=us), config).ledger.quarantined == {}
    by_key = config.model_copy(update={"duplicate_key": ("InvoiceNo", "StockCode")})
    prepared = _prepare_file(_open(path, RETAIL, timestamp_format=us), by_key)
    assert prepared.ledger.quarantined == {"duplicate": 1}
    # The first row in the order of the other columns is kept, whatever the file order.
    assert prepared.quarantine.df()["Description"].tolist() == ["WHITE METAL LANTERN"]  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=r"lines\.csv: prepare\.duplicate_key names column\(s\) .*: Invoice"):
        _prepare_file(
            _open(path, RETAIL, timestamp_format=us), config.model_copy(update={"duplicate_key": ("Invoice",)})
        )


def test_rows_repeated_on_a_key_are_found_across_customer_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"c{i}", "2020-01-05", "10", f"o{i}", "x") for i in range(8)]
    rows += [(f"c{i}", "2020-02-05", "10", f"o{i}", "y") for i in range(8)]  # o0..o7 again, later
    rows += [(f"d{i}", "2020-02-05", "10", "o0", "z") for i in range(4)]  # o0 again, by other customers
    rows += [("e", "2020-02-05", "10", "o9", "x")]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id", "source:note"])
    config = CONFIG.model_copy(update={"duplicate_key": ("order_id",)})
    one_pass = prepare(duckdb.connect().from_df(frame), config, "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", 3)
    buckets = prepare(duckdb.connect().from_df(frame), config, "%Y-%m-%d")
    assert one_pass.ledger == buckets.ledger
    assert buckets.ledger.quarantined == {"duplicate": 12}
    assert sorted(buckets.quarantine.df()["note"]) == ["y"] * 8 + ["z"] * 4  # type: ignore[attr-defined]


def test_float_looking_ids_are_whole_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """pandas writes int ids with empty cells as 17850.0; scoring sends 17850: one customer."""
    rows = [
        ("17850.0", "2020-01-05", "10"),
        ("17850", "2020-01-20", "10"),
        (" 17850.00 ", "2020-02-10", "10"),
        ("12346.5", "2020-01-06", "10"),
        ("1.5e3", "2020-01-06", "10"),
        ("", "2020-01-06", "10"),
    ]
    one_pass = prepare(_relation(rows), CONFIG, "%Y-%m-%d")
    assert one_pass.full["customer_id"].tolist() == ["1.5e3", "12346.5", "17850"]
    assert one_pass.calibration.set_index("customer_id").loc["17850", "frequency"] == 1.0
    assert one_pass.ledger.quarantined == {"missing_customer_id": 1}
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", 2)  # 17850 and 17850.0 share a bucket
    pd.testing.assert_frame_equal(prepare(_relation(rows), CONFIG, "%Y-%m-%d").full, one_pass.full, check_exact=True)
    scored = prepare_as_of(_relation(rows), CONFIG, dt.date(2020, 3, 1), "%Y-%m-%d")
    assert scored.customers["customer_id"].tolist() == ["1.5e3", "12346.5", "17850"]


def test_order_ids_lose_a_zero_fraction_too() -> None:
    columns = ["customer_id", "timestamp", "amount", "order_id"]
    rows = [("a", "2020-01-05", 10.0, "7.0"), ("a", "2020-01-06", 5.0, "7"), ("a", "2020-01-20", 1.0, "8")]
    rows += [("b", "2020-02-20", 1.0, "9")]
    a = _prepared(rows, columns).calibration.set_index("customer_id").loc["a"]
    assert (a["frequency"], a["monetary_value"]) == (1.0, 1.0)  # order 7 is one order, dated by its first line


def test_us_timestamps_are_detected_without_a_format(tmp_path: Path) -> None:
    """`12/1/2010 8:26` without data.timestamp_format made every row invalid_timestamp."""
    rows = [("a", "12/1/2019 8:26", "1"), ("a", "1/13/2020 10:00", "2"), ("b", "2/3/2020 23:59", "3"), ("b", "", "1")]
    prepared = prepare(_relation(rows), CONFIG)
    assert prepared.timestamp_format == "%m/%d/%Y %H:%M"
    assert prepared.ledger.quarantined == {"missing_timestamp": 1}
    assert (
        prepared.calibration.set_index("customer_id").loc["a", "T"]
        == (dt.date(2020, 1, 31) - dt.date(2019, 12, 1)).days / 7
    )
    assert prepare(_relation(ROWS), CONFIG).timestamp_format is None  # DuckDB reads ISO dates itself
    assert prepare(_relation(ROWS), CONFIG, "%Y-%m-%d").timestamp_format == "%Y-%m-%d"
    scored = prepare_as_of(_relation(rows), CONFIG, dt.date(2020, 3, 1))
    assert (scored.timestamp_format, len(scored.customers)) == ("%m/%d/%Y %H:%M", 2)


def test_ambiguous_timestamps_ask_for_a_format() -> None:
    rows = [("a", "3/1/2020", "1"), ("a", "1/10/2020", "2"), ("b", "2/3/2020", "3")]
    with pytest.raises(
        InputError,
        match=r"^f\.csv: timestamps such as '1/10/2020' read as '%m/%d/%Y' \(2020-01-10 00:00\) "
        r"or '%d/%m/%Y' \(2020-10-01 00:00\); set data\.timestamp_format$",
    ):
        prepare(_relation(rows), CONFIG, source="f.csv")
    assert prepare(_relation(rows), CONFIG, "%m/%d/%Y").ledger.rows_used == 3


def test_unreadable_timestamps_name_a_value_and_the_setting() -> None:
    rows = [("a", "3rd of May 2020", "1"), ("b", "4th of May 2020", "1")]
    with pytest.raises(
        InputError,
        match=r"no usable transactions after cleaning \(2 invalid_timestamp\); timestamps such as "
        r"'3rd of May 2020' could not be read: set data\.timestamp_format \(a strptime format\)$",
    ):
        prepare(_relation(rows), CONFIG, source="f.csv")


def test_an_event_feed_has_purchases_and_no_money_columns(tmp_path: Path) -> None:
    """`date,id` (lifetimes' example_transactions.csv): every readable row is a purchase; no spend columns."""
    path = tmp_path / "events.csv"
    rows = ["2020-01-01,a,C1", "2020-01-01,a,C1", "2020-01-15,a,C2", "2020-02-10,a,C3", "2020-01-20,b,C4"]
    path.write_text("\n".join(["date,id,order", *rows, "not a date,b,C5", ",b,C6"]) + "\n")
    tx = _open(path, {"customer_id": "id", "timestamp": "date", "amount": None})
    prepared = _prepare_file(tx, CONFIG)
    assert not prepared.has_amounts
    assert prepared.ledger.quarantined == {"invalid_timestamp": 1, "missing_timestamp": 1}
    assert prepared.ledger.rows_used == 5
    assert list(prepared.calibration.columns) == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "first_purchase",
        "frequency_holdout",
        "recent_purchases",
        "duration_holdout",
    ]
    assert list(prepared.full.columns) == ["customer_id", "frequency", "recency", "T", "first_purchase"]
    a = prepared.calibration.set_index("customer_id").loc["a"]
    assert (a["frequency"], a["recency"], a["frequency_holdout"]) == (1.0, 2.0, 1.0)
    # An order id starting with the cancel prefix is no return without amounts; repeated rows stay.
    with_orders = _open(path, {"customer_id": "id", "timestamp": "date", "amount": None, "order_id": "order"})
    orders = _prepare_file(with_orders, CONFIG.model_copy(update={"returns": "drop", "zero_amount": "quarantine"}))
    assert orders.ledger.quarantined == {"invalid_timestamp": 1, "missing_timestamp": 1, "duplicate": 1}
    scored = prepare_as_of(tx.relation, CONFIG, dt.date(2020, 3, 1), column_names=tx.column_names)
    assert not scored.has_amounts
    assert list(scored.customers.columns) == ["customer_id", "frequency", "recency", "T", "first_purchase"]


def test_recent_purchases_count_the_last_holdout_length_of_calibration() -> None:
    """The last_period baselines' window: the holdout's length (60 days here) before calibration_end."""
    rows = [
        ("A", "2019-11-01", "5"),  # before the window (it opens after 2019-12-02)
        ("A", "2019-12-02", "5"),  # on its first edge: outside, as for recent_spend
        ("A", "2019-12-10", "7"),
        ("A", "2019-12-10", "3"),  # the same day: one purchase period
        ("A", "2020-01-31", "2"),
        ("A", "2020-02-05", "4"),  # holdout
        ("B", "2020-01-20", "-1"),  # a return is no purchase
        ("B", "2019-10-01", "8"),
        ("C", "2020-03-01", "1"),  # new in the holdout
    ]
    prepared = prepare(_relation(rows), CONFIG, "%Y-%m-%d")
    cal = prepared.calibration.set_index("customer_id")
    assert cal["recent_purchases"].to_dict() == {"A": 2.0, "B": 0.0}
    assert cal.loc["A", "recent_spend"] == 12.0
