from __future__ import annotations

import datetime as dt

import duckdb

from pipeline.config import PrepareConfig
from pipeline.engines.rules import QUARANTINE_REASONS, holdout_days, period_start, quarantine_rules
from pipeline.engines.sql import DUCKDB, reason_case

EVERYTHING = PrepareConfig(
    calibration_end=dt.date(2020, 1, 31),
    observation_end=dt.date(2020, 3, 31),
    max_amount=100.0,
    zero_amount="quarantine",
    returns="drop",
)


def test_every_reason_has_a_rule_and_event_feeds_have_no_amount_rules() -> None:
    reasons = [rule.reason for rule in quarantine_rules(EVERYTHING, has_amounts=True)]
    assert set(reasons) == set(QUARANTINE_REASONS)
    assert reasons[:3] == ["missing_customer_id", "missing_timestamp", "invalid_timestamp"]
    assert reasons[-1] == "after_observation_end"
    events = [rule.reason for rule in quarantine_rules(EVERYTHING, has_amounts=False)]
    assert events == [
        "missing_customer_id",
        "missing_timestamp",
        "invalid_timestamp",
        "timestamp_out_of_range",
        "duplicate",
        "after_observation_end",
    ]


def test_a_row_gets_the_first_reason_that_applies() -> None:
    case = reason_case(DUCKDB, quarantine_rules(EVERYTHING, has_amounts=True))
    rows = [
        (None, None, None, None, False, False),  # no id and no timestamp: the id comes first
        ("a", "x", None, 5.0, False, False),
        ("a", "x", dt.datetime(2020, 1, 2), float("nan"), True, False),
        ("a", "x", dt.datetime(1800, 1, 2), 1e14, False, False),  # too large before out of range
        ("a", "x", dt.datetime(1800, 1, 2), 500.0, False, False),  # out of range before max_amount
        ("a", "x", dt.datetime(2020, 1, 2), 0.0, True, True),  # duplicate before zero and return
        ("a", "x", dt.datetime(2020, 1, 2), -3.0, False, True),
        ("a", "x", dt.datetime(2020, 4, 1), 3.0, False, False),
        ("a", "x", dt.datetime(2020, 3, 31, 23, 59), 3.0, False, False),
    ]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (k INT, cid VARCHAR, raw_ts VARCHAR, ts TIMESTAMP, raw_value DOUBLE, "
        "is_duplicate BOOLEAN, is_return BOOLEAN)"
    )
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", [(k, *row) for k, row in enumerate(rows)])
    got = [reason for (reason,) in con.execute(f"SELECT {case} FROM t ORDER BY k").fetchall()]
    assert got == [
        "missing_customer_id",
        "invalid_timestamp",
        "invalid_amount",
        "amount_too_large",
        "timestamp_out_of_range",
        "duplicate",
        "return_dropped",
        "after_observation_end",
        None,
    ]


def test_weeks_start_on_monday_and_the_holdout_runs_between_period_starts() -> None:
    sunday = dt.date(2020, 2, 2)
    assert period_start(sunday, "day") == sunday
    assert period_start(sunday, "week") == dt.date(2020, 1, 27)
    assert holdout_days(dt.date(2020, 1, 31), dt.date(2020, 3, 31), "day") == 60
    assert holdout_days(dt.date(2020, 1, 31), dt.date(2020, 3, 31), "week") == 63
