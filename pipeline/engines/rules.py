"""The data rules of the prepare stage, stated once for both engines.

:mod:`pipeline.engines.sql` renders them to DuckDB and Spark SQL; the engines only run what it renders.

- **Quarantine**: a row gets the first reason of :func:`quarantine_rules` that applies to it, in that
  order (:data:`QUARANTINE_REASONS` lists every reason in the same order).
- **Returns**: a row is a return when its amount is negative or its order id starts with
  ``prepare.cancel_prefix``; its value is then ``-abs(amount)``. With ``returns: net`` a return is
  subtracted from the customer's latest purchase period at or before it within the same window
  (calibration, or full history), a period's value never goes below 0, and holdout revenue is holdout
  purchases minus holdout returns (at least 0). A return with no purchase period at or before it is
  unmatched and has no effect. Returns never count as purchases.
- **Amounts** are rounded to 1/:data:`SCALE` and summed as exact integers, so that sums do not depend
  on the thread schedule or the partitioning.
- **Periods** start on the day itself (``day``) or on the Monday of its week (``week``): :func:`period_start`.
- **Ids**: text, ASCII spaces removed at either end (nothing else), a whole float such as ``17850.0``
  loses its ``.0...`` part (:data:`FLOAT_ID_PATTERN`), and an empty id is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from models.contract import FLOAT_ID_PATTERN
from pipeline.config import PrepareConfig

__all__ = [
    "FLOAT_ID_PATTERN",
    "ID_PATTERN_ANCHORED",
    "MAX_ABS_AMOUNT",
    "QUARANTINE_REASONS",
    "SCALE",
    "Rule",
    "holdout_days",
    "nets_returns",
    "period_start",
    "quarantine_rules",
]

QUARANTINE_REASONS: tuple[str, ...] = (
    "missing_customer_id",
    "missing_timestamp",
    "invalid_timestamp",
    "invalid_amount",
    "timestamp_out_of_range",
    "amount_too_large",
    "duplicate",
    "zero_amount",
    "return_dropped",
    "after_observation_end",
)
MAX_ABS_AMOUNT = 1e13
"""Amounts this large are always errors (and beyond what exact sums of 1/10,000 units hold in a BIGINT row)."""
SCALE = 10_000
"""Amounts are rounded to 4 decimals and summed as exact integers of 1/10,000."""
ID_PATTERN_ANCHORED = FLOAT_ID_PATTERN.removesuffix("$") + r"\z"
""":data:`FLOAT_ID_PATTERN` anchored with ``\\z`` (end of text): Java's ``$``, in Spark, also matches before a
final line break."""

Test = Literal["missing", "not_finite", "abs_at_least", "abs_above", "day_before", "day_after", "true", "zero"]


@dataclass(frozen=True)
class Rule:
    """Rows for which ``test`` holds on ``column`` (with ``value``, a number or a date) get ``reason``.

    Columns of the classified rows: ``cid`` (the id), ``raw_ts`` (the timestamp as given), ``ts`` (parsed),
    ``raw_value`` (the amount), ``is_duplicate`` and ``is_return``.
    """

    reason: str
    test: Test
    column: str
    value: float | dt.date | None = None


def quarantine_rules(config: PrepareConfig, has_amounts: bool) -> tuple[Rule, ...]:
    """The quarantine rules in the order a row meets them; the amount rules only for a feed with amounts."""
    rules = [
        Rule("missing_customer_id", "missing", "cid"),
        Rule("missing_timestamp", "missing", "raw_ts"),
        Rule("invalid_timestamp", "missing", "ts"),
    ]
    if has_amounts:
        rules += [
            Rule("invalid_amount", "not_finite", "raw_value"),
            Rule("amount_too_large", "abs_at_least", "raw_value", MAX_ABS_AMOUNT),
        ]
    rules.append(Rule("timestamp_out_of_range", "day_before", "ts", config.min_date))
    if config.max_amount is not None and has_amounts:
        rules.append(Rule("amount_too_large", "abs_above", "raw_value", float(config.max_amount)))
    rules.append(Rule("duplicate", "true", "is_duplicate"))
    if config.zero_amount == "quarantine" and has_amounts:
        rules.append(Rule("zero_amount", "zero", "raw_value"))
    if config.returns == "drop" and has_amounts:
        rules.append(Rule("return_dropped", "true", "is_return"))
    # Without an observation end, a date after today is still a typo, not the end of the holdout.
    rules.append(Rule("after_observation_end", "day_after", "ts", config.observation_end or dt.date.today()))
    return tuple(rules)


def nets_returns(config: PrepareConfig, used_returns: int) -> bool:
    """Whether returns are netted: ``returns: net`` and at least one used return row."""
    return config.returns == "net" and used_returns > 0


def period_start(day: dt.date, period: str) -> dt.date:
    """First day of the period holding ``day``: weeks start on Monday (DuckDB, Spark and pandas 'W')."""
    return day if period == "day" else day - dt.timedelta(days=day.weekday())


def holdout_days(calibration_end: dt.date, observation_end: dt.date, period: str) -> int:
    """Days from the period holding calibration_end to the period holding observation_end: the holdout's length."""
    return (period_start(observation_end, period) - period_start(calibration_end, period)).days
