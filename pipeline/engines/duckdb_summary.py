"""The DuckDB queries of the prepare stage: the one scan, the purchase periods, netting and the summaries.

The input is scanned once into a table of rows per (kind, customer, order, day); the
purchase periods and one table of customers (the full history, the calibration and the holdout side by
side, in one aggregation) come from it. Amounts are exact integers of 1/:data:`~pipeline.engines.rules.SCALE`
(BIGINT days, HUGEINT sums). The netting rule of :mod:`pipeline.engines.rules` is an ASOF join here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.engines.prepared import CUSTOMER_COLUMNS, HOLDOUT_COLUMNS, MONEY_COLUMNS
from pipeline.engines.rules import QUARANTINE_REASONS, SCALE, period_start
from pipeline.engines.sql import DUCKDB, period_sql

__all__ = [
    "BIGINT_MAX",
    "CALIBRATION",
    "FULL",
    "IN_CALIBRATION",
    "PURCHASE",
    "RETURN",
    "USED",
    "Windows",
    "counts_sql",
    "customers_sql",
    "daily_sql",
    "full_sql",
    "overflow_sql",
    "periods_sql",
    "returns_sql",
    "summaries_sql",
    "weekly_parts_sql",
    "weekly_sql",
]

BIGINT_MAX = 2**63 - 1


PURCHASE, RETURN = 0, 1
"""The daily table's ``kind`` of used purchase rows and of used return rows; a quarantined row's kind is 2 plus
its reason's place in :data:`~pipeline.engines.rules.QUARANTINE_REASONS` (:func:`counts_sql` names it)."""

USED = f"kind <= {RETURN}"
"""The daily table's used rows."""


def daily_sql(classified: str, has_order: bool) -> str:
    """The one scan of the input: rows grouped by kind (:data:`PURCHASE`, :data:`RETURN`, or a quarantine
    reason's), customer, order and day.

    The kind is one byte standing for the quarantine reason and the return flag together, and quarantined rows keep
    their customer and day (they are counted, never summarised; :func:`counts_sql` reads only the used rows' days).
    At 5M rows the table took 0.92-0.93 s against 0.98-1.03 s with an ENUM reason, a return flag and those columns
    nulled; the whole prepare showed no difference beyond the machine's spread (the two ENUM and flag keys had
    brought the peak at 16.7M rows per pass from 2.8 to 2.5 GB against a text reason). Amounts are rounded to 4
    decimals and summed as exact integers from here on: floating-point sums split across threads would depend on the
    thread schedule, and the same input must always give the same numbers. A day's sum is kept as a BIGINT (the
    per-customer sums over it run twice as fast as over HUGEINT); a day whose sum does not fit (over 922 trillion)
    is NULL here, and the scan stops on it with an InputError.
    """
    order = "order_key," if has_order else ""
    reasons = ", ".join(DUCKDB.string(r) for r in QUARANTINE_REASONS)
    quarantined = f"CAST(enum_code(CAST(reason AS ENUM({reasons}))) + {RETURN + 1} AS UTINYINT)"
    return f"""
        SELECT CASE WHEN reason IS NULL THEN CAST(is_return AS UTINYINT) ELSE {quarantined} END AS kind,
               cid, {order} CAST(ts AS DATE) AS d,
               TRY_CAST(sum(CASE WHEN reason IS NULL THEN CAST(round(value * {SCALE}) AS BIGINT) END) AS BIGINT)
                   AS amount,
               count(*) AS n
        FROM ({classified}) GROUP BY ALL
    """


@dataclass(frozen=True)
class Windows:
    """The dates that cut the history: calibration up to ``calibration_end``, then the holdout up to
    ``observation_end``; ``recent_start`` opens the window of the same length before calibration_end."""

    calibration_end: dt.date
    observation_end: dt.date
    recent_start: dt.date
    period: str


def _purchases(daily: str, w: Windows) -> str:
    """The used purchase rows of a daily table, up to observation_end."""
    return f"SELECT * FROM {daily} WHERE kind = {PURCHASE} AND d <= DATE '{w.observation_end}'"


