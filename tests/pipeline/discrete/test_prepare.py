"""The discrete feed's prepare: (x, t_x, n) per customer by calendar opportunity, quarantine reconciled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest

from pipeline.commands.business_feed import opened_feed
from pipeline.config import parse_config
from pipeline.discrete.prepare import Histories, prepare_opportunities
from pipeline.errors import InputError
from tests.feeds import duckdb_engine, duckdb_relation

ROWS = [
    ("a", "2020-03-10", "50"),  # first purchase (2020 is not an opportunity)
    ("a", "2021-06-01", "50"),
    ("a", "2021-09-01", "20"),  # the same opportunity (2021) once
    ("a", "2023-02-01", "50"),
    ("b", "2021-12-31", "10"),
    ("c", "2024-01-05", "10"),  # first purchase in the running period: not counted yet
    ("b", "not a date", "10"),  # invalid_timestamp
    ("", "2022-01-01", "10"),  # missing_customer_id
]


def test_histories_by_calendar_opportunity(tmp_path: Path) -> None:
    path = tmp_path / "donations.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = duckdb_engine(config.engine)
    histories = prepare_opportunities(engine.connection, duckdb_relation(engine.open(config.data)), config)
    assert histories.ledger.rows_in == 8
    assert histories.ledger.rows_used == 6
    assert histories.ledger.reasons == {"invalid_timestamp": 1, "missing_customer_id": 1}
    full = histories.full.set_index("customer_id")
    assert list(full.index) == ["a", "b"]
    assert full["frequency"].tolist() == [2, 0]  # a: 2021 and 2023 (2024 is still running)
    assert full["recency"].tolist() == [3, 0]
    assert full["n_periods"].tolist() == [3, 2]  # a: 2021-2023; b: 2022-2023
    assert full["monetary_value"].tolist() == [60.0, 0.0]  # a: 2021 (50 + 20) and 2023 (50); b: no repeat
    calibration = histories.calibration.set_index("customer_id")
    assert calibration["frequency"].tolist() == [1, 0]
    assert calibration["recency"].tolist() == [1, 0]
    assert calibration["n_periods"].tolist() == [2, 1]
    assert calibration["recent"].tolist() == [0, 0]  # the holdout is one opportunity (2023): a bought in 2021
    assert calibration["monetary_value"].tolist() == [70.0, 0.0]  # a's 2021 opportunity: 50 + 20


def test_histories_as_of_a_date_for_scoring(tmp_path: Path) -> None:
    """``as_of`` (clv score): the histories as of that date, the rows after it quarantined, no calibration."""
    import datetime as dt

    path = tmp_path / "donations.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = duckdb_engine(config.engine)
    source = duckdb_relation(engine.open(config.data))
    histories = prepare_opportunities(engine.connection, source, config, as_of=dt.date(2022, 12, 31))
    assert histories.ledger.rows_in == 8
    assert histories.ledger.reasons == {
        "invalid_timestamp": 1,
        "missing_customer_id": 1,
        "after_observation_end": 2,  # a's 2023-02-01 and c's 2024-01-05
    }
    assert histories.ledger.rows_used == 4
    assert (histories.calibration_end, histories.observation_end) == (dt.date(2022, 12, 31), dt.date(2022, 12, 31))
    assert histories.calibration.empty
    full = histories.full.set_index("customer_id")
    assert list(full.index) == ["a", "b"]
    assert full["frequency"].tolist() == [1, 0]  # as the training's calibration histories at the same date
    assert full["recency"].tolist() == [1, 0]
    assert full["n_periods"].tolist() == [2, 1]


def _histories(
    tmp_path: Path, rows: Sequence[tuple[str, ...]], columns: list[str], prepare: Mapping[str, object] | None = None
) -> Histories:
    path = tmp_path / "feed.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    mapped: dict[str, str] = {"timestamp": "date"}
    if "invoice" in columns:
        mapped["order_id"] = "invoice"
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": mapped},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30", **(prepare or {})},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = duckdb_engine(config.engine)
    try:
        return prepare_opportunities(engine.connection, duckdb_relation(engine.open(config.data)), config)
    finally:
        engine.close()


IDENTICAL = [
    ("a", "2020-03-10", "50"),
    ("a", "2021-06-01", "20"),
    ("a", "2021-06-01", "20"),  # the same customer, day and amount again: a second real line (no order id)
    ("a", "2023-02-01", "5"),
]


def test_identical_lines_without_an_order_id_are_two_purchases(tmp_path: Path) -> None:
    """``prepare.duplicates: auto`` without an order id keeps identical lines, as the non-contractual job does."""
    histories = _histories(tmp_path, IDENTICAL, ["customer_id", "date", "amount"])
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (4, 4, 0)
    assert ledger.reasons == {}
    assert ledger.charges == 4
    full = histories.full.set_index("customer_id")
    assert full["frequency"].tolist() == [2]
    assert full["monetary_value"].tolist() == [22.5]  # 2021: 20 + 20, 2023: 5 (12.5 when a line was dropped)
    assert histories.calibration["monetary_value"].tolist() == [40.0]


def test_identical_lines_are_duplicates_when_configured(tmp_path: Path) -> None:
    histories = _histories(tmp_path, IDENTICAL, ["customer_id", "date", "amount"], {"duplicates": "quarantine"})
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (4, 3, 1)
    assert ledger.reasons == {"duplicate": 1}
    assert histories.full["monetary_value"].tolist() == [12.5]  # 2021: 20, 2023: 5


def test_the_quarantined_rows_are_kept_with_their_reasons(tmp_path: Path) -> None:
    """Every quarantined row, its columns as text and its reason, sorted by reason then by the columns (the
    relation's own names here; the source's through the job, tested in test_command)."""
    rows = [*IDENTICAL, ("", "2021-03-01", "7"), ("a", "someday", "8"), ("a", "2024-07-01", "9")]
    histories = _histories(tmp_path, rows, ["customer_id", "date", "amount"], {"duplicates": "quarantine"})
    quarantine = histories.quarantine
    assert len(quarantine) == histories.ledger.rows_quarantined == 4
    assert list(quarantine.columns) == ["customer_id", "timestamp", "amount", "reason"]
    assert quarantine["reason"].tolist() == [
        "after_observation_end",
        "duplicate",
        "invalid_timestamp",
        "missing_customer_id",
    ]
    assert quarantine["timestamp"].tolist() == ["2024-07-01", "2021-06-01", "someday", "2021-03-01"]


def test_a_repeated_invoice_line_is_a_duplicate_another_line_is_not(tmp_path: Path) -> None:
    rows = [
        ("a", "2020-03-10", "50", "i1", "x"),
        ("a", "2021-06-01", "20", "i2", "x"),
        ("a", "2021-06-01", "20", "i2", "y"),  # another product on the same invoice: a real line
        ("a", "2021-06-01", "20", "i2", "y"),  # the same invoice line loaded twice: a duplicate
        ("a", "2023-02-01", "5", "i3", "x"),
    ]
    histories = _histories(tmp_path, rows, ["customer_id", "date", "amount", "invoice", "product"])
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (5, 4, 1)
    assert ledger.reasons == {"duplicate": 1}
    assert histories.full["monetary_value"].tolist() == [22.5]  # 2021: 20 + 20, 2023: 5


RETURNS = [
    ("a", "2020-03-10", "50"),
    ("a", "2021-06-01", "30"),
    ("a", "2021-09-01", "-10"),  # nets a's 2021 opportunity to 20
    ("a", "2023-02-01", "5"),
    ("a", "2023-03-01", "-8"),  # nets a's 2023 opportunity to 0, not below (still a purchase)
    ("b", "2020-05-01", "-5"),  # before b's first purchase: unmatched, no effect
    ("b", "2021-04-01", "10"),
    ("b", "2022-02-01", "10"),
    ("c", "2020-01-01", "10"),
    ("c", "2021-05-01", "40"),
    ("c", "2023-05-01", "-15"),  # a holdout return: nets c's 2021 in the full history only
]


def test_returns_are_netted_with_returns_net(tmp_path: Path) -> None:
    histories = _histories(tmp_path, RETURNS, ["customer_id", "date", "amount"], {"returns": "net"})
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (11, 11, 0)
    assert ledger.charges == 7
    full = histories.full.set_index("customer_id")
    assert list(full.index) == ["a", "b", "c"]
    assert full["frequency"].tolist() == [2, 1, 1]
    assert full["n_periods"].tolist() == [3, 2, 3]
    assert full["monetary_value"].tolist() == [10.0, 10.0, 25.0]  # a: (20 + 0) / 2; c: 40 - 15
    calibration = histories.calibration.set_index("customer_id")
    assert calibration["frequency"].tolist() == [1, 1, 1]
    assert calibration["monetary_value"].tolist() == [20.0, 10.0, 40.0]  # returns after 2022-12-31 not yet


def test_returns_are_quarantined_with_returns_drop(tmp_path: Path) -> None:
    histories = _histories(tmp_path, RETURNS, ["customer_id", "date", "amount"], {"returns": "drop"})
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (11, 7, 4)
    assert ledger.reasons == {"return_dropped": 4}
    assert ledger.charges == 7
    full = histories.full.set_index("customer_id")
    assert full["frequency"].tolist() == [2, 1, 1]
    assert full["monetary_value"].tolist() == [17.5, 10.0, 40.0]  # a: (30 + 5) / 2
    calibration = histories.calibration.set_index("customer_id")
    assert calibration["monetary_value"].tolist() == [30.0, 10.0, 40.0]


def test_a_feed_of_returns_only_has_no_usable_purchases(tmp_path: Path) -> None:
    rows = [("a", "2021-06-01", "-50"), ("b", "2022-02-01", "-5"), ("", "2022-01-01", "10")]
    with pytest.raises(InputError) as error:
        _histories(tmp_path, rows, ["customer_id", "date", "amount"])
    assert str(error.value) == "the feed: no usable purchases after cleaning (1 missing_customer_id, 2 returns)"


def test_as_of_histories_are_the_trainings_calibration_histories(tmp_path: Path) -> None:
    """``as_of`` resolves the observation end as the contractual prepare does (``as_of_config``): the histories as
    of the calibration end are the training's calibration histories (``recent`` aside, 0 without a holdout)."""
    import datetime as dt

    path = tmp_path / "feed.csv"
    pd.DataFrame(RETURNS, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = duckdb_engine(config.engine)
    try:
        trained = prepare_opportunities(engine.connection, duckdb_relation(engine.open(config.data)), config)
        scored = prepare_opportunities(
            engine.connection,
            duckdb_relation(engine.open(config.data)),
            config,
            as_of=dt.date(2022, 12, 31),
        )
    finally:
        engine.close()
    assert scored.observation_end == dt.date(2022, 12, 31)
    assert scored.ledger.reasons == {"after_observation_end": 3}
    pd.testing.assert_frame_equal(scored.full.drop(columns="recent"), trained.calibration.drop(columns="recent"))


ZERO = [
    ("a", "2020-03-10", "25"),  # first purchase
    ("a", "2021-06-01", "0"),  # zero-amount purchases: opportunities used (2021, 2022)
    ("a", "2022-04-01", "0"),
    ("b", "2020-05-01", "25"),
    ("b", "2022-11-30", "0"),
    ("b", "2023-01-10", "0"),  # the last day of the data
]


def test_zero_amount_purchases_are_purchases_with_zero_amount_keep(tmp_path: Path) -> None:
    """``prepare.zero_amount: keep`` (the default): a purchase of 0 is a purchase, as in the non-contractual job:
    it uses its opportunity (frequency, recency) and its date ends the observation (the last day of the data)."""
    import datetime as dt

    histories = _histories(
        tmp_path, ZERO, ["customer_id", "date", "amount"], {"calibration_end": "2021-12-31", "observation_end": None}
    )
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (6, 6, 0, 6)
    assert histories.observation_end == dt.date(2023, 1, 10)
    full = histories.full.set_index("customer_id")
    assert full["frequency"].tolist() == [2, 1]
    assert full["recency"].tolist() == [2, 2]
    assert full["n_periods"].tolist() == [2, 2]
    assert full["monetary_value"].tolist() == [0.0, 0.0]
    assert histories.calibration["frequency"].tolist() == [1, 0]


def test_zero_amount_purchases_are_quarantined_with_zero_amount_quarantine(tmp_path: Path) -> None:
    prepare = {"calibration_end": "2021-12-31", "observation_end": "2023-01-10", "zero_amount": "quarantine"}
    histories = _histories(tmp_path, ZERO, ["customer_id", "date", "amount"], prepare)
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (6, 2, 4, 2)
    assert ledger.reasons == {"zero_amount": 4}
    assert histories.full["frequency"].tolist() == [0, 0]


def _feed_histories(
    tmp_path: Path, frame: pd.DataFrame, columns: Mapping[str, object], prepare: Mapping[str, object]
) -> Histories:
    """The histories of ``frame`` (written as a CSV) mapped with ``columns`` (timestamp: date)."""
    path = tmp_path / "feed.csv"
    frame.to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date", **columns}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30", **prepare},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = duckdb_engine(config.engine)
    try:
        return prepare_opportunities(engine.connection, duckdb_relation(engine.open(config.data)), config)
    finally:
        engine.close()


