"""Prepare stage: raw transactions -> cleaned rows, a quarantine ledger, and per-customer summaries.

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

Rules for real feeds, on top of lifetimes:

- with an order id, invoice lines become one transaction per order (dated by its first line) before
  they are merged per period;
- returns (negative amount or quantity, or an order id starting with ``cancel_prefix``) are netted
  (``returns: net``): a return is subtracted from the customer's latest purchase period at or before it
  within the same window (calibration, or full history), and a period's value never goes below 0;
  holdout revenue is holdout purchases minus holdout returns (at least 0). Returns never count as
  purchases. A return with no purchase before it is counted as ``returns_unmatched`` and has no
  effect. With ``returns: drop`` they are quarantined instead;
- timestamps with an offset are converted to ``timezone`` before periods are cut;
- an event feed (no amount, nor quantity and unit price) has purchases only, and its frames have no
  spend columns (:data:`MONEY_COLUMNS`): they are left out, not zero.

Each row's parsing and quarantine reason come from :mod:`pipeline.engines.duckdb_classify` (ids, duplicates by the
whole source row or ``duplicate_key``, timestamp format detection).

One difference from lifetimes, on purpose: ``calibration_end`` includes the whole day, so a purchase
at 15:00 on that day is calibration, not holdout (lifetimes compares against midnight).

The stage runs in DuckDB over a lazy relation: DuckDB reads the input itself, scans it once into a
table of rows per customer and day, aggregates the purchase periods into one table of customers (the
full history, the calibration and the holdout side by side, in one pass), and pandas frames are built
only from that per-customer table, through Arrow (above 2M customers through temporary Parquet files, so
that the frames are not built while DuckDB still holds its tables). The quarantined rows stay a lazy
relation for the edge to write.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from models.clv import DAYS_PER_UNIT
from pipeline.config import PrepareConfig
from pipeline.engines.duckdb_classify import (
    classified_sql,
    detected_format,
    is_native_timestamp,
    quarantine_sql,
    unreadable_timestamp,
)
from pipeline.engines.ids import ascii_trimmed
from pipeline.engines.source_columns import Layout
from pipeline.engines.source_columns import layout as source_layout
from pipeline.engines.timestamps import unreadable_hint
from pipeline.errors import InputError

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
SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value", "total_spend", "first_purchase")
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

    @property
    def customers_new_in_holdout(self) -> int:
        """Customers whose first purchase falls in the holdout: never in the calibration fit."""
        return len(self.full) - len(self.calibration)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_trimmed = ascii_trimmed  # the ids' ASCII trim, under the name the tests have always used


def _period_start(day: dt.date, period: str) -> dt.date:
    """First day of the period holding ``day``: weeks start on Monday (DuckDB and pandas 'W')."""
    return day if period == "day" else day - dt.timedelta(days=day.weekday())


ROWS_PER_PASS = 12_500_000
"""Input rows per pass over the input: larger inputs are read once per bucket of customers."""
SCALE = 10_000
"""Amounts are rounded to 4 decimals and summed as exact integers of 1/10,000 (BIGINT days, HUGEINT sums)."""
_BIGINT_MAX = 2**63 - 1


def _daily_sql(classified: str, has_order: bool) -> str:
    """The one scan of the input: used rows grouped by customer, order, return flag and day.

    Quarantined rows keep only their ``reason`` (they are counted, not summarised). Amounts are rounded
    to 4 decimals and summed as exact integers from here on: floating-point sums split across threads
    would depend on the thread schedule, and the same input must always give the same numbers. A day's
    sum is kept as a BIGINT (the per-customer sums over it run twice as fast as over HUGEINT); a day
    whose sum does not fit (over 922 trillion) is NULL here, and the scan stops on it with an InputError.
    """
    order = "CASE WHEN reason IS NULL THEN order_key END AS order_key," if has_order else ""
    return f"""
        SELECT reason,
               CASE WHEN reason IS NULL THEN cid END AS cid, {order}
               CASE WHEN reason IS NULL THEN is_return END AS is_return,
               CASE WHEN reason IS NULL THEN CAST(ts AS DATE) END AS d,
               TRY_CAST(sum(CASE WHEN reason IS NULL THEN CAST(round(value * {SCALE}) AS BIGINT) END) AS BIGINT)
                   AS amount,
               count(*) AS n
        FROM ({classified}) GROUP BY ALL
    """


@dataclass(frozen=True)
class _Windows:
    """The dates that cut the history: calibration up to ``calibration_end``, then the holdout up to
    ``observation_end``; ``recent_start`` opens the window of the same length before calibration_end."""

    calibration_end: dt.date
    observation_end: dt.date
    recent_start: dt.date
    period: str


def _trunc(column: str, period: str) -> str:
    return column if period == "day" else f"date_trunc('week', {column})::DATE"


def _periods_sql(daily: str, w: _Windows, has_order: bool) -> tuple[str, bool]:
    """Purchase periods, one row per customer and period (day or week), split at calibration_end.

    Columns: ``cal_amount`` (orders on or before calibration_end, NULL without), ``hold_amount`` and
    ``hold_n`` (orders after it, NULL without), ``recent_amount`` (orders in the recent window) and
    ``recent_n`` (1 when the period has an order in the recent window, NULL without).
    Returns the SQL and whether it aggregates (and is worth materialising).
    """
    purchases = f"SELECT * FROM {daily} WHERE reason IS NULL AND d <= DATE '{w.observation_end}' AND NOT is_return"
    cal = f"d <= DATE '{w.calibration_end}'"
    hold = f"d > DATE '{w.calibration_end}'"
    recent = f"d > DATE '{w.recent_start}' AND {cal}"
    if has_order:
        # Lines without an order id are one transaction per customer and day, not one giant order.
        orders = f"""SELECT cid, min(d) AS d, sum(amount) AS amount, 1 AS n FROM ({purchases})
                     GROUP BY cid, coalesce(order_key, 'day ' || CAST(d AS VARCHAR))"""
    elif w.period == "day":
        # Without order ids the scan already holds one row per customer and day: nothing to merge.
        return (
            f"""SELECT cid, d AS p,
                   CASE WHEN {cal} THEN amount END AS cal_amount,
                   CASE WHEN {hold} THEN amount END AS hold_amount,
                   CASE WHEN {hold} THEN n END AS hold_n,
                   CASE WHEN {recent} THEN amount END AS recent_amount,
                   CASE WHEN {recent} THEN 1 END AS recent_n
            FROM ({purchases})""",
            False,
        )
    else:
        orders = f"SELECT cid, d, amount, n FROM ({purchases})"
    return (
        f"""SELECT cid, {_trunc("d", w.period)} AS p,
                   sum(amount) FILTER ({cal}) AS cal_amount,
                   sum(amount) FILTER ({hold}) AS hold_amount,
                   sum(n) FILTER ({hold}) AS hold_n,
                   sum(amount) FILTER ({recent}) AS recent_amount,
                   max(CASE WHEN {recent} THEN 1 END) AS recent_n
            FROM ({orders}) GROUP BY ALL""",
        True,
    )


def _netted_sql(daily: str, periods: str, w: _Windows, net: bool) -> str:
    """CTEs ``netted`` (periods with ``amount``, the full-history value, and ``cal_net``, the calibration
    value, NULL outside calibration) and ``refund_totals`` (per customer: holdout and recent refunds).

    A return is subtracted from the customer's latest purchase period at or before it, within the same
    window (calibration, or full history), and a period's value never goes below 0.
    """
    if not net:
        return f"""
        netted AS (
            SELECT cid, p, hold_amount, hold_n, recent_amount, recent_n, cal_amount AS cal_net,
                   coalesce(cal_amount, 0) + coalesce(hold_amount, 0) AS amount
            FROM {periods}
        ),
        refund_totals AS (
            SELECT NULL::VARCHAR AS cid, NULL::HUGEINT AS hold, NULL::HUGEINT AS recent WHERE false
        )"""
    cal = f"d <= DATE '{w.calibration_end}'"
    return f"""
        refunds AS (
            SELECT cid, d, {_trunc("d", w.period)} AS p, amount FROM {daily}
            WHERE reason IS NULL AND d <= DATE '{w.observation_end}' AND is_return
        ),
        refunds_full AS (
            SELECT r.cid, pp.p, sum(r.amount) AS amount
            FROM refunds r ASOF JOIN {periods} pp ON r.cid = pp.cid AND r.p >= pp.p GROUP BY ALL
        ),
        refunds_cal AS (
            SELECT r.cid, pp.p, sum(r.amount) AS amount
            FROM (SELECT * FROM refunds WHERE {cal}) r
            ASOF JOIN (SELECT cid, p FROM {periods} WHERE cal_amount IS NOT NULL) pp
                ON r.cid = pp.cid AND r.p >= pp.p
            GROUP BY ALL
        ),
        netted AS (
            SELECT cid, p, hold_amount, hold_n, recent_amount, recent_n,
                   CASE WHEN cal_amount IS NOT NULL THEN greatest(cal_amount + coalesce(rc.amount, 0), 0) END
                       AS cal_net,
                   greatest(coalesce(cal_amount, 0) + coalesce(hold_amount, 0) + coalesce(rf.amount, 0), 0)
                       AS amount
            FROM {periods} LEFT JOIN refunds_full rf USING (cid, p) LEFT JOIN refunds_cal rc USING (cid, p)
        ),
        refund_totals AS (
            SELECT cid, sum(amount) FILTER (d > DATE '{w.calibration_end}') AS hold,
                   sum(amount) FILTER (d > DATE '{w.recent_start}' AND {cal}) AS recent
            FROM refunds GROUP BY cid
        )"""


def _customers_sql(daily: str, periods: str, w: _Windows, net: bool) -> str:
    """One row per customer with a purchase: counts, first and last periods and exact sums, for the
    full history (``periods``, ``total``, ...), the calibration (``cal_``) and the holdout (``hold_``),
    all in one aggregation over the purchase periods."""
    return f"""
        WITH {_netted_sql(daily, periods, w, net)},
        customers AS (
            SELECT cid,
                   count(*) AS periods, min(p) AS first_p, max(p) AS last_p,
                   sum(amount) AS total, arg_min(amount, p) AS first_amount,
                   count(cal_net) AS cal_periods, max(p) FILTER (cal_net IS NOT NULL) AS cal_last_p,
                   sum(cal_net) AS cal_total, arg_min(cal_net, p) FILTER (cal_net IS NOT NULL) AS cal_first_amount,
                   count(hold_amount) AS hold_periods, sum(hold_amount) AS hold_gross, sum(hold_n) AS hold_n,
                   sum(recent_amount) AS recent, count(recent_n) AS recent_periods
            FROM netted GROUP BY cid
        )
        SELECT c.*, rt.hold AS hold_refunds, rt.recent AS recent_refunds
        FROM customers c LEFT JOIN refund_totals rt USING (cid)
    """


def _selected(columns: list[tuple[str, str]], money: bool) -> str:
    """``expr AS "name"`` for each column; without ``money`` (an event feed), not the spend columns."""
    return ", ".join(f'{e} AS "{c}"' for e, c in columns if money or c not in MONEY_COLUMNS)


def _summary_columns(prefix: str, cutoff: dt.date, period: str, unit_days: float) -> list[tuple[str, str]]:
    """lifetimes' summary columns from a customers row (``prefix`` ``cal_`` for the calibration)."""
    count, last_p, total, first_amount = (f"{prefix}{c}" for c in ("periods", "last_p", "total", "first_amount"))
    # Repeat spend = all spend minus the first period's.
    exprs = [
        f"CAST({count} - 1 AS DOUBLE)",
        f"date_diff('day', first_p, {last_p}) / {unit_days}",
        f"date_diff('day', first_p, DATE '{_period_start(cutoff, period)}') / {unit_days}",
        f"""CASE WHEN {count} > 1
                 THEN CAST({total} - {first_amount} AS DOUBLE) / ({SCALE} * ({count} - 1)) ELSE 0.0 END""",
        f"CAST({total} AS DOUBLE) / {SCALE}",
        "CAST(first_p AS TIMESTAMP)",
    ]
    return list(zip(exprs, SUMMARY_COLUMNS, strict=True))