def _windows(w: Windows) -> tuple[str, str, str]:
    """Conditions on a day ``d``: in the calibration, in the holdout, in the recent window."""
    cal = f"d <= DATE '{w.calibration_end}'"
    return cal, f"d > DATE '{w.calibration_end}'", f"d > DATE '{w.recent_start}' AND {cal}"


def periods_sql(daily: str, w: Windows, has_order: bool) -> tuple[str, bool]:
    """Purchase periods, one row per customer and period (day or week), split at calibration_end.

    Columns: ``cal_amount`` (orders on or before calibration_end, NULL without), ``hold_amount`` and
    ``hold_n`` (orders after it, NULL without), ``recent_amount`` (orders in the recent window) and
    ``recent_n`` (1 when the period has an order in the recent window, NULL without).
    Returns the SQL and whether it aggregates (and is worth materialising).
    """
    purchases = _purchases(daily, w)
    cal, hold, recent = _windows(w)
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
        f"""SELECT cid, {period_sql(DUCKDB, "d", w.period)} AS p,
                   sum(amount) FILTER ({cal}) AS cal_amount,
                   sum(amount) FILTER ({hold}) AS hold_amount,
                   sum(n) FILTER ({hold}) AS hold_n,
                   sum(amount) FILTER ({recent}) AS recent_amount,
                   max(CASE WHEN {recent} THEN 1 END) AS recent_n
            FROM ({orders}) GROUP BY ALL""",
        True,
    )


def netted_sql(daily: str, periods: str, w: Windows, net: bool) -> str:
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
            SELECT cid, d, {period_sql(DUCKDB, "d", w.period)} AS p, amount FROM {daily}
            WHERE kind = {RETURN} AND d <= DATE '{w.observation_end}'
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


def customers_sql(daily: str, periods: str, w: Windows, net: bool, by_day: bool = False) -> str:
    """One row per customer with a purchase: counts, first and last periods and exact sums, for the
    full history (``periods``, ``total``, ...), the calibration (``cal_``) and the holdout (``hold_``),
    all in one aggregation over the purchase periods. ``by_day``: the periods are the daily table's purchase
    rows themselves (see :func:`periods_sql`)."""
    if by_day and not net:
        return _daily_customers_sql(daily, w)
    return f"""
        WITH {netted_sql(daily, periods, w, net)},
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


def _daily_customers_sql(daily: str, w: Windows) -> str:
    """:func:`customers_sql` when each purchase period is one row of the daily table (periods of a day, no order
    ids) and nothing is netted: the same columns, aggregated straight from those rows with filters, a window
    per filter (a day lies in one window). What the others give is not aggregated again: the calibration's first
    amount is the full history's (the first day, when it is on or before calibration_end), and the holdout's
    periods and spend are the full history's less the calibration's (exact integers). At 5M rows: 0.28 s
    against 0.45 s for the general query."""
    cal, hold, recent = _windows(w)
    return f"""
        WITH customers AS (
            SELECT cid,
                   count(*) AS periods, min(d) AS first_p, max(d) AS last_p,
                   sum(amount) AS total, arg_min(amount, d) AS first_amount,
                   count(*) FILTER ({cal}) AS cal_periods, max(d) FILTER ({cal}) AS cal_last_p,
                   sum(amount) FILTER ({cal}) AS cal_total, sum(n) FILTER ({hold}) AS hold_n,
                   sum(amount) FILTER ({recent}) AS recent, count(*) FILTER ({recent}) AS recent_periods
            FROM ({_purchases(daily, w)}) GROUP BY cid
        )
        SELECT cid, periods, first_p, last_p, total, first_amount, cal_periods, cal_last_p, cal_total,
               CASE WHEN cal_periods > 0 THEN first_amount END AS cal_first_amount,
               periods - cal_periods AS hold_periods,
               CASE WHEN periods > cal_periods THEN total - coalesce(cal_total, 0) END AS hold_gross,
               hold_n, recent, recent_periods,
               NULL::HUGEINT AS hold_refunds, NULL::HUGEINT AS recent_refunds
        FROM customers
    """


def _selected(columns: list[tuple[str, str]], money: bool, prefix: str = "") -> str:
    """``expr AS "<prefix>name"`` for each column; without ``money`` (an event feed), not the spend columns."""
    return ", ".join(f'{e} AS "{prefix}{c}"' for e, c in columns if money or c not in MONEY_COLUMNS)


def _summary_columns(prefix: str, cutoff: dt.date, period: str, unit_days: float) -> list[tuple[str, str]]:
    """lifetimes' summary columns from a customers row (``prefix`` ``cal_`` for the calibration)."""
    count, last_p, total, first_amount = (f"{prefix}{c}" for c in ("periods", "last_p", "total", "first_amount"))
    # Repeat spend = all spend minus the first period's.
    exprs = [
        f"CAST({count} - 1 AS DOUBLE)",
        f"date_diff('day', first_p, {last_p}) / {unit_days}",
        f"date_diff('day', first_p, DATE '{period_start(cutoff, period)}') / {unit_days}",
        f"""CASE WHEN {count} > 1
                 THEN CAST({total} - {first_amount} AS DOUBLE) / ({SCALE} * ({count} - 1)) ELSE 0.0 END""",
        f"CAST({total} AS DOUBLE) / {SCALE}",
        "CAST(first_p AS TIMESTAMP)",
    ]
    return list(zip(exprs, CUSTOMER_COLUMNS, strict=True))