# Yearly gifts as invoice lines: messy ids (spaces, a float's .0), two lines on one invoice, a cancelled
# invoice (order id C...), a negative quantity (a return), an unreadable quantity, a repeated line.
LINES = [
    ("i1", " 101", "2020-03-10", "2", "25"),
    ("i2", "101.0", "2021-06-01", "1", "30"),
    ("i2", "101", "2021-06-01", "4", "2.5"),  # the same invoice, another line: 30 + 10 in 2021
    ("C2", "101", "2021-07-01", "1", "30"),  # a cancellation: nets 2021 to 10
    ("i3", "101", "2023-02-01", "3", "5"),
    ("i4", "102", "2020-05-01", "1", "10"),
    ("i5", "102", "2022-02-01", "-2", "5"),  # a return (-10): nets 102's 2022 opportunity (same period)
    ("i6", "102 ", "2022-04-01", "2", "20"),
    ("i6", "102 ", "2022-04-01", "2", "20"),  # the same invoice line again: a duplicate
    ("i7", "102", "2023-05-01", "x", "20"),  # invalid_amount
    ("i8", "", "2022-01-01", "1", "10"),  # missing_customer_id
]


def _lines(tmp_path: Path, prepare: dict[str, object] | None = None) -> Histories:
    frame = pd.DataFrame(LINES, columns=["invoice", "donor", "date", "qty", "price"])
    mapped = {"customer_id": "donor", "order_id": "invoice", "quantity": "qty", "unit_price": "price"}
    return _feed_histories(tmp_path / "lines", frame, mapped, prepare or {})


