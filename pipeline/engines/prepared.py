"""What the prepare stage returns on either engine: summaries, the row ledger and the quarantined rows.

The summaries follow lifetimes' ``calibration_and_holdout_data`` and
``summary_data_from_transaction_data`` exactly (``freq='D'`` with ``freq_multiplier=7`` for the
default day periods in weeks):

- purchases by a customer in the same period (day or week) merge into one, with their amounts summed;
- ``frequency`` counts the periods with a purchase after the first one;
- ``recency`` is the time from the first to the last purchase period, ``T`` from the first purchase
  period to the period holding the end of calibration, in ``time_unit``;
- ``monetary_value`` is the mean of the merged repeat purchases (0 without repeats);
- ``frequency_holdout`` counts holdout periods with a purchase, ``monetary_value_holdout`` is the mean
  holdout transaction, ``revenue_holdout`` the holdout spend.

Rules for real feeds, on top of lifetimes, are in :mod:`pipeline.engines.rules`; in addition:

- with an order id, invoice lines become one transaction per order (dated by its first line) before
  they are merged per period;
- timestamps with an offset are converted to ``timezone`` before periods are cut;
- an event feed (no amount, nor quantity and unit price) has purchases only, and its frames have no
  spend columns (:data:`MONEY_COLUMNS`): they are left out, not zero.

One difference from lifetimes, on purpose: ``calibration_end`` includes the whole day, so a purchase
at 15:00 on that day is calibration, not holdout (lifetimes compares against midnight).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from models.contract import SUMMARY_COLUMNS
from pipeline.config import PrepareConfig
from pipeline.engines.rules import QUARANTINE_REASONS, nets_returns
from pipeline.engines.timestamps import unreadable_hint
from pipeline.errors import InputError

__all__ = [
    "AMOUNT_HINT",
    "CUSTOMER_COLUMNS",
    "HOLDOUT_COLUMNS",
    "MONEY_COLUMNS",
    "WINDOW_REASON",
    "AsOfData",
    "Ledger",
    "PreparedData",
    "QuarantineDays",
    "QuarantinedRows",
    "ReasonCounts",
    "check_calibration_end",
    "no_usable_reasons",
    "no_usable_rows",
    "reconciled_ledger",
    "used_dates",
]

CUSTOMER_COLUMNS: tuple[str, ...] = (*SUMMARY_COLUMNS, "total_spend", "first_purchase")
"""The per-customer summary's columns after ``customer_id``: the scoring contract's, the total spend and
the first purchase period."""
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "revenue_holdout", "recent_spend", "recent_purchases")
"""The holdout actuals, and the last holdout-length of calibration (``recent_*``, for the last_period baselines)."""
MONEY_COLUMNS = ("monetary_value", "total_spend", "monetary_value_holdout", "revenue_holdout", "recent_spend")
"""The columns a feed without amounts (an event feed) does not have: they are left out, not zero."""


@dataclass(frozen=True)
class Ledger:
    """Row accounting: every input row is either used or quarantined with a reason."""

    rows_in: int
    rows_used: int
    quarantined: dict[str, int] = field(default_factory=dict)
    returns_netted: int = 0
    returns_unmatched: int = 0

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def reconciled(self) -> bool:
        return self.rows_in == self.rows_used + self.rows_quarantined


class QuarantinedRows(Protocol):
    """Rows that write themselves to Parquet: a lazy DuckDB relation, or a Spark DataFrame's wrapper."""

    def write_parquet(self, file_name: str) -> None: ...


WINDOW_REASON = "after_observation_end"
"""The reason of rows after the observation end: quarantined for this window only, not for a problem of their own."""


class QuarantineDays(Protocol):
    """The quarantined rows counted per day as prepare dated them, when asked (each engine's own query, read by
    :meth:`pipeline.engines.Engine.quarantined_days`)."""

    @property
    def source(self) -> str:
        """The input, as its errors name it."""
        ...

    def counted(self) -> dict[dt.date | None, int]: ...


@dataclass(frozen=True)
class PreparedData:
    """Output of the prepare stage.

    ``calibration``: one row per customer whose first purchase is on or before calibration_end, with the
    calibration summary and the holdout actuals. ``full``: one row per customer over the whole history
    up to observation_end (what the production model is fitted on and scores). ``quarantine``: the
    rejected rows (as text) with their ``reason``, as a lazy DuckDB relation (or Spark DataFrame).
    """

    calibration: pd.DataFrame
    full: pd.DataFrame
    quarantine: QuarantinedRows
    ledger: Ledger
    weekly: pd.DataFrame
    """Repeat purchase periods per week (``week``, ``repeat_purchases``) by the calibration customers."""
    calibration_end: dt.date
    observation_end: dt.date
    duration_holdout: float
    first_date: dt.date
    last_date: dt.date
    has_amounts: bool = True
    """False for an event feed (no amount column): the frames have no spend columns (:data:`MONEY_COLUMNS`)."""
    timestamp_format: str | None = None
    """The strptime format text timestamps were read with (configured or detected); None: the engine's own."""
    handle: object = field(default=None, repr=False, compare=False)
    """The engine's own view of the same data (Spark: the distributed summaries; DuckDB: None)."""
    quarantine_days: QuarantineDays | None = field(default=None, repr=False, compare=False)
    """The quarantined rows per day, counted when asked (:meth:`pipeline.engines.Engine.quarantined_days`); set by
    the engine's ``prepare``, None from a prepare called outside an engine."""

    @property
    def customers_new_in_holdout(self) -> int:
        """Customers whose first purchase falls in the holdout: never in the calibration fit."""
        return len(self.full) - len(self.calibration)


