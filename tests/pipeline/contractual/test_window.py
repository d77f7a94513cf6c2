"""The calibration and holdout of the contractual job, checked before the fit: a calibration with no renewal
decision, a holdout shorter than a billing period, a feed too short for its billing period and cohorts too small
each stop the job with one line (exit 2) that says what to change, not a pandas message after the fit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.config import parse_config
from pipeline.contractual.validation import holdout_reach
from pipeline.contractual.window import anniversary
from pipeline.errors import InputError
from tests.prepare_errors import clv_train_failure
from tests.subscription_feed import subscription_feed, train_subscriptions, write_subscription_feed


def _train_error(folder: Path, prepare: dict[str, str], business: dict[str, str], **feed: Any) -> str:
    """The InputError of the contractual workflow on a generated feed (first charge 2022-01-01, last 2024-06-28
    with 60 subscribers a month), the feed named 'billing.csv'."""
    path = write_subscription_feed(folder / "billing.csv", **feed)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date"}},
            "prepare": prepare,
            "business": {"type": "contractual", **business},
        }
    )
    with pytest.raises(InputError) as error:
        train_subscriptions(config)
    return str(error.value).replace(str(path), "billing.csv")


def test_a_calibration_with_no_renewal_decision_stops_before_the_fit(tmp_path: Path) -> None:
    """Every subscriber of January 2022 is in their first month on 2022-01-31: the fit had nothing to learn from
    and returned the optimiser's start values (alpha 1, beta 1), which the gate judged and could register."""
    assert _train_error(tmp_path, {"calibration_end": "2022-01-31"}, {}, per_cohort=60) == (
        "billing.csv: no renewal had come due by prepare.calibration_end 2022-01-31, so the sBG has no renewal "
        "decision to learn churn from (the first comes due on 2022-02-08: a month and business.grace_days 7 after "
        "the first charge, 2022-01-01); set prepare.calibration_end between 2022-02-08 and 2024-05-28 (one month "
        "before the end)"
    )


def test_a_holdout_shorter_than_a_billing_period_says_how_far_back_to_go(tmp_path: Path) -> None:
    """13 days of holdout on a monthly feed: it was 'No objects to concatenate' after the fit."""
    assert _train_error(tmp_path, {"calibration_end": "2024-06-15"}, {}, per_cohort=60) == (
        "billing.csv: the holdout from prepare.calibration_end 2024-06-15 to the data's end 2024-06-28 (its last "
        "charge) holds no complete billing period (month), so no renewal decision comes due in it to validate the "
        "sBG on; move prepare.calibration_end back to 2024-05-28 or earlier"
    )


def test_yearly_renewals_on_two_years_of_data_are_too_short_to_validate(tmp_path: Path) -> None:
    """Billed once a year, the data cut at 2023-12-31: the first renewal is due 2023-01-08 and a year of holdout
    after it needs data to 2024-01-08, so no calibration_end works."""
    prepare = {"calibration_end": "2023-06-30", "observation_end": "2023-12-31"}
    assert _train_error(tmp_path, prepare, {"billing_period": "year"}, per_cohort=60, months_per_charge=12) == (
        "billing.csv: the data is too short to validate the sBG with business.billing_period year: a renewal first "
        "comes due on 2023-01-08 (a year and business.grace_days 7 after the first charge, 2022-01-01), so "
        "prepare.calibration_end must be on or after it, and a whole year of holdout must follow it: that needs "
        "data to 2024-01-08 or later, not to prepare.observation_end 2023-12-31"
    )


def test_a_wrong_billing_period_is_named_as_the_likely_cause(tmp_path: Path) -> None:
    """The same cut on a monthly feed configured as yearly: the advice on the billing period ends the line."""
    prepare = {"calibration_end": "2023-06-30", "observation_end": "2023-12-31"}
    line = _train_error(tmp_path, prepare, {"billing_period": "year"}, per_cohort=60)
    assert line.startswith("billing.csv: the data is too short to validate the sBG with business.billing_period year")
    assert line.endswith(
        "; charges come every 30.5 days (median over 1,072 subscribers charged on two days or more) but "
        "business.billing_period is year (365.25 days): renewals and churn are counted per year, so the sBG's "
        "numbers mean nothing; set business.billing_period: month"
    )


def test_a_holdout_with_no_cell_of_twenty_subscribers_says_so(tmp_path: Path) -> None:
    """20 subscribers a month and 37 days of holdout: 17 of one cohort at most reach a decision beyond its last
    one in calibration; from 2024-04-30 on, 20 do."""
    assert _train_error(tmp_path, {"calibration_end": "2024-05-20"}, {}, per_cohort=20) == (
        "billing.csv: in the holdout from prepare.calibration_end 2024-05-20 to the data's end 2024-06-26 (its "
        "last charge), no cohort has 20 subscribers reaching a renewal decision beyond its calibration ones, so "
        "there is nothing to validate the sBG on; move prepare.calibration_end back (a longer holdout)"
    )


def test_cohorts_smaller_than_a_holdout_cell_say_so(tmp_path: Path) -> None:
    assert _train_error(tmp_path, {"calibration_end": "2023-06-30"}, {}, per_cohort=3) == (
        "billing.csv: the largest cohort (subscribers acquired in one month) has 3 subscribers, fewer than the 20 "
        "a holdout cell needs to validate the sBG on; train on a feed with more subscribers"
    )


def test_clv_train_prints_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = subscription_feed(per_cohort=60).iloc[:-4]  # the clean charges
    rows = list(feed[["customer_id", "charge_date", "amount"]].itertuples(index=False, name=None))
    job = "prepare: {calibration_end: 2022-01-31}\nbusiness: {type: contractual}\ntracking: {model_name: subs}\n"
    code, lines = clv_train_failure(tmp_path, monkeypatch, capsys, rows, "charge_date", job)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("clv: error: f.csv: no renewal had come due by prepare.calibration_end 2022-01-31")


def test_holdout_reach_is_the_largest_first_holdout_cell() -> None:
    """Cohort A: calibration ages up to 2, so its first holdout cell is t = 3: 2 subscribers reach it. Cohort B
    (acquired after the calibration end): t = 1, 3 subscribers."""
    calibration = pd.DataFrame({"cohort": ["2022-01-01"] * 3, "age": [2, 1, 0]})
    full = pd.DataFrame(
        {"cohort": ["2022-01-01"] * 3 + ["2022-03-01"] * 4, "age": [4, 3, 2, 1, 1, 1, 0]},
    )
    assert holdout_reach(calibration, full) == 3
    assert holdout_reach(calibration, full.iloc[:3]) == 2
    assert holdout_reach(calibration, full.iloc[:0]) == 0


@pytest.mark.parametrize(
    ("day", "periods", "period", "expected"),
    [
        ("2023-01-31", 1, "month", "2023-02-28"),  # as prepare's DuckDB to_months: the month's last day
        ("2024-12-31", -1, "month", "2024-11-30"),
        ("2024-02-29", 1, "year", "2025-02-28"),
        ("2024-12-31", -1, "year", "2023-12-31"),
        ("2024-01-01", 2, "week", "2024-01-15"),
    ],
)
def test_anniversary_counts_periods_as_prepare_does(day: str, periods: int, period: str, expected: str) -> None:
    assert anniversary(dt.date.fromisoformat(day), periods, period) == dt.date.fromisoformat(expected)
