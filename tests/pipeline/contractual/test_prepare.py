"""The billing feed's prepare: quarantine and reconciliation as today, tenure, renewals and churn by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, parse_config
from pipeline.contractual.prepare import Subscribers, periods_between_sql, prepare_billing
from pipeline.contractual.workflow import check_business_type
from pipeline.errors import ConfigError, InputError
from tests.feeds import duckdb_engine, duckdb_relation, query_rows

ROWS = [
    ("a", "2024-01-15", "10"),
    ("a", "2024-02-15", "10"),
    ("a", "2024-03-15", "10"),
    ("a", "2024-03-20", "-10"),  # a refund: used, not a charge
    ("a", "2024-04-15", "10"),
    ("a", "2024-05-15", "10"),
    ("a", "2024-06-15", "10"),
    ("b", "2024-01-31", "20"),
    ("b", "2024-02-29", "20"),
    ("b", "2024-03-31", "20"),
    ("c", "2024-02-10", "30"),
    ("d", "2024-05-01", "40"),
    ("", "2024-01-15", "10"),  # missing_customer_id
    ("e", "garbage", "10"),  # invalid_timestamp
    ("a", "2024-01-15", "10"),  # duplicate
    ("f", "2024-07-05", "10"),  # after_observation_end
    ("g", "2024-02-01", "abc"),  # invalid_amount
]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "billing.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "charge_date", "amount"]).to_csv(path, index=False)
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date"}},
            # Without an order id, identical rows are duplicates only when the config says so (see below).
            "prepare": {"calibration_end": "2024-03-31", "observation_end": "2024-06-30", "duplicates": "quarantine"},
            "business": {"type": "contractual", "billing_period": "month", "grace_days": 7},
        }
    )


def _prepared(config: Config) -> Subscribers:
    engine = duckdb_engine(config.engine)
    source = engine.open(config.data)
    return prepare_billing(engine.connection, duckdb_relation(source), config)


def test_rows_in_equal_rows_used_plus_quarantined_by_reason(config: Config) -> None:
    ledger = _prepared(config).ledger
    assert ledger.rows_in == 17
    assert ledger.rows_used == 12
    assert ledger.rows_quarantined == 5
    assert ledger.reasons == {
        "missing_customer_id": 1,
        "invalid_timestamp": 1,
        "duplicate": 1,
        "after_observation_end": 1,
        "invalid_amount": 1,
    }
    assert ledger.charges == 11


def test_tenure_renewals_and_churn_at_both_ends(config: Config) -> None:
    prepared = _prepared(config)
    full = prepared.full.set_index("customer_id")
    assert list(full.index) == ["a", "b", "c", "d"]
    assert full["renewals"].tolist() == [5, 2, 0, 0]
    assert full["age"].tolist() == [5, 4, 4, 1]
    assert full["churned"].tolist() == [False, True, True, True]
    assert full["price"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert full["revenue"].tolist() == [60.0, 60.0, 30.0, 40.0]
    assert [c.isoformat()[:10] for c in pd.to_datetime(full["cohort"])] == [
        "2024-01-01",
        "2024-01-01",
        "2024-02-01",
        "2024-05-01",
    ]
    calibration = prepared.calibration.set_index("customer_id")
    assert list(calibration.index) == ["a", "b", "c"]
    assert calibration["renewals"].tolist() == [2, 2, 0]
    assert calibration["age"].tolist() == [2, 2, 1]
    assert calibration["churned"].tolist() == [False, False, True]
    assert prepared.observation_end == dt.date(2024, 6, 30)


@pytest.mark.parametrize(
    ("start", "end", "period", "expected"),
    [
        ("2024-01-31", "2024-02-29", "month", 1),
        ("2024-01-31", "2024-02-28", "month", 0),
        ("2024-01-15", "2024-06-14", "month", 4),
        ("2024-01-15", "2024-06-15", "month", 5),
        ("2024-01-01", "2024-01-14", "week", 1),
        ("2024-01-01", "2024-01-15", "week", 2),
        ("2022-03-01", "2024-02-29", "year", 1),
        ("2022-03-01", "2024-03-01", "year", 2),
    ],
)
def test_whole_billing_periods_between_two_dates(start: str, end: str, period: str, expected: int) -> None:
    sql = periods_between_sql(f"DATE '{start}'", f"DATE '{end}'", period)
    assert query_rows(f"SELECT {sql}")[0][0] == expected


def test_spark_is_refused_with_one_line() -> None:
    config = parse_config({"business": {"type": "contractual"}})
    with pytest.raises(ConfigError, match=r"^business.type: 'contractual' runs on DuckDB only; set engine.name"):
        check_business_type(config, "spark")
    check_business_type(config, "duckdb")


def _billing(tmp_path: Path, rows: Sequence[tuple[str, ...]], columns: list[str]) -> Subscribers:
    path = tmp_path / "lines.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    mapped = {"timestamp": "charge_date"} | ({"order_id": "invoice"} if "invoice" in columns else {})
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": mapped},
            "prepare": {"calibration_end": "2024-03-31", "observation_end": "2024-06-30"},
            "business": {"type": "contractual", "billing_period": "month", "grace_days": 7},
        }
    )
    return _prepared(config)


def test_identical_charges_without_an_order_id_are_kept(tmp_path: Path) -> None:
    """``prepare.duplicates: auto`` (the default) without an order id: two identical lines are two real charges,
    as in the non-contractual job (a duplicate needs an order id to be told apart from a second line)."""
    rows = [
        ("a", "2024-01-15", "10"),
        ("a", "2024-01-15", "10"),  # a second seat billed on the same day
        ("a", "2024-02-15", "10"),
    ]
    prepared = _billing(tmp_path, rows, ["customer_id", "charge_date", "amount"])
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (3, 3, 0, 3)
    assert ledger.reasons == {}
    assert prepared.quarantine.empty
    full = prepared.full.set_index("customer_id")
    assert full["revenue"].tolist() == [30.0]
    assert full["renewals"].tolist() == [1]


def test_a_repeated_invoice_line_is_quarantined_as_a_duplicate(tmp_path: Path) -> None:
    rows = [
        ("a", "2024-01-15", "10", "i1", "seat"),
        ("a", "2024-01-15", "10", "i1", "addon"),  # another line of the invoice: kept
        ("a", "2024-01-15", "10", "i1", "addon"),  # the same line loaded twice: a duplicate
        ("a", "2024-02-15", "10", "i2", "seat"),
    ]
    prepared = _billing(tmp_path, rows, ["customer_id", "charge_date", "amount", "invoice", "product"])
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (4, 3, 1, 2)  # 2 invoices
    assert ledger.reasons == {"duplicate": 1}
    quarantined = prepared.quarantine
    assert quarantined["reason"].tolist() == ["duplicate"]
    assert quarantined["order_id"].tolist() == ["i1"]
    assert quarantined["source:product"].tolist() == ["addon"]
    assert prepared.full["revenue"].tolist() == [30.0]


def _as_lines(feed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``feed`` (one charge per row) as invoices (an invoice number per charge, the amount its total) and as
    the invoices' lines (quantity x unit price): a pro plan's 30 is a plan line of 24 and 2 seats of 3."""
    invoices = feed.assign(invoice=[f"in-{i:06d}" for i in range(len(feed))])
    pro = invoices["plan"].eq("pro")
    plan = invoices.assign(quantity=1, unit_price=invoices["amount"].where(~pro, 24.0))
    seats = invoices[pro].assign(quantity=2, unit_price=3.0)
    lines = pd.concat([plan, seats]).sort_values(["invoice", "unit_price"], kind="stable").drop(columns="amount")
    return invoices, lines.reset_index(drop=True)


