"""The Spark SQL queries of the prepare stage: the same numbers as :mod:`pipeline.engines.duckdb_summary`.

- amounts are rounded to 1/SCALE and summed as exact integers (DECIMAL(38, 0)), and only turned into
  DOUBLE at the end, by the same divisions as the DuckDB path, so sums do not depend on partitioning
  and equal DuckDB's;
- DuckDB's ASOF join (the netting rule of :mod:`pipeline.engines.rules`: a return is netted against the
  customer's latest purchase period at or before it) becomes a window: purchase periods and returns of
  a customer in time order, each return taking the last purchase period seen before it.
"""

from __future__ import annotations

import datetime as dt

from pipeline.config import PrepareConfig
from pipeline.engines.prepared import CUSTOMER_COLUMNS
from pipeline.engines.rules import SCALE, period_start
from pipeline.engines.sql import SPARK, period_sql

__all__ = ["DEC", "as_of_sql", "daily_sql", "orders_sql", "returns_sql", "summaries_sql", "weekly_sql", "with_views"]

DEC = "DECIMAL(38, 0)"
"""Amounts are exact integers of 1/SCALE, as in the DuckDB prepare."""


def daily_sql(classified: str) -> str:
    return f"""
        SELECT reason, cid, order_key, is_return, CAST(ts AS DATE) AS d,
               CAST(sum(CAST(round(value * {SCALE}) AS {DEC})) AS {DEC}) AS amount, count(*) AS n
        FROM ({classified}) GROUP BY reason, cid, order_key, is_return, CAST(ts AS DATE)
    """


def _window_sql(
    name: str, cutoff: dt.date, period: str, unit_days: float, net_returns: bool, one_row_per_day: bool
) -> str:
    """CTE ``summary_<name>``: the per-customer summary of purchases (netted returns) up to ``cutoff``."""
    trunc = period_sql(SPARK, "d", period)
    purchases = (
        f"SELECT cid, d AS p, amount FROM __orders__ WHERE d <= DATE '{cutoff}'"
        if period == "day" and one_row_per_day
        else f"""SELECT cid, {trunc} AS p, CAST(sum(amount) AS {DEC}) AS amount
                 FROM __orders__ WHERE d <= DATE '{cutoff}' GROUP BY cid, {trunc}"""
    )
    zero = f"CAST(0 AS {DEC})"
    # DuckDB's ASOF JOIN as a window: a return takes the customer's last purchase period at or before it.
    netted = (
        f"""
        tagged_{name} AS (
            SELECT cid, p, CAST(NULL AS {DEC}) AS amount, 0 AS kind FROM purchases_{name}
            UNION ALL
            SELECT cid, {trunc} AS p, amount, 1 AS kind FROM __refunds__ WHERE d <= DATE '{cutoff}'
        ),
        matched_{name} AS (
            SELECT cid, kind, amount,
                   last(CASE WHEN kind = 0 THEN p END, true) OVER (
                       PARTITION BY cid ORDER BY p, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ) AS target
            FROM tagged_{name}
        ),
        refunds_{name} AS (
            SELECT cid, target AS p, CAST(sum(amount) AS {DEC}) AS amount
            FROM matched_{name} WHERE kind = 1 AND target IS NOT NULL GROUP BY cid, target
        ),
        periods_{name} AS (
            SELECT pu.cid, pu.p,
                   CAST(greatest(pu.amount + coalesce(r.amount, {zero}), {zero}) AS {DEC}) AS amount
            FROM purchases_{name} pu LEFT JOIN refunds_{name} r ON pu.cid = r.cid AND pu.p = r.p
        ),"""
        if net_returns
        else f"""
        periods_{name} AS (SELECT cid, p, amount FROM purchases_{name}),"""
    )
    cutoff_period = period_start(cutoff, period)
    days = f"{unit_days!r}D"
    return f"""
        purchases_{name} AS ({purchases}),{netted}
        summary_{name} AS (
            SELECT cid,
                   CAST(count(*) - 1 AS DOUBLE) AS frequency,
                   datediff(max(p), min(p)) / {days} AS recency,
                   datediff(DATE '{cutoff_period}', min(p)) / {days} AS `T`,
                   CASE WHEN count(*) > 1
                        THEN CAST(CAST(sum(amount) - min_by(amount, p) AS {DEC}) AS DOUBLE)
                             / ({SCALE} * (count(*) - 1))
                        ELSE 0.0D END AS monetary_value,
                   CAST(CAST(sum(amount) AS {DEC}) AS DOUBLE) / {SCALE} AS total_spend,
                   min(p) AS first_purchase
            FROM periods_{name} GROUP BY cid
        )"""


def orders_sql(valid: str, has_order: bool) -> str:
    if has_order:
        key = "coalesce(order_key, 'day ' || CAST(d AS STRING))"
        return f"""SELECT cid, min(d) AS d, CAST(sum(amount) AS {DEC}) AS amount, CAST(1 AS BIGINT) AS n
            FROM ({valid}) WHERE NOT is_return GROUP BY cid, {key}"""
    return f"SELECT cid, d, amount, n FROM ({valid}) WHERE NOT is_return"