def _full_sql(customers: str, w: _Windows, unit_days: float, money: bool) -> str:
    """The full-history summary up to observation_end, one row per customer, ordered by customer id."""
    full = _selected(_summary_columns("", w.observation_end, w.period, unit_days), money)
    return f"SELECT cid AS customer_id, {full} FROM {customers} ORDER BY customer_id"


def _calibration_sql(customers: str, w: _Windows, unit_days: float, money: bool) -> str:
    """The calibration summary and the holdout actuals of the customers who bought on or before
    calibration_end, ordered by customer id."""
    holdout = [
        ("CAST(hold_periods AS DOUBLE)", "frequency_holdout"),
        (f"CASE WHEN hold_n > 0 THEN CAST(hold_gross AS DOUBLE) / ({SCALE} * hold_n) ELSE 0.0 END", HOLDOUT_COLUMNS[1]),
        (
            f"CAST(greatest(coalesce(hold_gross, 0) + coalesce(hold_refunds, 0), 0) AS DOUBLE) / {SCALE}",
            "revenue_holdout",
        ),
        (f"CAST(greatest(coalesce(recent, 0) + coalesce(recent_refunds, 0), 0) AS DOUBLE) / {SCALE}", "recent_spend"),
        ("CAST(recent_periods AS DOUBLE)", "recent_purchases"),
    ]
    columns = _selected(_summary_columns("cal_", w.calibration_end, w.period, unit_days) + holdout, money)
    return f"SELECT cid AS customer_id, {columns} FROM {customers} WHERE cal_periods > 0 ORDER BY customer_id"