def test_an_invoices_lines_are_one_charge_of_their_total(tmp_path: Path) -> None:
    """Invoice lines (quantity x unit price, several per order id) prepare as the invoices they make up: the same
    subscribers, prices and revenue, to the bit, and as many charges (a charge was a line: the price of a pro
    subscriber was the plan line's 24, not the invoice's 30)."""
    from tests.subscription_feed import subscription_feed

    invoices, lines = _as_lines(subscription_feed(per_cohort=40))
    invoices.to_csv(tmp_path / "invoices.csv", index=False)
    lines.to_csv(tmp_path / "lines.csv", index=False)
    prepared = []
    for name, money in [("invoices", {}), ("lines", {"quantity": "quantity", "unit_price": "unit_price"})]:
        columns = {"timestamp": "charge_date", "order_id": "invoice", **money}
        config = parse_config(
            {
                "data": {"source": "csv", "path": str(tmp_path / f"{name}.csv"), "columns": columns},
                "prepare": {"calibration_end": "2023-12-31", "observation_end": "2024-06-30"},
                "business": {"type": "contractual", "billing_period": "month"},
            }
        )
        prepared.append(_prepared(config))
    by_invoice, by_line = prepared
    assert len(lines) > len(invoices) + 300
    assert by_line.ledger.charges == by_invoice.ledger.charges
    assert by_line.ledger.rows_in == len(lines)
    assert by_line.ledger.reasons == by_invoice.ledger.reasons
    pd.testing.assert_frame_equal(by_line.full, by_invoice.full, check_exact=True)
    pd.testing.assert_frame_equal(by_line.calibration, by_invoice.calibration, check_exact=True)
    assert sorted(by_line.full["price"].unique()) == [10.0, 30.0]


FREE_PLAN = [
    ("a", "2024-01-15", "10"),
    ("a", "2024-02-15", "10"),
    ("a", "2024-03-15", "10"),
    *(("z0", f"2024-0{m}-05", "0") for m in range(1, 7)),  # a free plan: billed 0 every month
]


def _free_plan(
    tmp_path: Path, zero_amount: str, as_of: dt.date | None = None, observation_end: str | None = None
) -> Subscribers:
    path = tmp_path / "free.csv"
    pd.DataFrame(FREE_PLAN, columns=["customer_id", "charge_date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date"}},
            "prepare": {
                "calibration_end": "2024-03-31",
                "observation_end": observation_end,
                "zero_amount": zero_amount,
            },
            "business": {"type": "contractual", "billing_period": "month", "grace_days": 7},
        }
    )
    engine = duckdb_engine(config.engine)
    try:
        return prepare_billing(engine.connection, duckdb_relation(engine.open(config.data)), config, as_of)
    finally:
        engine.close()


def test_a_free_plan_subscriber_billed_zero_is_a_subscriber(tmp_path: Path) -> None:
    """``prepare.zero_amount: keep`` (the default): a charge of 0 is a billing period paid, as a zero-value purchase
    is a purchase in the non-contractual job; the free-plan subscriber is counted, renews and stays active."""
    prepared = _free_plan(tmp_path, "keep")
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (9, 9, 0, 9)
    assert prepared.observation_end == dt.date(2024, 6, 5)  # the free plan's last charge: the data's last day
    full = prepared.full.set_index("customer_id")
    assert list(full.index) == ["a", "z0"]
    row = full.loc["z0", ["renewals", "churned", "price", "revenue"]]
    assert isinstance(row, pd.Series)  # one customer's row
    assert row.tolist() == [5, False, 0.0, 0.0]
    assert prepared.calibration.set_index("customer_id").loc["z0", "renewals"] == 2


def test_a_free_plan_subscriber_is_scored_as_of_a_date(tmp_path: Path) -> None:
    """``clv score --as-of`` scores the subscribers of ``full`` not churned: the free plan is one of them."""
    full = _free_plan(tmp_path, "keep", as_of=dt.date(2024, 6, 30)).full.set_index("customer_id")
    assert full.loc[~full["churned"]].index.tolist() == ["z0"]


def test_zero_charges_are_quarantined_with_zero_amount_quarantine(tmp_path: Path) -> None:
    prepared = _free_plan(tmp_path, "quarantine", observation_end="2024-06-30")
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (9, 3, 6, 3)
    assert ledger.reasons == {"zero_amount": 6}
    assert prepared.quarantine["customer_id"].tolist() == ["z0"] * 6
    assert prepared.full["customer_id"].tolist() == ["a"]


def test_an_invoice_with_the_cancel_prefix_is_a_refund_not_a_charge(tmp_path: Path) -> None:
    """The rows are classified by the non-contractual job's SQL: an order id starting with ``prepare.cancel_prefix``
    is a refund (used, not a charge), as a negative amount is."""
    rows = [
        ("a", "2024-01-15", "10", "i1"),
        ("a", "2024-01-20", "10", "C1"),  # the January invoice cancelled: not a second charge
        ("a", "2024-02-15", "10", "i2"),
    ]
    prepared = _billing(tmp_path, rows, ["customer_id", "charge_date", "amount", "invoice"])
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (3, 3, 0, 2)
    assert prepared.full["revenue"].tolist() == [20.0]


def test_a_feed_of_refunds_only_has_no_usable_charges(tmp_path: Path) -> None:
    """No charge: the non-contractual job's error, the rows used (every one a refund) counted as refunds."""
    rows = [("a", "2024-01-20", "10", "C1"), ("b", "2024-02-15", "-10", "i2"), ("", "2024-02-15", "10", "i3")]
    with pytest.raises(InputError) as error:
        _billing(tmp_path, rows, ["customer_id", "charge_date", "amount", "invoice"])
    assert str(error.value) == "the billing feed: no usable charges after cleaning (1 missing_customer_id, 2 refunds)"