def _amounts(tmp_path: Path, prepare: dict[str, object] | None = None) -> Histories:
    """The same lines with the amount each is worth (quantity x unit price, as the amount a user would export)."""
    rows = []
    for invoice, donor, date, qty, price in LINES:
        amount = str(float(qty) * float(price)) if qty != "x" else "x"
        rows.append((invoice, donor, date, amount, f"{qty}@{price}"))  # the product column keeps lines distinct
    frame = pd.DataFrame(rows, columns=["invoice", "donor", "date", "amount", "product"])
    return _feed_histories(tmp_path / "amounts", frame, {"customer_id": "donor", "order_id": "invoice"}, prepare or {})


@pytest.mark.parametrize("returns", ["net", "drop"])
def test_quantity_times_unit_price_is_the_amount_of_the_line(tmp_path: Path, returns: str) -> None:
    """A line's amount is quantity x unit price: the histories and the ledger of the equivalent amount feed,
    with the non-contractual job's rules (ids, duplicates, cancellations, returns, invalid amounts)."""
    (tmp_path / "lines").mkdir()
    (tmp_path / "amounts").mkdir()
    lines, amounts = _lines(tmp_path, {"returns": returns}), _amounts(tmp_path, {"returns": returns})
    assert lines.has_amounts
    pd.testing.assert_frame_equal(lines.full, amounts.full, check_exact=True)
    pd.testing.assert_frame_equal(lines.calibration, amounts.calibration, check_exact=True)
    assert lines.ledger == amounts.ledger
    dropped = {"return_dropped": 2} if returns == "drop" else {}
    assert lines.ledger.reasons == {"duplicate": 1, "invalid_amount": 1, "missing_customer_id": 1, **dropped}
    assert lines.ledger.rows_in == lines.ledger.rows_used + lines.ledger.rows_quarantined == 11
    assert lines.ledger.charges == 6  # i1, both lines of i2, i3, i4, i6
    full = lines.full.set_index("customer_id")
    assert list(full.index) == ["101", "102"]  # " 101", "101.0" and "101" are one donor
    assert full["frequency"].tolist() == [2, 1]
    assert full["recency"].tolist() == [3, 2]
    # 101: 2021 is 30 + 10 less the cancelled 30 (net) or 40 (drop), 2023 is 15; 102: 2022 is 40 less 10 (net)
    expected = [(10 + 15) / 2, 30.0] if returns == "net" else [(40 + 15) / 2, 40.0]
    assert full["monetary_value"].tolist() == expected