def _weekly_parts_sql(periods: str, customers: str, w: _Windows) -> str:
    """Per calendar week (Monday start): the purchase periods of all customers (``n_all``) and of the
    customers new in the holdout (``n_new``, whose periods all start after calibration_end).

    Additive over customer buckets; no join of periods to customers.
    """
    new_from = _period_start(w.calibration_end + dt.timedelta(days=1), w.period)
    return f"""
        SELECT date_trunc('week', p)::DATE AS week, count(*) AS n_all,
               count(*) FILTER (
                   WHERE p >= DATE '{new_from}' AND cid IN (SELECT cid FROM {customers} WHERE cal_periods = 0)
               ) AS n_new
        FROM {periods} GROUP BY week
    """


def _weekly_sql(parts: str, customers: str) -> str:
    """Repeat purchase periods per calendar week by the calibration customers: their periods in the week
    (all minus the new customers') minus their first periods."""
    return f"""
        WITH weeks AS (SELECT week, sum(n_all) AS n_all, sum(n_new) AS n_new FROM {parts} GROUP BY week),
        first_weeks AS (
            SELECT date_trunc('week', first_p)::DATE AS week, count(*) AS n FROM {customers}
            WHERE cal_periods > 0 GROUP BY week
        )
        SELECT week, CAST(n_all - n_new - coalesce(f.n, 0) AS BIGINT) AS repeat_purchases
        FROM weeks LEFT JOIN first_weeks f USING (week)
        WHERE n_all > n_new ORDER BY week
    """