def summaries_sql(
    config: PrepareConfig, observation_end: dt.date, has_order: bool, unit_days: float, net: bool, holdout_days: int
) -> str:
    """One row per customer: the full-history summary, the calibration summary prefixed ``cal_`` and the
    holdout actuals; reads the views ``orders`` and ``refunds``."""
    cal_end = config.calibration_end
    trunc = period_sql(SPARK, "d", config.period)
    full = ", ".join(f"f.`{c}`" for c in CUSTOMER_COLUMNS)
    cal = ", ".join(f"c.`{c}` AS `cal_{c}`" for c in CUSTOMER_COLUMNS)
    zero = f"CAST(0 AS {DEC})"
    ctes = [
        _window_sql("full", observation_end, config.period, unit_days, net, not has_order),
        _window_sql("cal", cal_end, config.period, unit_days, net, not has_order),
        f"""hold AS (
            SELECT cid,
                   CAST(count(DISTINCT {trunc}) AS DOUBLE) AS frequency_holdout,
                   CAST(CAST(sum(amount) AS {DEC}) AS DOUBLE) / ({SCALE} * sum(n)) AS monetary_value_holdout,
                   CAST(sum(amount) AS {DEC}) AS gross
            FROM __orders__ WHERE d > DATE '{cal_end}' GROUP BY cid
        )""",
        f"""hold_refunds AS (
            SELECT cid, CAST(sum(amount) AS {DEC}) AS amount FROM __refunds__ WHERE d > DATE '{cal_end}' GROUP BY cid
        )""",
        f"""recent AS (
            SELECT cid, CAST(greatest(CAST(sum(amount) AS {DEC}), {zero}) AS DOUBLE) / {SCALE} AS recent_spend
            FROM (SELECT cid, d, amount FROM __orders__ UNION ALL SELECT cid, d, amount FROM __refunds__)
            WHERE d > date_sub(DATE '{cal_end}', {holdout_days}) AND d <= DATE '{cal_end}' GROUP BY cid
        )""",
        f"""recent_n AS (
            SELECT cid, CAST(count(DISTINCT {trunc}) AS DOUBLE) AS recent_purchases FROM __orders__
            WHERE d > date_sub(DATE '{cal_end}', {holdout_days}) AND d <= DATE '{cal_end}' GROUP BY cid
        )""",
    ]
    return f"""
        WITH {", ".join(ctes)}
        SELECT f.cid AS customer_id, {full}, {cal},
               coalesce(h.frequency_holdout, 0.0D) AS frequency_holdout,
               coalesce(h.monetary_value_holdout, 0.0D) AS monetary_value_holdout,
               CAST(greatest(coalesce(h.gross, {zero}) + coalesce(hr.amount, {zero}), {zero}) AS DOUBLE) / {SCALE}
                   AS revenue_holdout,
               coalesce(rc.recent_spend, 0.0D) AS recent_spend,
               coalesce(rn.recent_purchases, 0.0D) AS recent_purchases
        FROM summary_full f
        LEFT JOIN summary_cal c ON f.cid = c.cid
        LEFT JOIN hold h ON f.cid = h.cid
        LEFT JOIN hold_refunds hr ON f.cid = hr.cid
        LEFT JOIN recent rc ON f.cid = rc.cid
        LEFT JOIN recent_n rn ON f.cid = rn.cid
    """


def weekly_sql(calibration_end: dt.date, period: str) -> str:
    """Repeat purchase periods per calendar week (Monday start) by the calibration customers."""
    return f"""
        WITH periods AS (SELECT DISTINCT cid, {period_sql(SPARK, "d", period)} AS p FROM __orders__),
        calibration_customers AS (
            SELECT cid FROM __orders__ GROUP BY cid HAVING min(d) <= DATE '{calibration_end}'
        ),
        firsts AS (
            SELECT periods.cid, min(p) AS first_p
            FROM periods JOIN calibration_customers ON periods.cid = calibration_customers.cid GROUP BY periods.cid
        )
        SELECT {SPARK.week("p")} AS week, count(*) FILTER (WHERE p > first_p) AS repeat_purchases
        FROM periods JOIN firsts ON periods.cid = firsts.cid GROUP BY {SPARK.week("p")} ORDER BY week
    """


def returns_sql(daily: str, observation_end: dt.date, period: str) -> str:
    """Counts of used return rows, and of those with no purchase period at or before them."""
    return f"""
        WITH valid AS (
            SELECT cid, {period_sql(SPARK, "d", period)} AS p, is_return, n FROM {daily}
            WHERE reason IS NULL AND d <= DATE '{observation_end}'
        ),
        tagged AS (
            SELECT cid, p, 0 AS kind, CAST(0 AS BIGINT) AS n
            FROM (SELECT DISTINCT cid, p FROM valid WHERE NOT is_return)
            UNION ALL
            SELECT cid, p, 1 AS kind, n FROM valid WHERE is_return
        ),
        matched AS (
            SELECT kind, n, max(1 - kind) OVER (
                PARTITION BY cid ORDER BY p, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS has_purchase
            FROM tagged
        )
        SELECT coalesce(sum(n) FILTER (WHERE kind = 1 AND has_purchase = 1), 0) AS netted,
               coalesce(sum(n) FILTER (WHERE kind = 1 AND has_purchase = 0), 0) AS unmatched
        FROM matched
    """


def with_views(sql: str, views: dict[str, str]) -> str:
    """Point the queries' ``__orders__`` and ``__refunds__`` at this run's temporary views."""
    return sql.replace("__orders__", views["orders"]).replace("__refunds__", views["refunds"])


def as_of_sql(config: PrepareConfig, as_of: dt.date, has_order: bool, unit_days: float, net: bool) -> str:
    """One row per customer: the full-history summary up to ``as_of``; reads the views ``orders`` and ``refunds``."""
    columns = ", ".join(f"`{c}`" for c in CUSTOMER_COLUMNS)
    full = _window_sql("full", as_of, config.period, unit_days, net, not has_order)
    return f"WITH {full} SELECT cid AS customer_id, {columns} FROM summary_full"
