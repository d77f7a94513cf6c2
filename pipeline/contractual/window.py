"""The calibration and the holdout of the contractual job, checked before the sBG is fitted.

The sBG learns churn from renewal decisions, and is judged on the decisions that come due after
``prepare.calibration_end``. So the calibration must hold at least one (a subscriber whose first renewal came
due: one billing period, then ``business.grace_days``, after the first charge), or the optimiser returns its
start values (alpha 1, beta 1) fitted to nothing; and the holdout, to the observation end (``prepare.
observation_end``, or the data's last charge), must bring :data:`~pipeline.contractual.validation.MIN_CELL`
subscribers of a cohort to a renewal decision beyond that cohort's calibration ones (the holdout cells of
:func:`~pipeline.contractual.validation.validate_subscriptions`), which needs a whole billing period after
``calibration_end``. Otherwise the job stops with one line (exit 2): the range of ``calibration_end`` that
would do, or, when no date would (a renewal due, then a whole period of data), how far the data must run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from pipeline.config import Config
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.validation import MIN_CELL, holdout_reach
from pipeline.errors import InputError

__all__ = ["Window", "anniversary", "check_window", "window", "window_problem"]


def anniversary(day: dt.date, periods: int, billing_period: str) -> dt.date:
    """``day`` moved by whole billing periods (back when negative), as prepare counts them: a month after the
    31st of January is the last day of February."""
    if billing_period == "week":
        return day + dt.timedelta(days=7 * periods)
    months = periods if billing_period == "month" else 12 * periods
    return (pd.Timestamp(day) + pd.DateOffset(months=months)).date()


@dataclass(frozen=True)
class Window:
    """What the feed allows: ``first_charge``; ``first_due``, the first day a renewal decision has come due
    (the earliest ``calibration_end`` with one); ``last_end``, one billing period before the observation end
    (the latest ``calibration_end`` leaving a whole period of holdout); ``end``, the observation end."""

    first_charge: dt.date
    first_due: dt.date
    last_end: dt.date
    end: dt.date


def window(subscribers: Subscribers, config: Config) -> Window:
    """The :class:`Window` of the prepared feed under ``config.business``."""
    business = config.business
    first = pd.Timestamp(subscribers.full["first_charge"].min()).date()
    due = anniversary(first, 1, business.billing_period) + dt.timedelta(days=business.grace_days)
    end = subscribers.observation_end
    return Window(first, due, anniversary(end, -1, business.billing_period), end)


def check_window(subscribers: Subscribers, config: Config, source: str, advice: tuple[str, ...] = ()) -> None:
    """An InputError (one line) when :func:`window_problem` finds one; the ``advice`` on the billing period
    (:func:`pipeline.contractual.intervals.billing_period_advice`), the likeliest cause, is added to it."""
    problem = window_problem(subscribers, config, source)
    if problem is not None:
        raise InputError("; ".join([problem, *(line.removeprefix("advice: ") for line in advice)]))


def window_problem(subscribers: Subscribers, config: Config, source: str) -> str | None:
    """None when the calibration holds a renewal decision and the holdout has a cell to judge the sBG on;
    otherwise what is wrong and what to change (see the module docstring)."""
    calibration, cut = subscribers.calibration, subscribers.calibration_end
    decided = int(calibration["age"].to_numpy().max(initial=0)) > 0
    if decided and holdout_reach(calibration, subscribers.full) >= MIN_CELL:
        return None
    w, period = window(subscribers, config), config.business.billing_period
    grace = config.business.grace_days
    end = (
        f"prepare.observation_end {w.end}"
        if config.prepare.observation_end is not None
        else f"the data's end {w.end} (its last charge)"
    )
    if w.first_due > w.last_end:
        return (
            f"{source}: the data is too short to validate the sBG with business.billing_period {period}: a renewal "
            f"first comes due on {w.first_due} (a {period} and business.grace_days {grace} after the first charge, "
            f"{w.first_charge}), "
            f"so prepare.calibration_end must be on or after it, and a whole {period} of holdout must follow it: "
            f"that needs data to {anniversary(w.first_due, 1, period)} or later, not to {end}"
        )
    if not decided:
        return (
            f"{source}: no renewal had come due by prepare.calibration_end {cut}, so the sBG has no renewal "
            f"decision to learn churn from (the first comes due on {w.first_due}: a {period} and "
            f"business.grace_days {grace} after the first charge, {w.first_charge}); set prepare.calibration_end "
            f"between {w.first_due} and {w.last_end} (one {period} before the end)"
        )
    if cut > w.last_end:
        return (
            f"{source}: the holdout from prepare.calibration_end {cut} to {end} holds no complete billing period "
            f"({period}), so no renewal decision comes due in it to validate the sBG on; move "
            f"prepare.calibration_end back to {w.last_end} or earlier"
        )
    largest = int(subscribers.full.groupby("cohort").size().max())
    if largest < MIN_CELL:
        return (
            f"{source}: the largest cohort (subscribers acquired in one {period}) has {largest} subscribers, fewer "
            f"than the {MIN_CELL} a holdout cell needs to validate the sBG on; train on a feed with more subscribers"
        )
    return (
        f"{source}: in the holdout from prepare.calibration_end {cut} to {end}, no cohort has {MIN_CELL} "
        f"subscribers reaching a renewal decision beyond its calibration ones, so there is nothing to validate "
        f"the sBG on; move prepare.calibration_end back (a longer holdout)"
    )