def _returns_sql(daily: str, observation_end: dt.date, period: str) -> str:
    """Counts of used return rows, and of those with no purchase period at or before them."""
    trunc = "d" if period == "day" else "date_trunc('week', d)::DATE"
    return f"""
        WITH valid AS (
            SELECT cid, {trunc} AS p, is_return, n FROM {daily}
            WHERE reason IS NULL AND d <= DATE '{observation_end}'
        ),
        purchases AS (SELECT DISTINCT cid, p FROM valid WHERE NOT is_return),
        refunds AS (SELECT cid, p, n FROM valid WHERE is_return)
        SELECT coalesce(sum(n) FILTER (WHERE purchases.p IS NOT NULL), 0) AS netted,
               coalesce(sum(n) FILTER (WHERE purchases.p IS NULL), 0) AS unmatched
        FROM refunds ASOF LEFT JOIN purchases ON refunds.cid = purchases.cid AND refunds.p >= purchases.p
    """


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


@dataclass(frozen=True)
class AsOfData:
    """Output of :func:`prepare_as_of`: the per-customer summary of everything up to ``as_of``."""

    customers: pd.DataFrame
    quarantine: duckdb.DuckDBPyRelation
    ledger: Ledger
    as_of: dt.date
    has_amounts: bool = True
    """False for an event feed: ``customers`` has no spend columns (see :data:`MONEY_COLUMNS`)."""
    timestamp_format: str | None = None
    """The strptime format text timestamps were read with (configured or detected); None: DuckDB's own."""


@dataclass(frozen=True)
class _Scan:
    """The input scanned into tables ``daily_<bucket>`` (view ``daily`` over all of them): rows per
    (reason, customer, order, return flag, day)."""

    daily: str
    buckets: int
    layout: Layout
    timestamp_format: str | None
    classified_sql: str
    ledger: Ledger
    first_date: dt.date
    last_date: dt.date
    observation_end: dt.date
    net: bool


