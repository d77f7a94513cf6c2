"""Prepare stage on Spark: the same rules and the same numbers as :mod:`pipeline.engines.duckdb_prepare` (DuckDB).

Row classification (:mod:`pipeline.engines.spark_classify`, the rules rendered by
:mod:`pipeline.engines.sql`), the per-(reason, customer, order, return flag, day) aggregation, return
netting and the per-customer summaries (:mod:`pipeline.engines.spark_summary`) all run on the executors.
Timestamps with an offset (and TIMESTAMP columns) are cut into days in the session's time zone, which
is ``prepare.timezone``; naive ones are taken as wall time in it, as in DuckDB.

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
from pipeline.engines.prepared import (
    CUSTOMER_COLUMNS,
    HOLDOUT_COLUMNS,
    MONEY_COLUMNS,
    AsOfData,
    Ledger,
    PreparedData,
    check_calibration_end,
    reconciled_ledger,
    used_dates,
)
from pipeline.engines.rules import holdout_days
from pipeline.engines.source_columns import Layout, layout
from pipeline.engines.spark_classify import (
    NATIVE_TIMESTAMPS,
    classified_sql,
    detected_format,
    quarantine_sql,
    unreadable_timestamp,
)
from pipeline.engines.spark_classify import spark_pattern as spark_pattern  # the patterns' home before
from pipeline.engines.spark_session import session_zone
from pipeline.engines.spark_summary import (
    DEC,
    as_of_sql,
    daily_sql,
    orders_sql,
    returns_sql,
    summaries_sql,
    weekly_sql,
    with_views,
)
from pipeline.errors import InputError

__all__ = [
    "SparkPrepared",
    "SparkRows",
    "collect",
    "histories",
    "prepare",
    "prepare_as_of",
    "repeat_spend",
    "spark_pattern",
]

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SparkPrepared:
    """Output of :func:`prepare` on Spark: the summaries stay distributed (cached) DataFrames.

    ``calibration`` and ``full`` have the columns of :class:`pipeline.engines.prepared.PreparedData`'s frames;
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
    """False for an event feed: no spend columns (:data:`pipeline.engines.prepared.MONEY_COLUMNS`)."""
    timestamp_format: str | None = None
    """The strptime format text timestamps were read with (configured or detected); None: Spark's reading."""


@dataclass(frozen=True)
class SparkRows:
    """Rows that Spark writes itself: ``write_parquet`` makes a Parquet folder (one file per partition)."""

    frame: DataFrame

    def write_parquet(self, file_name: str) -> None:
        self.frame.write.mode("overwrite").parquet(file_name)


@dataclass(frozen=True)
class _Scan:
    """The input classified and scanned into the cached view ``daily``: rows per (reason, customer,
    order, return flag, day), with the ledger and the dates of the rows used."""

    classified: str
    timestamp_format: str | None
    ledger: Ledger
    first_date: dt.date
    last_date: dt.date
    observation_end: dt.date
    net: bool


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
    Days are cut in the session's time zone, which the Spark engine sets to ``prepare.timezone``
    (:func:`pipeline.engines.spark_session.session_zone`).
    """
    columns = dict(transactions.dtypes)
    rows = layout(list(columns), column_names, config, source)
    with _working(transactions, config.timezone) as work:
        scan = _scan(transactions, work, columns, rows, config, timestamp_format, source)
        check_calibration_end(config, scan.first_date, scan.last_date, source)
        table, weekly, customers = _summaries(work, config, scan, rows.has_order)
        quarantine = work.spark.sql(quarantine_sql(scan.classified, rows))
    unit_days = DAYS_PER_UNIT[config.time_unit]
    days = holdout_days(config.calibration_end, scan.observation_end, config.period)
    calibration, full, duration_holdout = _frames(table, rows, days / unit_days)
    if customers == 0 or calibration.isEmpty():
        raise InputError(f"{source}: no customer made a purchase on or before calibration_end {config.calibration_end}")
    weekly["week"] = pd.to_datetime(weekly["week"]).astype("datetime64[us]")
    weekly["repeat_purchases"] = weekly["repeat_purchases"].astype("int64")
    return SparkPrepared(
        calibration=calibration,
        full=full,
        quarantine=quarantine,
        ledger=scan.ledger,
        weekly=weekly,
        calibration_end=config.calibration_end,
        observation_end=scan.observation_end,
        duration_holdout=duration_holdout,
        first_date=scan.first_date,
        last_date=scan.last_date,
        has_amounts=rows.has_amounts,
        timestamp_format=scan.timestamp_format,
    )


@dataclass(frozen=True)
class _Work:
    """One run's scratch views (``tx``: the input, ``daily``, ``orders``, ``refunds``) and cached frames."""

    spark: SparkSession
    views: dict[str, str]
    cached: list[DataFrame]