@dataclass(frozen=True)
class AsOfData:
    """Output of ``prepare_as_of``: the per-customer summary of everything up to ``as_of``."""

    customers: pd.DataFrame
    quarantine: QuarantinedRows
    ledger: Ledger
    as_of: dt.date
    has_amounts: bool = True
    """False for an event feed: ``customers`` has no spend columns (see :data:`MONEY_COLUMNS`)."""
    timestamp_format: str | None = None
    """The strptime format text timestamps were read with (configured or detected); None: the engine's own."""


AMOUNT_HINT = (
    "amounts are missing, not numbers, NaN or infinite (for a CSV with numbers written as 1.234,56 or 1,234.56, "
    "set data.csv.decimal and data.csv.thousands)"
)
"""Added when rows are quarantined as ``invalid_amount``: in a CSV the usual cause is its number separators."""

RANGE_HINT = (
    "timestamps before prepare.min_date ({min_date}): if the dates have two-digit years (31/12/22), set "
    "data.timestamp_format (e.g. %d/%m/%y)"
)
"""Added when rows are quarantined as ``timestamp_out_of_range``: a two-digit year read as the year 22."""

ReasonCounts = dict[str, tuple[int, dt.date | None, dt.date | None, int]]
"""The scan's counts per quarantine reason (``''`` for the rows used): rows, first day, last day, returns."""


def no_usable_rows(
    quarantined: Mapping[str, int],
    config: PrepareConfig,
    source: str,
    unreadable: Callable[[], str | None] = lambda: None,
    what: str = "transactions",
    given_format: str | None = None,
) -> InputError:
    """The error when no row is usable: the rows quarantined by reason (``quarantined``), and a hint for the
    reasons that have a usual cause (timestamps that could not be read, naming an ``unreadable`` one and the
    ``given_format`` of ``data.timestamp_format`` when it was set; amounts in another number format; two-digit
    years), the hint of the reason with the most rows first. The contractual and discrete jobs say it too, of
    their ``what``."""
    reasons = ", ".join(f"{n} {k}" for k, n in sorted(quarantined.items())) or "the input is empty"
    hints: list[tuple[int, str]] = []
    if "invalid_timestamp" in quarantined:
        hints.append((quarantined["invalid_timestamp"], unreadable_hint(unreadable(), given_format)))
    if "invalid_amount" in quarantined:
        hints.append((quarantined["invalid_amount"], f"; {AMOUNT_HINT}"))
    if "timestamp_out_of_range" in quarantined:
        hints.append((quarantined["timestamp_out_of_range"], f"; {RANGE_HINT.format(min_date=config.min_date)}"))
    hint = "".join(text for _, text in sorted(hints, key=lambda h: -h[0]))
    return InputError(f"{source}: no usable {what} after cleaning ({reasons}){hint}")


def no_usable_reasons(counts: Sequence[tuple[Any, ...]], returned: str) -> dict[str, int]:
    """The reasons of a contractual or discrete feed with no usable row, for :func:`no_usable_rows`, from its
    classified rows' ``counts`` (reason, rows; a reason of None for the rows used): the rows quarantined by
    reason and, when rows were used (every one of them then a return), those as ``returned`` ("refunds" in a
    billing feed, "returns" in a discrete one)."""
    reasons = {str(r): int(n) for r, n in counts if r is not None}
    used = sum(int(n) for r, n in counts if r is None)
    return reasons | ({returned: used} if used else {})


def used_dates(
    counts: ReasonCounts,
    config: PrepareConfig,
    source: str,
    unreadable: Callable[[], str | None] = lambda: None,
    given_format: str | None = None,
) -> tuple[dt.date, dt.date, dt.date, bool]:
    """First and last day of the rows used, the observation end, and whether there are returns to net
    (on either engine); InputError when no row is usable (naming an ``unreadable`` timestamp, when
    timestamps could not be read, and the ``given_format`` set as ``data.timestamp_format``) or the observation
    end is before the data."""
    _, first_date, last_date, returns = counts.get("", (0, None, None, 0))
    if first_date is None or last_date is None:
        quarantined = {k: v[0] for k, v in counts.items() if k}
        raise no_usable_rows(quarantined, config, source, unreadable, given_format=given_format)
    observation_end = config.observation_end or last_date
    if observation_end < first_date:
        raise InputError(
            f"{source}: prepare.observation_end {observation_end} is before the first transaction ({first_date})"
        )
    return first_date, last_date, observation_end, nets_returns(config, returns)


def reconciled_ledger(rows_in: int, counts: ReasonCounts, netted: int, unmatched: int, source: str) -> Ledger:
    """The ledger from the counts per reason; InputError unless rows in = rows used + rows quarantined."""
    quarantined = {reason: counts[reason][0] for reason in QUARANTINE_REASONS if reason in counts}
    ledger = Ledger(rows_in, counts.get("", (0, None, None, 0))[0], quarantined, netted, unmatched)
    if not ledger.reconciled:
        raise InputError(
            f"{source}: row reconciliation failed: {rows_in} rows in, {ledger.rows_used} used + "
            f"{ledger.rows_quarantined} quarantined"
        )
    return ledger


def check_calibration_end(config: PrepareConfig, first_date: dt.date, last_date: dt.date, source: str) -> None:
    """InputError unless prepare.calibration_end leaves used transactions on both sides."""
    calibration_end = config.calibration_end
    if calibration_end < first_date or calibration_end >= last_date:
        raise InputError(
            f"{source}: prepare.calibration_end {calibration_end} is outside the data "
            f"({first_date} to {last_date}); it must leave transactions on both sides"
        )