def _store(relation: duckdb.DuckDBPyRelation, table: str, create: bool) -> None:
    if create:
        relation.create(table)
    else:
        relation.insert_into(table)


ReasonCounts = dict[str, tuple[int, dt.date | None, dt.date | None, int]]
"""The scan's counts per quarantine reason (``''`` for the rows used): rows, first day, last day, returns."""


def used_dates(
    counts: ReasonCounts, config: PrepareConfig, source: str, unreadable: Callable[[], str | None] = lambda: None
) -> tuple[dt.date, dt.date, dt.date, bool]:
    """First and last day of the rows used, the observation end, and whether there are returns to net
    (on either engine); InputError when no row is usable (naming an ``unreadable`` timestamp, when
    timestamps could not be read) or the observation end is before the data."""
    _, first_date, last_date, returns = counts.get("", (0, None, None, 0))
    if first_date is None or last_date is None:
        reasons = ", ".join(f"{v[0]} {k}" for k, v in sorted(counts.items()) if k) or "the input is empty"
        hint = unreadable_hint(unreadable()) if "invalid_timestamp" in counts else ""
        raise InputError(f"{source}: no usable transactions after cleaning ({reasons}){hint}")
    observation_end = config.observation_end or last_date
    if observation_end < first_date:
        raise InputError(
            f"{source}: prepare.observation_end {observation_end} is before the first transaction ({first_date})"
        )
    return first_date, last_date, observation_end, config.returns == "net" and returns > 0


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