def test_an_event_feed_gives_every_row_a_purchase_and_no_money(tmp_path: Path) -> None:
    """An event feed (customer, date): every used row is a purchase, the histories of the amount feed of the
    same rows, without ``monetary_value``; no amount rules, so no row is quarantined for its amount."""
    (tmp_path / "events").mkdir()
    (tmp_path / "amounts").mkdir()
    frame = pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"])
    events = _feed_histories(tmp_path / "events", frame.drop(columns="amount"), {"amount": None}, {})
    amounts = _feed_histories(tmp_path / "amounts", frame, {}, {})
    assert not events.has_amounts
    assert amounts.has_amounts
    assert "monetary_value" not in events.full.columns
    assert "monetary_value" not in events.calibration.columns
    pd.testing.assert_frame_equal(events.full, amounts.full.drop(columns="monetary_value"), check_exact=True)
    calibration = amounts.calibration.drop(columns="monetary_value")
    pd.testing.assert_frame_equal(events.calibration, calibration, check_exact=True)
    assert events.ledger == amounts.ledger
    assert events.ledger.reasons == {"invalid_timestamp": 1, "missing_customer_id": 1}


def test_an_event_feed_has_no_returns_nor_amount_rules(tmp_path: Path) -> None:
    """Without money, an order id with the cancel prefix is an event like any other, and ``zero_amount:
    quarantine`` or ``max_amount`` quarantine nothing (as in the non-contractual job)."""
    rows = [("a", "2020-03-10", "i1"), ("a", "2021-06-01", "C1"), ("a", "2023-02-01", "i2")]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "invoice"])
    prepare = {"returns": "drop", "zero_amount": "quarantine", "max_amount": 1}
    events = _feed_histories(tmp_path, frame, {"amount": None, "order_id": "invoice"}, prepare)
    assert (events.ledger.rows_in, events.ledger.rows_used, events.ledger.charges) == (3, 3, 3)
    assert events.full["frequency"].tolist() == [2]