def full_sql(customers: str, w: Windows, unit_days: float, money: bool) -> str:
    """The full-history summary up to observation_end, one row per customer, ordered by customer id."""
    full = _selected(_summary_columns("", w.observation_end, w.period, unit_days), money)
    return f"SELECT cid AS customer_id, {full} FROM {customers} ORDER BY customer_id ASC"


def _calibration_columns(w: Windows, unit_days: float) -> list[tuple[str, str]]:
    """The calibration summary's columns and the holdout actuals, from a customers row."""
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
    return _summary_columns("cal_", w.calibration_end, w.period, unit_days) + holdout


FULL, CALIBRATION, IN_CALIBRATION = "full:", "calibration:", "in_calibration"
"""The column prefixes and the row flag of :func:`summaries_sql`."""


def summaries_sql(customers: str, w: Windows, unit_days: float, money: bool) -> str:
    """The full-history summary up to observation_end and the calibration summary with the holdout actuals, in
    one query sorted by customer id once: the full history's columns named ``full:<column>``, the calibration's
    ``calibration:<column>``, and ``in_calibration``, true for the customers who bought on or before
    calibration_end (the calibration summary's rows; its columns mean nothing in the others)."""
    full = _selected(_summary_columns("", w.observation_end, w.period, unit_days), money, FULL)
    calibration = _selected(_calibration_columns(w, unit_days), money, CALIBRATION)
    return f"""SELECT cid AS customer_id, cal_periods > 0 AS {IN_CALIBRATION}, {full}, {calibration}
               FROM {customers} ORDER BY customer_id ASC"""


