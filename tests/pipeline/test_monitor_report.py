"""The verdict line of ``clv monitor`` agrees with the period table: what failed in the last ``stale_after``
periods, or in the fewer that have passed, is named; "no check failed" only when none did."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline.monitor import Check, MonitorConfig, Monitoring, Period, Reference, verdict
from pipeline.monitor_report import summary_dict, verdict_line

T0 = dt.date(2024, 6, 30)
MODEL = "models:/retail@champion (version 1)"
RULE = "a retrain is due when the same check fails in each of the last 2 period(s)"


def _period(index: int, *failed: str) -> Period:
    checks = tuple(Check(name, 1.0, 0.5, name not in failed) for name in ("purchases", "spend", "quarantine"))
    return Period(index, T0 + dt.timedelta(days=28 * index), {}, checks)


def _result(*periods: Period) -> Monitoring:
    status, failing, stale_from = verdict(periods, 2)
    return Monitoring(Reference(T0), periods, pd.DataFrame(), status, failing, stale_from, MonitorConfig())


def test_one_failing_period_of_the_two_needed_is_a_warning_not_ok() -> None:
    result = _result(_period(1, "quarantine"))
    assert (result.verdict, result.exit_code) == ("ok", 0)  # no retrain due: one period is not two
    assert result.failed_recently == {"quarantine": (1,)}
    assert verdict_line(result, MODEL) == (
        f"clv monitor: WARNING, no retrain due: {MODEL}: 1 period(s) of 28 days since 2024-06-30; "
        f"quarantine failed in period(s) 1 ({RULE})"
    )
    assert summary_dict(result, {}, 0)["failed_recently"] == {"quarantine": [1]}


def test_a_check_failing_in_one_of_the_last_periods_is_named() -> None:
    result = _result(_period(1, "spend"), _period(2, "spend", "purchases"), _period(3, "quarantine", "purchases"))
    assert (result.verdict, result.failing) == ("stale", ("purchases",))
    result = _result(_period(1, "spend"), _period(2, "purchases"), _period(3, "quarantine", "spend"))
    assert (result.verdict, result.failing, result.exit_code) == ("ok", (), 0)  # none failed in both 2 and 3
    assert verdict_line(result, MODEL) == (
        f"clv monitor: WARNING, no retrain due: {MODEL}: 3 period(s) of 28 days since 2024-06-30; "
        f"purchases failed in period(s) 2; quarantine, spend failed in period(s) 3 ({RULE})"
    )


def test_a_check_failing_twice_in_a_longer_window_is_named_with_both_periods() -> None:
    periods = (_period(1, "spend"), _period(2, "spend"), _period(3))
    status, failing, stale_from = verdict(periods, 3)
    result = Monitoring(
        Reference(T0), periods, pd.DataFrame(), status, failing, stale_from, MonitorConfig(stale_after=3)
    )
    assert verdict_line(result, MODEL) == (
        f"clv monitor: WARNING, no retrain due: {MODEL}: 3 period(s) of 28 days since 2024-06-30; "
        "spend failed in period(s) 1, 2 (a retrain is due when the same check fails in each of the last 3 period(s))"
    )


def test_fewer_periods_than_needed_say_how_many_passed() -> None:
    assert verdict_line(_result(_period(1)), MODEL) == (
        f"clv monitor: OK: {MODEL}: 1 period(s) of 28 days since 2024-06-30; "
        f"no check failed in the 1 period(s) so far ({RULE})"
    )


def test_healthy_stale_and_too_early_lines() -> None:
    healthy = _result(_period(1, "spend"), _period(2), _period(3))
    assert healthy.failed_recently == {}
    assert verdict_line(healthy, MODEL) == (
        f"clv monitor: OK: {MODEL}: 3 period(s) of 28 days since 2024-06-30; no check failed in the last 2 period(s)"
    )
    stale = _result(_period(1), _period(2, "spend"), _period(3, "spend", "purchases"))
    assert (stale.verdict, stale.exit_code) == ("stale", 4)
    assert verdict_line(stale, MODEL) == (
        f"clv monitor: STALE, retrain due: {MODEL}: spend failed in each of the last 2 period(s) "
        "(3 period(s) of 28 days since 2024-06-30; first stale at period 3)"
    )
    assert verdict_line(_result(), MODEL) == (
        f"clv monitor: OK (too early): {MODEL}: no complete 28-day period of new data since 2024-06-30"
    )
