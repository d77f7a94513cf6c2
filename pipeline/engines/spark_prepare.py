"""Prepare stage on Spark: the same rules and the same numbers as :mod:`pipeline.engines.duckdb_prepare` (DuckDB).

Row classification (quarantine reasons, duplicates, returns, time zones), the per-(reason, customer,
order, return flag, day) aggregation, return netting and the per-customer summaries all run on the
executors, in Spark SQL that mirrors the DuckDB queries line by line:

- amounts are rounded to 1/10,000 and summed as exact integers (DECIMAL(38, 0)), and only turned into
  DOUBLE at the end, by the same divisions as the DuckDB path,
  so sums do not depend on partitioning and equal DuckDB's;
- DuckDB's ASOF join (a return is netted against the customer's latest purchase period at or before
  it) becomes a window: purchase periods and returns of a customer in time order, each return taking
  the last purchase period seen before it;
- Spark's session time zone is set to ``prepare.timezone`` while the stage runs, so timestamps with
  an offset (and TIMESTAMP columns) are cut into days in that zone; naive ones are taken as wall time
  in it, as in DuckDB.

What comes back to the driver is small: the ledger counts, the weekly tracking table, and, through
:func:`histories` and :func:`repeat_spend`, the unique (frequency, recency, T) rows with their counts
and the repeat customers' (frequency, monetary_value) that the fit needs. :func:`collect` brings the
per-customer summaries to the driver for validation, the report and the business views.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from models.clv import DAYS_PER_UNIT
from pipeline.config import PrepareConfig
from pipeline.engines.duckdb_prepare import (
    HOLDOUT_COLUMNS,
    MONEY_COLUMNS,
    SCALE,
    SUMMARY_COLUMNS,
    Ledger,
    PreparedData,
    _period_start,
    reconciled_ledger,
    used_dates,
)
from pipeline.engines.source_columns import Layout, layout
from pipeline.engines.spark_classify import (
    NATIVE_TIMESTAMPS,
    classified_sql,
    detected_format,
    quarantine_sql,
    unreadable_timestamp,
)
from pipeline.engines.spark_classify import spark_pattern as spark_pattern  # the patterns' home before
from pipeline.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_DEC = "DECIMAL(38, 0)"
"""Amounts are exact integers of 1/SCALE, as in the DuckDB prepare."""


def _daily_sql(classified: str) -> str:
    return f"""
        SELECT reason, cid, order_key, is_return, CAST(ts AS DATE) AS d,
               CAST(sum(CAST(round(value * {SCALE}) AS {_DEC})) AS {_DEC}) AS amount, count(*) AS n
        FROM ({classified}) GROUP BY reason, cid, order_key, is_return, CAST(ts AS DATE)
    """


def _trunc(period: str, column: str = "d") -> str:
    return column if period == "day" else f"trunc({column}, 'week')"


def _window_sql(
    name: str, cutoff: dt.date, period: str, unit_days: float, net_returns: bool, one_row_per_day: bool
) -> str:
    """CTE ``summary_<name>``: the per-customer summary of purchases (netted returns) up to ``cutoff``."""
    trunc = _trunc(period)
    purchases = (
        f"SELECT cid, d AS p, amount FROM __orders__ WHERE d <= DATE '{cutoff}'"
        if period == "day" and one_row_per_day
        else f"""SELECT cid, {trunc} AS p, CAST(sum(amount) AS {_DEC}) AS amount
                 FROM __orders__ WHERE d <= DATE '{cutoff}' GROUP BY cid, {trunc}"""
    )
    zero = f"CAST(0 AS {_DEC})"
    # DuckDB's ASOF JOIN as a window: a return takes the customer's last purchase period at or before it.
    netted = (
        f"""
        tagged_{name} AS (
            SELECT cid, p, CAST(NULL AS {_DEC}) AS amount, 0 AS kind FROM purchases_{name}
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
            SELECT cid, target AS p, CAST(sum(amount) AS {_DEC}) AS amount
            FROM matched_{name} WHERE kind = 1 AND target IS NOT NULL GROUP BY cid, target
        ),
        periods_{name} AS (
            SELECT pu.cid, pu.p,
                   CAST(greatest(pu.amount + coalesce(r.amount, {zero}), {zero}) AS {_DEC}) AS amount
            FROM purchases_{name} pu LEFT JOIN refunds_{name} r ON pu.cid = r.cid AND pu.p = r.p
        ),"""
        if net_returns
        else f"""
        periods_{name} AS (SELECT cid, p, amount FROM purchases_{name}),"""
    )
    cutoff_period = _period_start(cutoff, period)
    days = f"{unit_days!r}D"
    return f"""
        purchases_{name} AS ({purchases}),{netted}
        summary_{name} AS (
            SELECT cid,
                   CAST(count(*) - 1 AS DOUBLE) AS frequency,
                   datediff(max(p), min(p)) / {days} AS recency,
                   datediff(DATE '{cutoff_period}', min(p)) / {days} AS `T`,
                   CASE WHEN count(*) > 1
                        THEN CAST(CAST(sum(amount) - min_by(amount, p) AS {_DEC}) AS DOUBLE)
                             / ({SCALE} * (count(*) - 1))
                        ELSE 0.0D END AS monetary_value,
                   CAST(CAST(sum(amount) AS {_DEC}) AS DOUBLE) / {SCALE} AS total_spend,
                   min(p) AS first_purchase
            FROM periods_{name} GROUP BY cid
        )"""


def _orders_sql(valid: str, has_order: bool) -> str:
    if has_order:
        key = "coalesce(order_key, 'day ' || CAST(d AS STRING))"
        return f"""SELECT cid, min(d) AS d, CAST(sum(amount) AS {_DEC}) AS amount, CAST(1 AS BIGINT) AS n
            FROM ({valid}) WHERE NOT is_return GROUP BY cid, {key}"""
    return f"SELECT cid, d, amount, n FROM ({valid}) WHERE NOT is_return"


def _summaries_sql(
    config: PrepareConfig, observation_end: dt.date, has_order: bool, unit_days: float, net: bool, holdout_days: int
) -> str:
    """One row per customer: the full-history summary, the calibration summary prefixed ``cal_`` and the
    holdout actuals; reads the views ``orders`` and ``refunds``."""
    cal_end = config.calibration_end
    full = ", ".join(f"f.`{c}`" for c in SUMMARY_COLUMNS)
    cal = ", ".join(f"c.`{c}` AS `cal_{c}`" for c in SUMMARY_COLUMNS)
    zero = f"CAST(0 AS {_DEC})"
    ctes = [
        _window_sql("full", observation_end, config.period, unit_days, net, not has_order),
        _window_sql("cal", cal_end, config.period, unit_days, net, not has_order),
        f"""hold AS (
            SELECT cid,
                   CAST(count(DISTINCT {_trunc(config.period)}) AS DOUBLE) AS frequency_holdout,
                   CAST(CAST(sum(amount) AS {_DEC}) AS DOUBLE) / ({SCALE} * sum(n)) AS monetary_value_holdout,
                   CAST(sum(amount) AS {_DEC}) AS gross
            FROM __orders__ WHERE d > DATE '{cal_end}' GROUP BY cid
        )""",
        f"""hold_refunds AS (
            SELECT cid, CAST(sum(amount) AS {_DEC}) AS amount FROM __refunds__ WHERE d > DATE '{cal_end}' GROUP BY cid
        )""",
        f"""recent AS (
            SELECT cid, CAST(greatest(CAST(sum(amount) AS {_DEC}), {zero}) AS DOUBLE) / {SCALE} AS recent_spend
            FROM (SELECT cid, d, amount FROM __orders__ UNION ALL SELECT cid, d, amount FROM __refunds__)
            WHERE d > date_sub(DATE '{cal_end}', {holdout_days}) AND d <= DATE '{cal_end}' GROUP BY cid
        )""",
        f"""recent_n AS (
            SELECT cid, CAST(count(DISTINCT {_trunc(config.period)}) AS DOUBLE) AS recent_purchases FROM __orders__
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


def _weekly_sql(calibration_end: dt.date, period: str) -> str:
    """Repeat purchase periods per calendar week (Monday start) by the calibration customers."""
    return f"""
        WITH periods AS (SELECT DISTINCT cid, {_trunc(period)} AS p FROM __orders__),
        calibration_customers AS (
            SELECT cid FROM __orders__ GROUP BY cid HAVING min(d) <= DATE '{calibration_end}'
        ),
        firsts AS (
            SELECT periods.cid, min(p) AS first_p
            FROM periods JOIN calibration_customers ON periods.cid = calibration_customers.cid GROUP BY periods.cid
        )
        SELECT trunc(p, 'week') AS week, count(*) FILTER (WHERE p > first_p) AS repeat_purchases
        FROM periods JOIN firsts ON periods.cid = firsts.cid GROUP BY trunc(p, 'week') ORDER BY week
    """


def _returns_sql(daily: str, observation_end: dt.date, period: str) -> str:
    """Counts of used return rows, and of those with no purchase period at or before them."""
    return f"""
        WITH valid AS (
            SELECT cid, {_trunc(period)} AS p, is_return, n FROM {daily}
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


def _views(sql: str, views: dict[str, str]) -> str:
    """Point the queries' ``__orders__`` and ``__refunds__`` at this run's temporary views."""
    return sql.replace("__orders__", views["orders"]).replace("__refunds__", views["refunds"])


@dataclass(frozen=True)
class SparkPrepared:
    """Output of :func:`prepare` on Spark: the summaries stay distributed (cached) DataFrames.

    ``calibration`` and ``full`` have the columns of :class:`pipeline.engines.duckdb_prepare.PreparedData`'s frames;
    ``quarantine`` holds the rejected rows (every source column as text) with their ``reason``.
    """

    calibration: DataFrame
    full: DataFrame
    quarantine: DataFrame
    ledger: Ledger
    weekly: pd.DataFrame
    calibration_end: dt.date
    observation_end: dt.date
    duration_holdout: float
    first_date: dt.date
    last_date: dt.date
    has_amounts: bool = True
    """False for an event feed: no spend columns (:data:`pipeline.engines.duckdb_prepare.MONEY_COLUMNS`)."""
    timestamp_format: str | None = None
    """The strptime format text timestamps were read with (configured or detected); None: Spark's reading."""


@dataclass(frozen=True)
class SparkRows:
    """Rows that Spark writes itself: ``write_parquet`` makes a Parquet folder (one file per partition)."""

    frame: DataFrame

    def write_parquet(self, file_name: str) -> None:
        self.frame.write.mode("overwrite").parquet(file_name)


@contextlib.contextmanager
def _session_zone(spark: SparkSession, zone: str) -> Iterator[None]:
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        yield
    finally:
        if previous is not None:
            spark.conf.set("spark.sql.session.timeZone", previous)


def prepare(
    transactions: DataFrame,
    config: PrepareConfig,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
) -> SparkPrepared:
    """Clean, quarantine and summarise ``transactions`` on Spark: the numbers of the DuckDB prepare.

    Columns: customer_id, timestamp, amount (or quantity and unit_price; neither for an event feed),
    optionally order_id, and the other source columns under their private aliases, named by
    ``column_names`` (:attr:`pipeline.engines.spark_session.SparkTransactions.column_names`).
    The per-customer summary is cached on the executors; the ledger is checked on the driver.
    """
    from pyspark import StorageLevel

    spark = transactions.sparkSession
    tag = uuid.uuid4().hex
    views = {name: f"clv_{name}_{tag}" for name in ("tx", "daily", "orders", "refunds")}
    columns = dict(transactions.dtypes)
    rows = layout(list(columns), column_names, config, source)
    has_order = rows.has_order
    transactions.createOrReplaceTempView(views["tx"])
    daily = None
    try:
        with _session_zone(spark, config.timezone):
            if timestamp_format is None and columns["timestamp"] not in NATIVE_TIMESTAMPS:
                timestamp_format = detected_format(spark, views["tx"], source)
            classified = classified_sql(views["tx"], columns, rows, config, timestamp_format)
            daily = spark.sql(_daily_sql(classified)).persist(StorageLevel.MEMORY_AND_DISK)
            daily.createOrReplaceTempView(views["daily"])
            ledger, first_date, last_date, observation_end, net = _ledger(
                spark, transactions, views, config, source, classified
            )
            calibration_end = config.calibration_end
            if calibration_end < first_date or calibration_end >= last_date:
                raise InputError(
                    f"{source}: prepare.calibration_end {calibration_end} is outside the data "
                    f"({first_date} to {last_date}); it must leave transactions on both sides"
                )
            unit_days = DAYS_PER_UNIT[config.time_unit]
            holdout_days = (
                _period_start(observation_end, config.period) - _period_start(calibration_end, config.period)
            ).days
            valid = f"SELECT * FROM {views['daily']} WHERE reason IS NULL AND d <= DATE '{observation_end}'"
            orders = spark.sql(_orders_sql(valid, has_order))
            if has_order:
                orders = orders.persist(StorageLevel.MEMORY_AND_DISK)
            orders.createOrReplaceTempView(views["orders"])
            refunds = (
                f"SELECT cid, d, amount FROM ({valid}) WHERE is_return"
                if net
                else f"SELECT CAST(NULL AS STRING) AS cid, CAST(NULL AS DATE) AS d, CAST(NULL AS {_DEC}) AS amount "
                "WHERE false"
            )
            spark.sql(refunds).createOrReplaceTempView(views["refunds"])
            summaries = spark.sql(
                _views(_summaries_sql(config, observation_end, has_order, unit_days, net, holdout_days), views)
            )
            table = summaries.persist(StorageLevel.MEMORY_AND_DISK)
            weekly = spark.sql(_views(_weekly_sql(calibration_end, config.period), views)).toPandas()
            customers = table.count()  # materialises the cached summaries before the scratch tables go
            quarantine = spark.sql(quarantine_sql(classified, rows))
            if has_order:
                orders.unpersist()
    finally:
        for view in views.values():
            spark.catalog.dropTempView(view)
        if daily is not None:
            daily.unpersist()
    calibration, full, duration_holdout = _frames(table, rows, holdout_days / unit_days)
    if customers == 0 or calibration.isEmpty():
        raise InputError(f"{source}: no customer made a purchase on or before calibration_end {calibration_end}")
    weekly["week"] = pd.to_datetime(weekly["week"]).astype("datetime64[us]")
    weekly["repeat_purchases"] = weekly["repeat_purchases"].astype("int64")
    return SparkPrepared(
        calibration=calibration,
        full=full,
        quarantine=quarantine,
        ledger=ledger,
        weekly=weekly,
        calibration_end=calibration_end,
        observation_end=observation_end,
        duration_holdout=duration_holdout,
        first_date=first_date,
        last_date=last_date,
        has_amounts=rows.has_amounts,
        timestamp_format=timestamp_format,
    )


def _frames(table: DataFrame, rows: Layout, duration_holdout: float) -> tuple[DataFrame, DataFrame, float]:
    """The calibration and full-history summaries from the per-customer table (no spend columns for an
    event feed), and the holdout duration."""
    from pyspark.sql import functions

    def money(column: str) -> bool:
        return rows.has_amounts or column not in MONEY_COLUMNS

    summary = [c for c in SUMMARY_COLUMNS if money(c)]
    full = table.select("customer_id", *summary)
    calibration = table.where(functions.col("cal_frequency").isNotNull()).select(
        "customer_id",
        *[functions.col(f"cal_{c}").alias(c) for c in summary],
        *[c for c in HOLDOUT_COLUMNS if money(c)],
        functions.lit(duration_holdout).alias("duration_holdout"),
    )
    return calibration, full, duration_holdout


def _ledger(
    spark: SparkSession,
    transactions: DataFrame,
    views: dict[str, str],
    config: PrepareConfig,
    source: str,
    classified: str,
) -> tuple[Ledger, dt.date, dt.date, dt.date, bool]:
    counts = spark.sql(
        f"""SELECT coalesce(reason, '') AS reason, sum(n) AS n, min(d) AS first, max(d) AS last,
                   sum(n) FILTER (WHERE is_return) AS returns
            FROM {views["daily"]} GROUP BY coalesce(reason, '')"""
    ).collect()
    by_reason = {row["reason"]: (int(row["n"]), row["first"], row["last"], int(row["returns"] or 0)) for row in counts}
    first_date, last_date, observation_end, net = used_dates(
        by_reason, config, source, lambda: unreadable_timestamp(spark, classified)
    )
    rows_in = transactions.count()
    netted, unmatched = (0, 0)
    if net:
        row = spark.sql(_returns_sql(views["daily"], observation_end, config.period)).collect()[0]
        netted, unmatched = int(row["netted"]), int(row["unmatched"])
    ledger = reconciled_ledger(rows_in, by_reason, netted, unmatched, source)
    return ledger, first_date, last_date, observation_end, net


def histories(summary: DataFrame) -> pd.DataFrame:
    """The unique (frequency, recency, T) rows with the number of customers sharing each (``weight``),
    sorted: all the BG/NBD fit needs, however many customers there are."""
    rows = summary.groupBy("frequency", "recency", "T").count().orderBy("frequency", "recency", "T").toPandas()
    return rows.rename(columns={"count": "weight"}).astype({"weight": "int64"})


def repeat_spend(summary: DataFrame, max_customers: int) -> tuple[pd.DataFrame, int]:
    """The repeat customers' (frequency, monetary_value) in customer id order, for Gamma-Gamma, and how
    many repeat customers there are.

    With more than ``max_customers`` of them, the ``max_customers`` with the smallest
    ``xxhash64(customer_id)`` are taken: a fixed sample that does not depend on the partitioning.
    """
    from pyspark.sql import functions

    repeat = summary.where((functions.col("frequency") > 0) & (functions.col("monetary_value") > 0))
    total = repeat.count()
    if total > max_customers:
        repeat = repeat.orderBy(functions.xxhash64("customer_id"), "customer_id").limit(max_customers)
    rows = repeat.select("customer_id", "frequency", "monetary_value").orderBy("customer_id").toPandas()
    return rows.loc[:, ["frequency", "monetary_value"]], total


def collect(prepared: SparkPrepared) -> PreparedData:
    """The per-customer summaries on the driver, as the DuckDB prepare returns them (for validation,
    the report and the business views): a few hundred bytes per customer."""
    frames = [_to_pandas(prepared.calibration), _to_pandas(prepared.full)]
    return PreparedData(
        calibration=frames[0],
        full=frames[1],
        quarantine=SparkRows(prepared.quarantine),
        ledger=prepared.ledger,
        weekly=prepared.weekly,
        calibration_end=prepared.calibration_end,
        observation_end=prepared.observation_end,
        duration_holdout=prepared.duration_holdout,
        first_date=prepared.first_date,
        last_date=prepared.last_date,
        has_amounts=prepared.has_amounts,
        timestamp_format=prepared.timestamp_format,
    )


def _to_pandas(summary: DataFrame) -> pd.DataFrame:
    frame = summary.orderBy("customer_id").toPandas()
    frame["first_purchase"] = pd.to_datetime(frame["first_purchase"]).astype("datetime64[us]")
    frame["customer_id"] = frame["customer_id"].astype("str")
    return frame