def test_the_mean_spend_is_the_same_bits_whatever_the_row_order(tmp_path: Path) -> None:
    """Spend is added up as exact integers of 1/SCALE (as in the non-contractual job), not as doubles in the order
    DuckDB's threads finish. Measured before, of 5,000 customers on two threads: ``monetary_value`` of the full
    histories differed (by an ulp or two) for 630 when the same file was prepared twice, 763 for the shuffled file."""
    from tests.discrete_feed import discrete_feed

    feed = discrete_feed()
    frames = []
    for k, frame in enumerate((feed, feed, feed.sample(frac=1, random_state=1))):
        (tmp_path / str(k)).mkdir()
        path = tmp_path / str(k) / "feed.csv"
        frame.to_csv(path, index=False)
        config = parse_config(
            {
                "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
                "prepare": {"calibration_end": "2023-06-30"},
                "business": {"type": "discrete", "billing_period": "month"},
                "engine": {"threads": 2},
            }
        )
        engine = duckdb_engine(config.engine)
        try:
            frames.append(prepare_opportunities(engine.connection, duckdb_relation(engine.open(config.data)), config))
        finally:
            engine.close()
    first, again, shuffled = frames
    for other in (again, shuffled):
        pd.testing.assert_frame_equal(other.full, first.full, check_exact=True)
        pd.testing.assert_frame_equal(other.calibration, first.calibration, check_exact=True)


