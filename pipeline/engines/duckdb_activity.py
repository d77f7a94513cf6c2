"""The challenger's activity table on DuckDB: purchases and revenue per customer and day, up to a date.

The same cleaning as prepare (:mod:`pipeline.engines.duckdb_classify`: quarantined rows left out, the
timezone applied, invoice lines of one order counted once), then one row per customer and day with a
purchase: ``customer_id``, ``date``, ``purchases`` (1, a day's purchases merge into one as in the BTYD
summary) and ``revenue`` (the day's spend). Returns are not netted here (the challenger's features read
purchases only); rows after ``up_to`` are never read into the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb
import pandas as pd

from pipeline.config import PrepareConfig
from pipeline.engines.duckdb_classify import check_collation, classified_sql, detected_format, is_native_timestamp
from pipeline.engines.duckdb_summary import PURCHASE, daily_sql
from pipeline.engines.rules import SCALE
from pipeline.engines.source_columns import layout as source_layout
from pipeline.errors import InputError

__all__ = ["activity", "activity_sql"]


def activity_sql(classified: str, has_order: bool, up_to: dt.date) -> str:
    """One row per customer and day with a purchase on or before ``up_to``, sorted by customer and day.

    With order ids, an order is dated by its first line, as the customer summary dates it
    (:func:`pipeline.engines.duckdb_summary.periods_sql`): an order whose lines span midnight is one purchase
    on its first day, for the challenger as for BTYD."""
    purchases = f"""SELECT cid, d, amount FROM ({daily_sql(classified, has_order)})
                    WHERE kind = {PURCHASE} AND d <= DATE '{up_to}'"""
    if has_order:
        purchases = f"""SELECT cid, min(d) AS d, sum(amount) AS amount FROM (
                            SELECT * FROM ({daily_sql(classified, has_order)})
                            WHERE kind = {PURCHASE} AND d <= DATE '{up_to}')
                        GROUP BY cid, coalesce(order_key, 'day ' || CAST(d AS VARCHAR))"""
    return f"""
        SELECT cid AS customer_id, d AS "date", CAST(1 AS BIGINT) AS purchases,
               CAST(sum(amount) AS DOUBLE) / {SCALE} AS revenue
        FROM ({purchases})
        GROUP BY cid, d ORDER BY customer_id, "date"
    """


def activity(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    up_to: dt.date,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The activity table of ``transactions`` up to ``up_to`` (InputError for a feed without amounts)."""
    check_collation(transactions)
    columns = {name: str(dtype) for name, dtype in zip(transactions.columns, transactions.types, strict=True)}
    layout = source_layout(list(columns), column_names, config, source)
    if not layout.has_amounts:
        raise InputError(f"{source}: the challenger needs amounts, and this feed has none")
    if timestamp_format is None and not is_native_timestamp(columns["timestamp"]):
        timestamp_format = detected_format(transactions, config.timezone, source)
    classified = classified_sql(columns, layout, config, timestamp_format)
    result = transactions.query("tx", activity_sql(classified, layout.has_order, up_to))
    assert result is not None  # a SELECT always yields a relation
    frame: pd.DataFrame = result.df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame
