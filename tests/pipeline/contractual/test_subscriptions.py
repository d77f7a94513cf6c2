"""A subscriptions table (customer, start, end or empty, plan, price) as the contractual input: the same
quarantine and reconciliation as a billing feed, and the same subscribers and sBG fit as the equivalent feed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Config, parse_config
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.validation import fit_cohorts
from pipeline.errors import ConfigError
from tests.subscription_feed import (
    CALIBRATION_END,
    OBSERVATION_END,
    prepared_subscriptions,
    subscription_feed,
    subscriptions_table,
)


def _config(
    path: Path, timestamp: str, extra: dict[str, object] | None = None, calibration_end: str = str(CALIBRATION_END)
) -> Config:
    columns: dict[str, object] = {"timestamp": timestamp}
    if timestamp == "start":
        columns["amount"] = "price"
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": columns},
            # The feeds' identical rows (no order id) are double loads here: only "quarantine" says so.
            "prepare": {
                "calibration_end": calibration_end,
                "observation_end": str(OBSERVATION_END),
                "duplicates": "quarantine",
            },
            "business": {"type": "contractual", **(extra or {})},
        }
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Subscribers, Subscribers]:
    folder = tmp_path_factory.mktemp("subscriptions")
    feed = subscription_feed(per_cohort=150)
    feed.to_csv(folder / "billing.csv", index=False)
    subscriptions_table(feed).to_csv(folder / "subscriptions.csv", index=False)
    billing = prepared_subscriptions(_config(folder / "billing.csv", "charge_date"))
    table = prepared_subscriptions(_config(folder / "subscriptions.csv", "start", {"input": "subscriptions"}))
    return billing, table


def test_rows_in_equal_rows_used_plus_quarantined_by_reason(both: tuple[Subscribers, Subscribers]) -> None:
    billing, table = both
    ledger = table.ledger
    assert ledger.rows_in == len(billing.full) + 7 == 3607
    assert ledger.rows_used == 3600
    assert ledger.rows_quarantined == 7
    assert ledger.reasons == {
        "missing_customer_id": 1,
        "invalid_timestamp": 1,
        "duplicate": 1,
        "after_observation_end": 1,
        "invalid_end": 1,
        "end_not_after_start": 1,
        "negative_price": 1,
    }
    assert ledger.charges == billing.ledger.charges == billing.ledger.rows_used
    assert sorted(table.quarantine["reason"]) == sorted(ledger.reasons)


def test_the_same_subscribers_as_the_billing_feed(both: tuple[Subscribers, Subscribers]) -> None:
    billing, table = both
    pd.testing.assert_frame_equal(table.full, billing.full)
    pd.testing.assert_frame_equal(table.calibration, billing.calibration)
    assert int(table.full["churned"].sum()) == int(billing.full["churned"].sum()) > 1000
    assert (table.calibration_end, table.observation_end) == (CALIBRATION_END, OBSERVATION_END)


def test_the_same_sbg_fit_as_the_billing_feed(both: tuple[Subscribers, Subscribers]) -> None:
    billing, table = both
    for frame in ("calibration", "full"):
        expected, got = fit_cohorts(getattr(billing, frame)), fit_cohorts(getattr(table, frame))
        assert got.pooled.params.alpha == expected.pooled.params.alpha
        assert got.pooled.params.beta == expected.pooled.params.beta
        assert got.pooled.stats.log_likelihood == expected.pooled.stats.log_likelihood
        assert got.params == expected.params
        assert len(got.params) == 24


def test_an_open_subscription_is_charged_until_the_observation_end(tmp_path: Path) -> None:
    rows = [
        ("a", "2024-01-31", None, "basic", 10.0),  # open: Jan 31, Feb 29, Mar 31, Apr 30, May 31, Jun 30
        ("b", "2024-01-15", "2024-03-15", "pro", 30.0),  # two charges: Jan 15, Feb 15; not renewed on Mar 15
        ("c", "2024-06-01", "2024-09-01", "pro", 30.0),  # ends after the observation end: Jun 1 only
    ]
    path = tmp_path / "subs.csv"
    pd.DataFrame(rows, columns=["customer_id", "start", "end", "plan", "price"]).to_csv(path, index=False)
    prepared = prepared_subscriptions(_config(path, "start", {"input": "subscriptions"}, "2024-03-31"))
    charges = prepared.charges.sort_values(["customer_id", "charge_date"])
    days = charges.groupby("customer_id")["charge_date"].apply(lambda d: [str(x)[:10] for x in d]).to_dict()
    assert days == {
        "a": ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"],
        "b": ["2024-01-15", "2024-02-15"],
        "c": ["2024-06-01"],
    }
    full = prepared.full.set_index("customer_id")
    assert full["renewals"].to_dict() == {"a": 5, "b": 1, "c": 0}
    assert full["churned"].to_dict() == {"a": False, "b": True, "c": False}
    assert full["revenue"].to_dict() == {"a": 60.0, "b": 60.0, "c": 30.0}


def test_an_order_id_with_the_cancel_prefix_is_a_subscription_like_any_other(tmp_path: Path) -> None:
    """A subscriptions table has no refunds (a negative price is quarantined): an order id starting with
    ``prepare.cancel_prefix`` ("C") is charged as the others (it was used, counted and never charged)."""
    rows = [
        ("a", "C-1", "2024-01-31", None, 10.0),
        ("b", "S-2", "2024-01-15", "2024-03-15", 30.0),
        ("c", "C-3", "2024-01-15", "2024-03-15", 30.0),
    ]
    path = tmp_path / "subs.csv"
    pd.DataFrame(rows, columns=["customer_id", "order_id", "start", "end", "price"]).to_csv(path, index=False)
    config = _config(path, "start", {"input": "subscriptions"}, "2024-03-31")
    columns = config.data.columns.model_copy(update={"order_id": "order_id"})
    config = config.model_copy(update={"data": config.data.model_copy(update={"columns": columns})})
    prepared = prepared_subscriptions(config)
    assert (prepared.ledger.rows_in, prepared.ledger.rows_used, prepared.ledger.rows_quarantined) == (3, 3, 0)
    full = prepared.full.set_index("customer_id")
    assert full["renewals"].to_dict() == {"a": 5, "b": 1, "c": 1}
    assert full["revenue"].to_dict() == {"a": 60.0, "b": 60.0, "c": 60.0}


def test_an_open_table_needs_an_observation_end(tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    pd.DataFrame(
        [("a", "2024-01-31", None, "basic", 10.0)], columns=["customer_id", "start", "end", "plan", "price"]
    ).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "start", "amount": "price"}},
            "prepare": {"calibration_end": "2024-03-31"},
            "business": {"type": "contractual", "input": "subscriptions"},
        }
    )
    with pytest.raises(ConfigError, match=r"^business.input: subscriptions needs prepare.observation_end"):
        prepared_subscriptions(config)


def test_the_config_keys() -> None:
    with pytest.raises(ConfigError, match=r"business: business.input: subscriptions needs business.type: contractual"):
        parse_config({"business": {"input": "subscriptions"}})
    contractual = parse_config({"business": {"type": "contractual"}}).business.model_dump()
    assert "input" not in contractual
    assert "end_column" not in contractual
    table = parse_config({"business": {"type": "contractual", "input": "subscriptions", "end_column": "ends"}})
    assert table.business.model_dump()["input"] == "subscriptions"
    assert table.business.model_dump()["end_column"] == "ends"


def test_a_subscription_overlapping_an_earlier_one_is_quarantined(tmp_path: Path) -> None:
    """Combined into one charge history, overlapping subscriptions would count revenue twice."""
    rows = [
        ("a", "2024-01-15", "2024-03-15", "pro", 30.0),  # Jan 15, Feb 15
        ("a", "2024-03-15", None, "pro", 30.0),  # starts the day the first ends: no overlap; Mar 15 .. Jun 15
        ("b", "2024-01-01", None, "basic", 10.0),  # open: Jan 1 .. Jun 1
        ("b", "2024-02-01", "2024-04-01", "pro", 20.0),  # overlapping_subscription
        ("c", "2024-02-01", "2024-05-01", "basic", 10.0),  # same start, ends later: overlapping_subscription
        ("c", "2024-02-01", "2024-03-01", "basic", 10.0),  # the earlier of the two (ends first): Feb 1
        ("d", "2024-01-01", "soon", "basic", 10.0),  # invalid_end: not an earlier row for the overlap rule
        ("d", "2024-02-01", None, "basic", 10.0),  # Feb 1 .. Jun 1
    ]
    path = tmp_path / "subs.csv"
    pd.DataFrame(rows, columns=["customer_id", "start", "end", "plan", "price"]).to_csv(path, index=False)
    prepared = prepared_subscriptions(_config(path, "start", {"input": "subscriptions"}, "2024-03-31"))
    ledger = prepared.ledger
    assert ledger.reasons == {"overlapping_subscription": 2, "invalid_end": 1}
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (8, 5, 3)
    overlapping = prepared.quarantine[prepared.quarantine["reason"] == "overlapping_subscription"]
    assert sorted(overlapping["customer_id"]) == ["b", "c"]
    full = prepared.full.set_index("customer_id")
    assert full["revenue"].to_dict() == {"a": 180.0, "b": 60.0, "c": 10.0, "d": 50.0}
    assert full["renewals"].to_dict() == {"a": 5, "b": 5, "c": 0, "d": 4}
    assert ledger.charges == 6 + 6 + 1 + 5


FREE = [
    ("a", "2024-01-15", "2024-03-15", "pro", 30.0),  # Jan 15, Feb 15
    ("x7", "2024-03-01", None, "free", 0.0),  # a free plan: charged 0 on Mar 1 .. Jun 1
]


@pytest.mark.parametrize("zero_amount", ["keep", "quarantine"])
def test_a_free_subscription_follows_zero_amount(tmp_path: Path, zero_amount: str) -> None:
    """``prepare.zero_amount: keep`` (the default): a price of 0 is a subscription like any other, used and
    counted; ``quarantine``: the row is quarantined as ``zero_amount``. Rows in = used + quarantined either way."""
    path = tmp_path / "subs.csv"
    pd.DataFrame(FREE, columns=["customer_id", "start", "end", "plan", "price"]).to_csv(path, index=False)
    config = _config(path, "start", {"input": "subscriptions"}, "2024-03-31")
    prepare = config.prepare.model_copy(update={"zero_amount": zero_amount})
    prepared = prepared_subscriptions(config.model_copy(update={"prepare": prepare}))
    ledger = prepared.ledger
    full = prepared.full.set_index("customer_id")
    if zero_amount == "keep":
        assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (2, 2, 0, 2 + 4)
        assert list(full.index) == ["a", "x7"]
        row = full.loc["x7", ["renewals", "churned", "price", "revenue"]]
        assert isinstance(row, pd.Series)  # one customer's row
        assert row.tolist() == [3, False, 0.0, 0.0]
    else:
        assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (2, 1, 1, 2)
        assert ledger.reasons == {"zero_amount": 1}
        assert prepared.quarantine["customer_id"].tolist() == ["x7"]
        assert list(full.index) == ["a"]