def _shuffled_prepares(tmp_path: Path, feed: pd.DataFrame) -> list[pd.DataFrame]:
    """``full`` of ``feed`` prepared three times on two DuckDB threads: as it is, again, and with its rows shuffled."""
    frames = []
    for k, frame in enumerate((feed, feed, feed.sample(frac=1, random_state=1))):
        path = tmp_path / f"billing-{k}.csv"
        frame.to_csv(path, index=False)
        config = parse_config(
            {
                "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date"}},
                "prepare": {"calibration_end": "2023-12-31"},
                "business": {"type": "contractual"},
                "engine": {"threads": 2},
            }
        )
        engine = duckdb_engine(config.engine)
        try:
            frames.append(prepare_billing(engine.connection, duckdb_relation(engine.open(config.data)), config).full)
        finally:
            engine.close()
    return frames


def test_revenue_and_price_are_the_same_bits_whatever_the_row_order(tmp_path: Path) -> None:
    """Revenue is added up as exact integers of 1/SCALE (as in the non-contractual job), not as doubles in the order
    DuckDB's threads finish; of two charges on the last day, the price is the larger, not whichever DuckDB met last.
    Measured before, of 9,600 subscribers: the same file prepared twice, 2 revenues (by an ulp) and 2,179 prices
    differed; the shuffled file, 3,075 and 4,777."""
    from tests.subscription_feed import DIRTY_ROWS, subscription_feed

    feed = subscription_feed()
    rng = np.random.default_rng(0)
    feed["amount"] = (feed["amount"] * rng.choice([0.999, 1.013, 0.317], len(feed))).round(2)  # 9.99, 30.39, ...
    last = feed.iloc[:-DIRTY_ROWS].groupby("customer_id").tail(1)  # the last charge of each subscriber
    feed = pd.concat([feed, last.assign(amount=last["amount"] + 5.55)], ignore_index=True)  # two charges that day
    first, again, shuffled = _shuffled_prepares(tmp_path, feed)
    pd.testing.assert_frame_equal(again, first, check_exact=True)
    pd.testing.assert_frame_equal(shuffled, first, check_exact=True)
    expected = feed[feed["charge_date"].str.match(r"20(22|23|24)-")].groupby("customer_id")["amount"].sum()
    revenue = first.set_index("customer_id")["revenue"]
    np.testing.assert_allclose(revenue, expected.loc[revenue.index], rtol=1e-12)
    price = first.set_index("customer_id")["price"]
    np.testing.assert_array_equal(price, last.set_index("customer_id")["amount"].loc[price.index] + 5.55)


def test_lines_without_an_order_id_are_one_charge_per_day_and_a_credit_line_is_a_refund(tmp_path: Path) -> None:
    """In a feed with order ids, lines without one are one invoice per customer and day (as the non-contractual
    job takes them): priced at their total, not at the larger line. A negative line is a refund, as everywhere."""
    rows = [
        ("a", "2024-01-15", "24", "i1"),
        ("a", "2024-01-15", "6", "i1"),
        ("a", "2024-01-15", "-5", "i1"),  # a credit line: a refund, not part of the charge
        ("a", "2024-02-15", "24", ""),
        ("a", "2024-02-15", "6", ""),  # no invoice id: the day's lines are one charge
        ("a", "2024-03-15", "24", ""),
        ("a", "2024-03-15", "7", ""),
    ]
    prepared = _billing(tmp_path, rows, ["customer_id", "charge_date", "amount", "invoice"])
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (7, 7, 0, 3)
    full = prepared.full.set_index("customer_id")
    assert full.loc["a", "price"] == 31.0  # the last day's two lines, not its larger one (24)
    assert full.loc["a", "revenue"] == 91.0  # 30 + 30 + 31: the credit is not a charge
    assert full.loc["a", "renewals"] == 2


def test_a_billing_feed_without_amounts_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "charge_date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date", "amount": None}},
            "prepare": {"calibration_end": "2024-03-31"},
            "business": {"type": "contractual"},
        }
    )
    with pytest.raises(InputError) as raised:
        _prepared(config)
    assert str(raised.value) == (
        "business.type contractual needs a billing feed with amounts "
        "(data.columns.amount, or data.columns.quantity and unit_price)"
    )