def weekly_parts_sql(periods: str, customers: str, w: Windows) -> str:
    """Per calendar week (Monday start): the purchase periods of all customers (``n_all``), of the customers new
    in the holdout (``n_new``, whose periods all start after calibration_end), and the first periods of the
    calibration customers (``n_first``).

    Additive over customer buckets: the weekly table (:func:`weekly_sql`) sums the parts of every bucket, so
    that a bucket's customers need not be kept once it is summarised.
    """
    new_from = period_start(w.calibration_end + dt.timedelta(days=1), w.period)
    # Periods counted per day before per week, and the new customers looked up only for the holdout's periods:
    # 0.017 s at 5M rows against 0.053-0.061 s for one pass with the lookup in a FILTER (the same counts).
    return f"""
        SELECT {DUCKDB.week("p")} AS week, CAST(sum(n) AS BIGINT) AS n_all, 0 AS n_new, 0 AS n_first
        FROM (SELECT p, count(*) AS n FROM {periods} GROUP BY p) GROUP BY week
        UNION ALL
        SELECT {DUCKDB.week("p")} AS week, 0 AS n_all, count(*) AS n_new, 0 AS n_first FROM {periods}
        WHERE p >= DATE '{new_from}' AND cid IN (SELECT cid FROM {customers} WHERE cal_periods = 0) GROUP BY week
        UNION ALL
        SELECT {DUCKDB.week("first_p")} AS week, 0 AS n_all, 0 AS n_new, count(*) AS n_first FROM {customers}
        WHERE cal_periods > 0 GROUP BY week
    """


def weekly_sql(parts: str) -> str:
    """Repeat purchase periods per calendar week by the calibration customers: their periods in the week
    (all minus the new customers') minus their first periods, for the weeks with such periods."""
    return f"""
        SELECT week, CAST(sum(n_all) - sum(n_new) - sum(n_first) AS BIGINT) AS repeat_purchases
        FROM {parts} GROUP BY week HAVING sum(n_all) > sum(n_new) ORDER BY week
    """


def counts_sql(daily: str) -> str:
    """Per quarantine reason ('' for the used rows) in a daily table: rows, first and last day of the used rows
    (NULL for a reason: a quarantined row's day may lie outside Python's dates, which DuckDB hands over as text),
    returns, and the used days whose sum overflowed (NULL for a reason; :func:`overflow_sql` names a customer).
    Grouped by the one-byte kind first, then named. Whether a row is used or a return is the same for its whole
    kind, so the kind's aggregates are kept or dropped after grouping instead of being filtered row by row: at 50M
    rows of input, a bucket of 16.5M days took 0.03 s against 0.16-0.17 s with a FILTER on each aggregate."""
    names = "[" + ", ".join(DUCKDB.string(r) for r in QUARANTINE_REASONS) + "]"
    return f"""SELECT CASE WHEN {USED} THEN '' ELSE {names}[kind - {RETURN}] END AS reason,
                      sum(n) AS n, min(first) AS first, max(last) AS last, sum(returns) AS returns,
                      sum(overflow) AS overflow
               FROM (SELECT kind, sum(n) AS n, CASE WHEN {USED} THEN min(d) END AS first,
                            CASE WHEN {USED} THEN max(d) END AS last,
                            CASE WHEN kind = {RETURN} THEN sum(n) END AS returns,
                            CASE WHEN {USED} THEN count(*) - count(amount) END AS overflow
                     FROM {daily} GROUP BY kind)
               GROUP BY ALL"""


def overflow_sql(daily: str) -> str:
    """The first customer (by id) with a used day whose sum overflowed (NULL amount) in a daily table."""
    return f"SELECT min(cid) FROM {daily} WHERE {USED} AND amount IS NULL"


def returns_sql(daily: str, observation_end: dt.date, period: str) -> str:
    """Counts of used return rows, and of those with no purchase period at or before them."""
    trunc = period_sql(DUCKDB, "d", period)
    return f"""
        WITH valid AS (
            SELECT cid, {trunc} AS p, kind, n FROM {daily}
            WHERE {USED} AND d <= DATE '{observation_end}'
        ),
        purchases AS (SELECT DISTINCT cid, p FROM valid WHERE kind = {PURCHASE}),
        refunds AS (SELECT cid, p, n FROM valid WHERE kind = {RETURN})
        SELECT coalesce(sum(n) FILTER (WHERE purchases.p IS NOT NULL), 0) AS netted,
               coalesce(sum(n) FILTER (WHERE purchases.p IS NULL), 0) AS unmatched
        FROM refunds ASOF LEFT JOIN purchases ON refunds.cid = purchases.cid AND refunds.p >= purchases.p
    """