@contextlib.contextmanager
def _working(transactions: DataFrame, zone: str) -> Iterator[_Work]:
    """The scratch views and cached frames of one run, in the session time zone ``zone``; dropped afterwards."""
    spark = transactions.sparkSession
    tag = uuid.uuid4().hex
    work = _Work(spark, {name: f"clv_{name}_{tag}" for name in ("tx", "daily", "orders", "refunds")}, [])
    transactions.createOrReplaceTempView(work.views["tx"])
    try:
        with session_zone(spark, zone):
            yield work
    finally:
        for view in work.views.values():
            spark.catalog.dropTempView(view)
        for frame in work.cached:
            frame.unpersist()


def _scan(
    transactions: DataFrame,
    work: _Work,
    columns: dict[str, str],
    rows: Layout,
    config: PrepareConfig,
    timestamp_format: str | None,
    source: str,
) -> _Scan:
    """Classify every row, cache the per-day table as view ``daily``, and check the ledger."""
    from pyspark import StorageLevel

    spark, views, given_format = work.spark, work.views, timestamp_format
    if timestamp_format is None and columns["timestamp"] not in NATIVE_TIMESTAMPS:
        timestamp_format = detected_format(spark, views["tx"], source)
    classified = classified_sql(views["tx"], columns, rows, config, timestamp_format)
    daily = spark.sql(daily_sql(classified)).persist(StorageLevel.MEMORY_AND_DISK)
    work.cached.append(daily)
    daily.createOrReplaceTempView(views["daily"])
    ledger, first_date, last_date, observation_end, net = _ledger(
        spark, transactions, views, config, source, classified, given_format
    )
    return _Scan(classified, timestamp_format, ledger, first_date, last_date, observation_end, net)


def _purchases(work: _Work, scan: _Scan, has_order: bool) -> None:
    """The views ``orders`` (purchases, one row per order with order ids) and ``refunds`` (returns to
    net; none without netting) of the rows used up to the observation end."""
    from pyspark import StorageLevel

    spark, views = work.spark, work.views
    valid = f"SELECT * FROM {views['daily']} WHERE reason IS NULL AND d <= DATE '{scan.observation_end}'"
    orders = spark.sql(orders_sql(valid, has_order))
    if has_order:
        orders = orders.persist(StorageLevel.MEMORY_AND_DISK)
        work.cached.append(orders)
    orders.createOrReplaceTempView(views["orders"])
    refunds = (
        f"SELECT cid, d, amount FROM ({valid}) WHERE is_return"
        if scan.net
        else f"SELECT CAST(NULL AS STRING) AS cid, CAST(NULL AS DATE) AS d, CAST(NULL AS {DEC}) AS amount WHERE false"
    )
    spark.sql(refunds).createOrReplaceTempView(views["refunds"])