def _scan(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None,
    column_names: Mapping[str, str] | None,
    source: str,
    daily: str,
) -> _Scan:
    columns = {name: str(dtype) for name, dtype in zip(transactions.columns, transactions.types, strict=True)}
    layout = source_layout(list(columns), column_names, config, source)
    if timestamp_format is None and not is_native_timestamp(columns["timestamp"]):
        timestamp_format = detected_format(transactions, config.timezone, source)
    classified = classified_sql(columns, layout, config, timestamp_format)
    rows_in = int(_query(transactions, "tx", "SELECT count(*) FROM tx").fetchall()[0][0])
    # Customers split into buckets, one pass over the input each, so that the per-day aggregation of
    # a bucket fits in memory: one big aggregation would spill many times its size to disk.
    buckets = max(1, -(-rows_in // ROWS_PER_PASS))
    for bucket in range(buckets):
        bucket_sql = classified_sql(columns, layout, config, timestamp_format, (bucket, buckets))
        _query(transactions, "tx", _daily_sql(bucket_sql, layout.has_order)).create(f"{daily}_{bucket}")
    every_bucket = " UNION ALL ".join(f"SELECT * FROM {daily}_{bucket}" for bucket in range(buckets))
    _query(transactions, "tx", f"CREATE VIEW {daily} AS {every_bucket}")
    counts = _query(
        transactions,
        "tx",
        f"""SELECT coalesce(reason, '') AS reason, sum(n) AS n, min(d) AS first, max(d) AS last,
                   sum(n) FILTER (WHERE is_return) AS returns,
                   any_value(cid) FILTER (WHERE reason IS NULL AND amount IS NULL) AS overflow
            FROM {daily} GROUP BY ALL""",
    ).fetchall()
    for *_, overflow in counts:
        if overflow is not None:
            raise InputError(
                f"{source}: customer {overflow!r} has more than {_BIGINT_MAX / SCALE:.3g} in purchases or returns "
                "on one day; set prepare.max_amount to quarantine such amounts"
            )
    by_reason = {reason: (int(n), first, last, int(r or 0)) for reason, n, first, last, r, _ in counts}
    first_date, last_date, observation_end, net = used_dates(
        by_reason, config, source, lambda: unreadable_timestamp(transactions, classified)
    )
    netted, unmatched = (0, 0)
    if net:
        returns_sql = _returns_sql(daily, observation_end, config.period)
        netted, unmatched = _query(transactions, "tx", returns_sql).fetchall()[0]
    ledger = reconciled_ledger(rows_in, by_reason, int(netted), int(unmatched), source)
    return _Scan(
        daily, buckets, layout, timestamp_format, classified, ledger, first_date, last_date, observation_end, net
    )


def _quarantine(transactions: duckdb.DuckDBPyRelation, scan: _Scan) -> duckdb.DuckDBPyRelation:
    return _query(transactions, "tx", quarantine_sql(scan.classified_sql, scan.layout))


@dataclass(frozen=True)
class _Tables:
    """Names of the working tables prepare creates (and drops) in the relation's connection."""

    daily: str
    periods: str
    customers: str
    weekly: str

    @staticmethod
    def new() -> _Tables:
        stem = f"clv_prepare_{uuid.uuid4().hex}"
        return _Tables(f"{stem}_daily", f"{stem}_periods", f"{stem}_customers", f"{stem}_weekly")

    def drop(self, transactions: duckdb.DuckDBPyRelation, *names: str) -> None:
        """Drop the named tables (all of them by default); ``daily`` stands for its view and bucket tables."""
        names = names or (self.daily, self.periods, self.customers, self.weekly)
        if self.daily in names:
            _query(transactions, "tx", f"DROP VIEW IF EXISTS {self.daily}")
            prefix = _literal(f"{self.daily}_")
            sql = f"SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, {prefix})"
            buckets = _query(transactions, "tx", sql).fetchall()
            names = tuple(n for n in names if n != self.daily) + tuple(name for (name,) in buckets)
        for name in names:
            _query(transactions, "tx", f"DROP TABLE IF EXISTS {name}")


def _customers(
    transactions: duckdb.DuckDBPyRelation, scan: _Scan, windows: _Windows, tables: _Tables, weekly: bool
) -> None:
    """Build the per-customer table (and, with ``weekly``, the weekly parts), one customer bucket at a time."""
    for bucket in range(scan.buckets):
        daily = f"{scan.daily}_{bucket}"
        periods_sql, aggregates = _periods_sql(daily, windows, scan.layout.has_order)
        periods = f"({periods_sql})"
        if aggregates:
            tables.drop(transactions, tables.periods)
            _query(transactions, "tx", periods_sql).create(tables.periods)
            periods = tables.periods
        customers = _query(transactions, "tx", _customers_sql(daily, periods, windows, scan.net))
        _store(customers, tables.customers, bucket == 0)
        if weekly:
            parts = _query(transactions, "tx", _weekly_parts_sql(periods, tables.customers, windows))
            _store(parts, tables.weekly, bucket == 0)


def _count(transactions: duckdb.DuckDBPyRelation, table: str) -> int:
    return int(_query(transactions, "tx", f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _fetch(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A pandas frame through Arrow: numeric columns without NULLs are handed over without a copy."""
    frame: pd.DataFrame = relation.to_arrow_table().to_pandas(split_blocks=True, self_destruct=True)
    return frame


FETCH_THROUGH_FILES = 2_000_000
"""Above this many customers the summaries reach pandas through Parquet files (see :func:`_fetch_all`)."""


def _fetch_all(
    transactions: duckdb.DuckDBPyRelation, tables: _Tables, queries: list[str], customers: int
) -> list[pd.DataFrame]:
    """The per-customer frames, ordered as their queries say, with the working tables dropped.

    Up to :data:`FETCH_THROUGH_FILES` customers they are fetched straight through Arrow. Above it,
    DuckDB first writes each sorted result to a Parquet file in a private temporary folder (its sort
    spills within the memory limit), every working table is dropped, and only then are the files read
    into pandas: the frames never sit in memory next to DuckDB's customer table and sort buffers.
    """
    if customers <= FETCH_THROUGH_FILES:
        frames = [_fetch(_query(transactions, "tx", sql)) for sql in queries]
        tables.drop(transactions)
        return frames
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="clv_prepare_") as folder:
        paths = [Path(folder) / f"{k}.parquet" for k in range(len(queries))]
        (preserve,) = _query(transactions, "tx", "SELECT current_setting('preserve_insertion_order')").fetchall()[0]
        # The files must keep the ORDER BY: DuckDB's parallel writer keeps row order only when asked to.
        _query(transactions, "tx", "SET preserve_insertion_order = true")
        try:
            for sql, path in zip(queries, paths, strict=True):
                _query(transactions, "tx", f"COPY ({sql}) TO {_literal(str(path))} (FORMAT parquet)")
        finally:
            _query(transactions, "tx", f"SET preserve_insertion_order = {'true' if preserve else 'false'}")
        tables.drop(transactions)
        frames = []
        for path in paths:
            frames.append(pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True))
            # pyarrow's allocator keeps the file's decoding buffers for reuse unless told otherwise.
            pa.default_memory_pool().release_unused()
        return frames


def prepare(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
) -> PreparedData:
    """Clean, quarantine and summarise ``transactions`` for training: calibration, holdout and full history.

    Columns: customer_id, timestamp, amount (or quantity and unit_price; neither for an event feed),
    optionally order_id, and the other source columns under their private aliases; ``column_names``
    (:attr:`pipeline.engines.duckdb_source.Transactions.column_names`) names them as the source does. Without a
    ``timestamp_format``, a text timestamp column DuckDB cannot read gets a detected one.
    The input is scanned once into a table of rows per (reason, customer, order, day) in the
    relation's DuckDB connection (which spills to disk past its memory limit); the ledger, the purchase
    periods and one per-customer table come from it, and the working tables are dropped before returning.
    """
    tables = _Tables.new()
    try:
        scan = _scan(transactions, config, timestamp_format, column_names, source, tables.daily)
        calibration_end = config.calibration_end
        if calibration_end < scan.first_date or calibration_end >= scan.last_date:
            raise InputError(
                f"{source}: prepare.calibration_end {calibration_end} is outside the data "
                f"({scan.first_date} to {scan.last_date}); it must leave transactions on both sides"
            )
        unit_days = DAYS_PER_UNIT[config.time_unit]
        observation_end = scan.observation_end
        holdout_days = (
            _period_start(observation_end, config.period) - _period_start(calibration_end, config.period)
        ).days
        windows = _Windows(
            calibration_end, observation_end, calibration_end - dt.timedelta(days=holdout_days), config.period
        )
        _customers(transactions, scan, windows, tables, weekly=True)
        weekly = _query(transactions, "tx", _weekly_sql(tables.weekly, tables.customers)).df()
        tables.drop(transactions, tables.daily, tables.periods)
        # Two frames fetched one after the other: no third, wider frame to split in pandas.
        duration_holdout = holdout_days / unit_days
        money = scan.layout.has_amounts
        full, calibration = _fetch_all(
            transactions,
            tables,
            [
                _full_sql(tables.customers, windows, unit_days, money),
                _calibration_sql(tables.customers, windows, unit_days, money),
            ],
            _count(transactions, tables.customers),
        )
    finally:
        tables.drop(transactions)
    calibration["duration_holdout"] = duration_holdout
    if calibration.empty:
        raise InputError(f"{source}: no customer made a purchase on or before calibration_end {calibration_end}")
    return PreparedData(
        calibration=calibration,
        full=full,
        quarantine=_quarantine(transactions, scan),
        ledger=scan.ledger,
        weekly=weekly,
        calibration_end=calibration_end,
        observation_end=observation_end,
        duration_holdout=duration_holdout,
        first_date=scan.first_date,
        last_date=scan.last_date,
        has_amounts=money,
        timestamp_format=scan.timestamp_format,
    )


def prepare_as_of(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    as_of: dt.date,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
) -> AsOfData:
    """Clean, quarantine and summarise ``transactions`` up to ``as_of`` for scoring (no holdout).

    The same rules as :func:`prepare`; rows after ``as_of`` are quarantined as ``after_observation_end``.
    """
    config = config.model_copy(update={"observation_end": as_of})
    tables = _Tables.new()
    try:
        scan = _scan(transactions, config, timestamp_format, column_names, source, tables.daily)
        unit_days = DAYS_PER_UNIT[config.time_unit]
        windows = _Windows(as_of, as_of, as_of, config.period)
        _customers(transactions, scan, windows, tables, weekly=False)
        tables.drop(transactions, tables.daily, tables.periods)
        (customers,) = _fetch_all(
            transactions,
            tables,
            [_full_sql(tables.customers, windows, unit_days, scan.layout.has_amounts)],
            _count(transactions, tables.customers),
        )
    finally:
        tables.drop(transactions)
    return AsOfData(
        customers=customers,
        quarantine=_quarantine(transactions, scan),
        ledger=scan.ledger,
        as_of=as_of,
        has_amounts=scan.layout.has_amounts,
        timestamp_format=scan.timestamp_format,
    )
