"""Advice on the data: a subscription feed is told to switch to contractual; CDNOW is not; flat spend is flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.clv import DAYS_PER_UNIT
from pipeline.advice import advice_lines, advise_prepared, charges_summary, feed_shape
from pipeline.config import parse_config
from pipeline.workflow import prepare_data
from tests.subscription_feed import write_subscription_feed


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_subscription_feed(tmp_path_factory.mktemp("feed") / "billing.csv", per_cohort=100, cohorts=12)


def test_a_subscription_feed_run_as_non_contractual_is_told_to_switch(feed: Path) -> None:
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(feed), "columns": {"timestamp": "charge_date"}},
            "prepare": {"calibration_end": "2022-12-31"},
        }
    )
    prepared, _ = prepare_data(config)
    shape = feed_shape(prepared.full, DAYS_PER_UNIT["week"])
    assert shape.period == "month"
    assert shape.regular_share == 1.0
    assert shape.constant_amount_share == 1.0
    lines = advise_prepared(prepared.full, DAYS_PER_UNIT["week"], "non_contractual")
    assert len(lines) == 1
    assert lines[0].startswith("advice: this feed looks like subscriptions")
    assert "set business.type: contractual (billing_period: month)" in lines[0]
    assert advise_prepared(prepared.full, DAYS_PER_UNIT["week"], "contractual") == ()


def test_cdnow_gets_no_advice_as_non_contractual_and_a_hint_as_contractual() -> None:
    prepared, _ = prepare_data(parse_config({"data": {"source": "cdnow_sample"}}))
    shape = feed_shape(prepared.full, DAYS_PER_UNIT["week"])
    assert shape.period is None
    assert shape.regular_share < 0.2
    assert shape.constant_amount_share < 0.2
    assert advice_lines(shape, "non_contractual") == ()
    (hint,) = advice_lines(shape, "contractual")
    assert "may not be contractual" in hint


def test_spend_without_spread_cannot_inform_gamma_gamma() -> None:
    rng = np.random.default_rng(1)
    full = pd.DataFrame(
        {"frequency": rng.integers(2, 9, 500), "recency": rng.uniform(5, 50, 500), "monetary_value": 25.0}
    )
    shape = feed_shape(full, 7.0)
    assert shape.spend_cv == 0.0
    assert shape.period is None
    (line,) = advice_lines(shape, "non_contractual")
    assert "cannot inform Gamma-Gamma" in line


def test_charges_summary_counts_days_and_mean_repeat_charge() -> None:
    charges = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "charge_date": ["2024-01-05", "2024-02-05", "2024-03-05", "2024-01-09"],
            "amount": [10.0, 12.0, 14.0, 30.0],
        }
    )
    summary = charges_summary(charges).set_index("customer_id")
    assert summary.loc["a", "frequency"] == 2
    assert summary.loc["a", "recency"] == 60.0
    assert summary.loc["a", "monetary_value"] == 13.0
    assert summary.loc["b", "frequency"] == 0
    assert summary.loc["b", "monetary_value"] == 0.0