def _summaries(work: _Work, config: PrepareConfig, scan: _Scan, has_order: bool) -> tuple[DataFrame, pd.DataFrame, int]:
    """The cached per-customer table (materialised before the scratch views go), the weekly tracking
    table, and the number of customers."""
    from pyspark import StorageLevel

    observation_end = scan.observation_end
    unit_days = DAYS_PER_UNIT[config.time_unit]
    days = holdout_days(config.calibration_end, observation_end, config.period)
    _purchases(work, scan, has_order)
    spark, views = work.spark, work.views
    summaries = spark.sql(
        with_views(summaries_sql(config, observation_end, has_order, unit_days, scan.net, days), views)
    )
    table = summaries.persist(StorageLevel.MEMORY_AND_DISK)
    weekly = spark.sql(with_views(weekly_sql(config.calibration_end, config.period), views)).toPandas()
    return table, weekly, table.count()


def prepare_as_of(
    transactions: DataFrame,
    config: PrepareConfig,
    as_of: dt.date,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
) -> AsOfData:
    """Clean, quarantine and summarise ``transactions`` up to ``as_of`` for scoring (no holdout): the
    full-history summary of :func:`prepare`, brought to the driver sorted by customer id."""
    config = config.model_copy(update={"observation_end": as_of})
    columns = dict(transactions.dtypes)
    rows = layout(list(columns), column_names, config, source)
    with _working(transactions, config.timezone) as work:
        scan = _scan(transactions, work, columns, rows, config, timestamp_format, source)
        _purchases(work, scan, rows.has_order)
        unit_days = DAYS_PER_UNIT[config.time_unit]
        sql = with_views(as_of_sql(config, as_of, rows.has_order, unit_days, scan.net), work.views)
        summary = [c for c in CUSTOMER_COLUMNS if rows.has_amounts or c not in MONEY_COLUMNS]
        customers = _to_pandas(work.spark.sql(sql).select("customer_id", *summary))
        quarantine = work.spark.sql(quarantine_sql(scan.classified, rows))
    return AsOfData(customers, SparkRows(quarantine), scan.ledger, as_of, rows.has_amounts, scan.timestamp_format)


def _frames(table: DataFrame, rows: Layout, duration_holdout: float) -> tuple[DataFrame, DataFrame, float]:
    """The calibration and full-history summaries from the per-customer table (no spend columns for an
    event feed), and the holdout duration."""
    from pyspark.sql import functions

    def money(column: str) -> bool:
        return rows.has_amounts or column not in MONEY_COLUMNS

    summary = [c for c in CUSTOMER_COLUMNS if money(c)]
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
    given_format: str | None,
) -> tuple[Ledger, dt.date, dt.date, dt.date, bool]:
    counts = spark.sql(
        # The days of used rows only: a quarantined row's may lie before the year 1, which Python's dates cannot hold.
        f"""SELECT coalesce(reason, '') AS reason, sum(n) AS n, min(d) FILTER (WHERE reason IS NULL) AS first,
                   max(d) FILTER (WHERE reason IS NULL) AS last, sum(n) FILTER (WHERE is_return) AS returns
            FROM {views["daily"]} GROUP BY coalesce(reason, '')"""
    ).collect()
    by_reason = {row["reason"]: (int(row["n"]), row["first"], row["last"], int(row["returns"] or 0)) for row in counts}
    first_date, last_date, observation_end, net = used_dates(
        by_reason, config, source, lambda: unreadable_timestamp(spark, classified), given_format
    )
    rows_in = transactions.count()
    netted, unmatched = (0, 0)
    if net:
        row = spark.sql(returns_sql(views["daily"], observation_end, config.period)).collect()[0]
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
        handle=prepared,
    )


def _to_pandas(summary: DataFrame) -> pd.DataFrame:
    frame = summary.orderBy("customer_id").toPandas()
    frame["first_purchase"] = pd.to_datetime(frame["first_purchase"]).astype("datetime64[us]")
    frame["customer_id"] = frame["customer_id"].astype("str")
    return frame
