"""DuckDB prepare on real-feed shapes: invoice lines, float-looking ids, detected timestamps, event feeds."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.config import DataConfig, PrepareConfig
from pipeline.engines import duckdb_prepare as prepare_module
from pipeline.engines.duckdb_prepare import prepare, prepare_as_of
from pipeline.engines.duckdb_source import Transactions, open_transactions
from pipeline.engines.inputs import number_format
from pipeline.engines.prepared import PreparedData
from pipeline.errors import InputError
from tests.feeds import RETAIL_MAPPING, RetailFeed, online_retail_lines, write_with_separators
from tests.pipeline.engines.test_duckdb_prepare import CONFIG, ROWS, _prepared, _quarantined, _relation


def _open(path: Path, columns: Mapping[str, object], **data: object) -> Transactions:
    config = DataConfig.model_validate({"source": "csv", "path": path, "columns": columns, **data})
    return open_transactions(duckdb.connect(), config)


def _prepare_file(tx: Transactions, config: PrepareConfig) -> PreparedData:
    return prepare(tx.relation, config, tx.timestamp_format, source=tx.description, column_names=tx.column_names)


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
    tx = _open(path, RETAIL_MAPPING)
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
    quarantine = _quarantined(prepared)
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
    prepared = _prepare_file(_open(path, RETAIL_MAPPING, timestamp_format=us), config)
    assert prepared.ledger.quarantined == {"duplicate": 1}
    cal = prepared.calibration.set_index("customer_id")
    assert cal.loc["17850", "total_spend"] == 6 * 2.55 * 2 + 6 * 1.85
    assert list(prepared.full["customer_id"]) == ["13047", "17850"]
    quarantine = _quarantined(prepared)
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
    assert _prepare_file(_open(path, RETAIL_MAPPING, timestamp_format=us), config).ledger.quarantined == {}
    by_key = config.model_copy(update={"duplicate_key": ("InvoiceNo", "StockCode")})
    prepared = _prepare_file(_open(path, RETAIL_MAPPING, timestamp_format=us), by_key)
    assert prepared.ledger.quarantined == {"duplicate": 1}
    # The first row in the order of the other columns is kept, whatever the file order.
    assert _quarantined(prepared)["Description"].tolist() == ["WHITE METAL LANTERN"]
    with pytest.raises(InputError, match=r"lines\.csv: prepare\.duplicate_key names column\(s\) .*: Invoice"):
        _prepare_file(
            _open(path, RETAIL_MAPPING, timestamp_format=us), config.model_copy(update={"duplicate_key": ("Invoice",)})
        )


@pytest.mark.parametrize(
    ("delimiter", "decimal", "thousands"),
    [(";", ",", "."), (",", ".", ",")],
    ids=["1.200;2,55", "1,200 quoted"],
)
def test_numbers_with_other_separators_prepare_as_the_plain_file(
    retail: tuple[RetailFeed, Path], tmp_path: Path, delimiter: str, decimal: str, thousands: str
) -> None:
    """The invoice feed in hundreds (quantities up to 14,400) with numbers like 1.200 and 2,55 (data.csv.decimal
    and thousands): the same customers, to the bit, and the same row accounting as the plain file. Without the
    settings, the rows with such numbers are quarantined as invalid_amount (with a hint when that is all of
    them)."""
    feed, _ = retail
    lines = feed.lines.assign(Quantity=feed.lines["Quantity"] * 100)
    lines.to_csv(tmp_path / "plain.csv", index=False)
    plain = _prepare_file(_open(tmp_path / "plain.csv", RETAIL_MAPPING), RETAIL_CONFIG)
    path = tmp_path / "lines.csv"
    write_with_separators(lines, path, delimiter, decimal, thousands)
    assert f"{thousands}200" in path.read_text()  # 1,200 / 1.200 / 1 200
    csv = {"delimiter": delimiter, "decimal": decimal, "thousands": thousands}
    ours = _prepare_file(_open(path, RETAIL_MAPPING, csv=csv), RETAIL_CONFIG)
    assert ours.ledger == plain.ledger
    for name in ("calibration", "full", "weekly"):
        pd.testing.assert_frame_equal(getattr(ours, name), getattr(plain, name), check_exact=True)
    unset = _open(path, RETAIL_MAPPING, csv={"delimiter": delimiter})
    if decimal == ",":
        with pytest.raises(InputError, match=r"invalid_amount.*set data\.csv\.decimal and data\.csv\.thousands"):
            _prepare_file(unset, RETAIL_CONFIG)
    else:
        thousands_rows = (lines["CustomerID"].notna() & (lines["Quantity"].abs() >= 1000)).sum()
        assert _prepare_file(unset, RETAIL_CONFIG).ledger.quarantined["invalid_amount"] == thousands_rows


def test_a_number_of_another_shape_is_refused_not_rescaled(tmp_path: Path) -> None:
    """With thousands "." and decimal ",", text must be grouped by three: 12.50 is not read as 1250 but shown as it
    was, marked, and quarantined as invalid_amount; a missing amount stays missing. A typed (Parquet) amount is
    never rewritten, whatever data.csv says."""
    text = ["1.234,56", "12.50", "-7,5", " 1200 ", "abc", "", "1.234.567,8"]
    rows = [f"k1;2023-01-{day:02d};{amount}" for day, amount in enumerate(text, start=2)]
    (tmp_path / "sep.csv").write_text("\n".join(["c;d;a", *rows]) + "\n")
    columns = {"customer_id": "c", "timestamp": "d", "amount": "a"}
    csv = {"delimiter": ";", "decimal": ",", "thousands": "."}
    read = _open(tmp_path / "sep.csv", columns, csv=csv).relation.fetchall()
    marked = " (not in the data.csv number format)"
    assert [row[2] for row in read] == [
        "1234.56",
        "12.50" + marked,
        "-7.5",
        " 1200 ",
        "abc" + marked,
        None,
        "1234567.8",
    ]
    pd.DataFrame({"c": ["k1"], "d": ["2023-01-02"], "a": [1234.5]}).to_parquet(tmp_path / "typed.parquet")
    typed = DataConfig.model_validate(
        {"source": "parquet", "path": tmp_path / "typed.parquet", "columns": columns, "csv": csv}
    )
    assert number_format(typed) is None
    assert open_transactions(duckdb.connect(), typed).relation.fetchall() == [("k1", "2023-01-02", 1234.5)]


def test_number_separators_must_differ() -> None:
    with pytest.raises(ValueError, match=re.escape("data.csv.thousands and data.csv.decimal are both ','")):
        DataConfig.model_validate({"source": "csv", "path": "x.csv", "csv": {"decimal": ",", "thousands": ","}})
    with pytest.raises(ValueError, match=re.escape("Input should be '.' or ','")):
        DataConfig.model_validate({"source": "csv", "path": "x.csv", "csv": {"decimal": ";"}})


def test_rows_repeated_on_a_key_are_found_across_customer_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"c{i}", "2020-01-05", "10", f"o{i}", "x") for i in range(8)]
    rows += [(f"c{i}", "2020-02-05", "10", f"o{i}", "y") for i in range(8)]  # o0..o7 again, later
    rows += [(f"d{i}", "2020-02-05", "10", "o0", "z") for i in range(4)]  # o0 again, by other customers
    rows += [("e", "2020-02-05", "10", "o9", "x")]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id", "source:note"])
    config = CONFIG.model_copy(update={"duplicate_key": ("order_id",)})
    one_pass = prepare(duckdb.connect().from_df(frame), config, "%Y-%m-%d")
    monkeypatch.setattr(prepare_module, "ROWS_PER_PASS", 3)
    monkeypatch.setattr(prepare_module, "ROWS_PER_FULL_PASS", 3)
    buckets = prepare(duckdb.connect().from_df(frame), config, "%Y-%m-%d")
    assert one_pass.ledger == buckets.ledger
    assert buckets.ledger.quarantined == {"duplicate": 12}
    assert sorted(_quarantined(buckets)["note"]) == ["y"] * 8 + ["z"] * 4


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
    monkeypatch.setattr(prepare_module, "ROWS_PER_FULL_PASS", 2)
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


def test_a_configured_format_the_timestamps_do_not_match_is_named() -> None:
    rows = [("a", "01.05.2020 10:00", "1"), ("b", "02.05.2020 11:30", "1")]
    with pytest.raises(InputError) as raised:
        prepare(_relation(rows), CONFIG, "%Y-%m-%d %H:%M", source="f.csv")
    assert str(raised.value) == (
        "f.csv: no usable transactions after cleaning (2 invalid_timestamp); timestamps such as '01.05.2020 10:00' "
        "could not be read as data.timestamp_format '%Y-%m-%d %H:%M': correct it, or remove it to let the job "
        "detect the format"
    )


def test_the_hint_of_the_reason_with_most_rows_comes_first() -> None:
    """Amounts in another number format on most rows, and two dates that do not exist: the amount hint leads."""
    amounts = [("a", "2020-05-01", "1.234,50"), ("b", "2020-05-02", "7,50"), ("c", "2020-05-03", "1,5")]
    dates = [("d", "2020-02-30", "2"), ("e", "2020-02-31", "3")]
    with pytest.raises(InputError) as raised:
        prepare(_relation(amounts + dates), CONFIG, "%Y-%m-%d", source="f.csv")
    assert str(raised.value).startswith(
        "f.csv: no usable transactions after cleaning (3 invalid_amount, 2 invalid_timestamp); amounts are missing"
    )
    more_dates = [("f", "2020-04-31", "4"), ("g", "2020-06-31", "5")]
    with pytest.raises(InputError) as raised:
        prepare(_relation(amounts + dates + more_dates), CONFIG, "%Y-%m-%d", source="f.csv")
    assert str(raised.value).startswith(
        "f.csv: no usable transactions after cleaning (3 invalid_amount, 4 invalid_timestamp); timestamps such as "
        "'2020-02-30' could not be read as data.timestamp_format '%Y-%m-%d'"
    )


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