# Gifts with mapped, renamed columns and an unmapped one: prepare.duplicate_key names them as the source does.
NAMED = [
    ("a", "2020-03-10", "50", "web"),
    ("a", "2021-06-01", "20", "web"),
    ("a", "2021-06-01", "30", "phone"),  # the same donor and day again, another channel: repeats on the key
    ("a", "2023-02-01", "5", "web"),
]
NAMED_COLUMNS = {"customer_id": "Donor ID", "timestamp": "Gift Date", "amount": "Gift Amount"}


def _named(tmp_path: Path, key: list[str]) -> Histories:
    """The histories of :data:`NAMED` under ``duplicate_key: key``, opened as the job opens the feed (with the
    source's column names)."""
    path = tmp_path / "gifts.csv"
    pd.DataFrame(NAMED, columns=["Donor ID", "Gift Date", "Gift Amount", "Channel"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": NAMED_COLUMNS},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30", "duplicate_key": key},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    assert config.data.path is not None
    with opened_feed(config, config.data.path) as (engine, source, relation):
        return prepare_opportunities(
            engine.connection, relation, config, source=source.description, column_names=source.column_names
        )


def test_duplicate_key_names_source_columns(tmp_path: Path) -> None:
    """The second gift of 2021-06-01 repeats on ``Donor ID`` and ``Gift Date``: a duplicate (the first in the order
    of the other columns, Gift Amount then Channel as text, is kept: 20)."""
    histories = _named(tmp_path, ["Donor ID", "Gift Date"])
    ledger = histories.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (4, 3, 1, 3)
    assert ledger.reasons == {"duplicate": 1}
    full = histories.full.set_index("customer_id")
    row = full.loc["a", ["frequency", "recency", "n_periods"]]
    assert isinstance(row, pd.Series)  # one customer's row
    assert row.tolist() == [2, 3, 3]
    assert full.loc["a", "monetary_value"] == 12.5  # 2021: 20, 2023: 5 (27.5 with the 30 kept as well)


@pytest.mark.parametrize(
    ("key", "missing"), [(["Donor ID", "Date"], "Date"), (["customer_id", "timestamp"], "customer_id, timestamp")]
)
def test_a_duplicate_key_the_source_does_not_have_stops_prepare(tmp_path: Path, key: list[str], missing: str) -> None:
    with pytest.raises(InputError) as error:
        _named(tmp_path, key)
    assert str(error.value) == (
        f"{tmp_path / 'gifts.csv'}: prepare.duplicate_key names column(s) the input does not have: {missing}; "
        "found: Donor ID, Gift Date, Gift Amount, Channel"
    )


def test_clv_train_with_a_duplicate_key_the_source_does_not_have_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    pd.DataFrame(NAMED, columns=["Donor ID", "Gift Date", "Gift Amount", "Channel"]).to_csv("gifts.csv", index=False)
    (tmp_path / "job.yaml").write_text(
        f"data: {{source: csv, path: gifts.csv, columns: {json.dumps(NAMED_COLUMNS)}}}\n"
        "prepare: {calibration_end: 2022-12-31, duplicate_key: [Donor ID, Date]}\n"
        "business: {type: discrete, billing_period: year}\n"
    )
    assert main(["train", "--config", "job.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "clv: error: gifts.csv: prepare.duplicate_key names column(s) the input does not have: Date; "
        "found: Donor ID, Gift Date, Gift Amount, Channel"
    ]
