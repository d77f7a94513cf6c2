"""Challenger features and labels: hand-computed values, window edges, no leakage past the cutoff."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pandas as pd
import pytest

from models.challenger_features import FEATURE_COLUMNS, activity_from_transactions, features, labels

CUTOFF = pd.Timestamp("1997-07-03")
HORIZON = 181


def _activity(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return activity_from_transactions(frame)


def test_features_of_a_known_history() -> None:
    # a: purchases on days 0, 10 (two orders merged), 30 before a cutoff on day 40; then one after it.
    # b: one purchase on the cutoff day. c: born after the cutoff (no row).
    activity = _activity(
        [
            ("a", "2020-01-01", 10.0),
            ("a", "2020-01-11", 5.0),
            ("a", "2020-01-11", 15.0),
            ("a", "2020-01-31", 30.0),
            ("a", "2020-02-15", 99.0),
            ("b", "2020-02-10", 7.0),
            ("c", "2020-02-11", 3.0),
        ]
    )
    got = features(activity, "2020-02-10")
    assert list(got.columns) == list(FEATURE_COLUMNS)
    assert list(got.index) == ["a", "b"]
    a, b = got.loc["a"], got.loc["b"]
    life = 41 / 7  # weeks from day 0 to day 40 inclusive
    expected_a = {
        "purchases": 3,
        "repeat_purchases": 2,
        "recency_ratio": 30 / 41,
        "days_since_last": 10,
        "purchases_per_week": 3 / life,
        "spend_per_week": 60 / life,
        "mean_gap_days": 15,
        "std_gap_days": 5,
        "last_gap_days": 20,
        "overdue_ratio": 10 / 15,
        "first_spend": 10,
        "last_spend": 30,
        "max_spend": 30,
        "mean_spend": 20,
        "std_spend": math.sqrt(200 / 3),
        "repeat_mean_spend": 25,
        "last_to_mean_spend": 1.5,
        "purchases_4w": 1,  # only day 30 (10 days back) is within the last 28 days
        "purchases_13w": 3,
        "purchases_26w": 3,
        "spend_4w": 30,
        "spend_13w": 60,
        "spend_26w": 60,
    }
    assert a.to_dict() == pytest.approx(expected_a, rel=1e-12)
    assert b["purchases"] == 1
    assert b["recency_ratio"] == 0
    assert b["days_since_last"] == 0
    assert b["purchases_per_week"] == pytest.approx(7.0)
    assert b["spend_per_week"] == pytest.approx(49.0)
    for missing in ("mean_gap_days", "std_gap_days", "last_gap_days", "overdue_ratio", "repeat_mean_spend"):
        assert math.isnan(cast(float, b[missing])), missing  # one label of a unique index: a scalar
    assert (b["first_spend"], b["last_spend"], b["max_spend"], b["spend_4w"]) == (7, 7, 7, 7)


def test_labels_window_is_open_at_the_cutoff_and_closed_at_the_horizon() -> None:
    activity = _activity(
        [
            ("a", "2020-01-01", 10.0),  # history
            ("a", "2020-01-02", 20.0),  # history (the cutoff day)
            ("a", "2020-01-03", 1.0),  # first day of the window
            ("a", "2020-01-12", 2.0),  # last day of the window (cutoff + 10 days)
            ("a", "2020-01-13", 100.0),  # after the window
            ("b", "2019-12-01", 5.0),  # born, no label purchase
            ("c", "2020-01-05", 5.0),  # born after the cutoff: not a row
        ]
    )
    got = labels(activity, "2020-01-02", 10)
    assert got.to_dict("index") == {"a": {"revenue": 3.0, "purchases": 2.0}, "b": {"revenue": 0.0, "purchases": 0.0}}


def test_weekly_periods_that_straddle_the_cutoff_are_neither_history_nor_label() -> None:
    activity = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a"],
            "date": pd.to_datetime(["2020-01-01", "2020-01-08", "2020-01-15", "2020-01-22"]),
            "purchases": [1, 2, 1, 1],
            "revenue": [10.0, 30.0, 5.0, 7.0],
        }
    )
    # Cutoff 2020-01-17: the week of the 15th ends on the 21st, after the cutoff.
    got = features(activity, "2020-01-17", period_days=7)
    assert got.loc["a", "purchases"] == 3
    assert got.loc["a", "mean_spend"] == pytest.approx(40 / 3)
    assert got.loc["a", "first_spend"] == 10
    assert got.loc["a", "last_spend"] == 15  # 30 over 2 purchases
    assert got.loc["a", "days_since_last"] == 9
    assert got.loc["a", "purchases_per_week"] == pytest.approx(3 / (17 / 7))  # 2020-01-01 to the 17th
    window = labels(activity, "2020-01-17", 14, period_days=7)
    assert window.loc["a"].to_dict() == {"revenue": 7.0, "purchases": 1.0}  # the week of the 22nd ends on the 28th


def test_bad_activity_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        features(pd.DataFrame({"customer_id": [1], "date": [pd.Timestamp("2020-01-01")]}), "2020-01-02")
    with pytest.raises(ValueError, match="horizon_days"):
        labels(_activity([("a", "2020-01-01", 1.0)]), "2020-01-02", 0)


@pytest.fixture(scope="module")
def cdnow_activity(cdnow_master: pd.DataFrame) -> pd.DataFrame:
    return activity_from_transactions(cdnow_master)


def test_cdnow_training_window(cdnow_activity: pd.DataFrame) -> None:
    """Features at 1997-07-03 and revenue labels over the next 181 days, on the full CDNOW master."""
    train = features(cdnow_activity, CUTOFF)
    target = labels(cdnow_activity, CUTOFF, HORIZON)
    assert len(train) == 23_570  # every customer was born in 1997-Q1
    assert target.index.equals(train.index)
    assert target["purchases"].gt(0).mean() == pytest.approx(0.2699, abs=5e-4)  # the holiday season
    assert target["revenue"].sum() == pytest.approx(
        cdnow_activity.loc[
            (cdnow_activity["date"] > CUTOFF) & (cdnow_activity["date"] <= CUTOFF + pd.Timedelta(days=HORIZON)),
            "revenue",
        ].sum(),
        rel=1e-12,
    )
    assert train["purchases"].sum() == cdnow_activity.loc[cdnow_activity["date"] <= CUTOFF, "purchases"].sum()
    assert train.notna().all().sum() == len(FEATURE_COLUMNS) - 6  # gaps and repeat spend missing for one-timers


def test_features_do_not_see_past_the_cutoff(cdnow_activity: pd.DataFrame) -> None:
    """Deleting, altering or adding anything after the cutoff leaves the features unchanged."""
    before = features(cdnow_activity, CUTOFF)
    after = cdnow_activity["date"] > CUTOFF
    deleted = cdnow_activity[~after]
    altered = cdnow_activity.copy()
    altered.loc[after, "revenue"] = altered.loc[after, "revenue"] * 10 + 1
    altered.loc[after, "purchases"] = 5
    altered.loc[after, "date"] = altered.loc[after, "date"] + pd.Timedelta(days=3)
    newcomers = pd.DataFrame(
        {"customer_id": ["new"], "date": [CUTOFF + pd.Timedelta(days=1)], "purchases": [1], "revenue": [50.0]}
    )
    altered = pd.concat([altered, newcomers], ignore_index=True).sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(features(deleted, CUTOFF), before)
    pd.testing.assert_frame_equal(features(altered, CUTOFF), before)
    assert np.isfinite(before["purchases_per_week"]).all()


def test_labels_do_not_see_past_the_horizon(cdnow_activity: pd.DataFrame) -> None:
    before = labels(cdnow_activity, CUTOFF, HORIZON)
    later = cdnow_activity["date"] > CUTOFF + pd.Timedelta(days=HORIZON)
    altered = cdnow_activity.copy()
    altered.loc[later, "revenue"] = 1e6
    pd.testing.assert_frame_equal(labels(altered, CUTOFF, HORIZON), before)
    pd.testing.assert_frame_equal(labels(cdnow_activity[~later], CUTOFF, HORIZON), before)
