"""Prepare a subscriptions table (customer, start, end or empty, plan, price) into the subscribers of
:mod:`pipeline.contractual.prepare`, in DuckDB SQL: the alternative to a billing feed
(``business.input: subscriptions``).

A row is one subscription: ``data.columns.timestamp`` is its start, ``data.columns.amount`` the price charged
every billing period, ``business.end_column`` its end (empty while it runs). Rows meet the billing feed's
quarantine rules, the start as the date and the price as the amount, then two of their own:
``invalid_end`` (an end that is not a date) and ``end_not_after_start``; a negative price is quarantined
too (``negative_price``: a subscription has no refunds), and an order id starting with ``prepare.cancel_prefix``
does not make a row a refund here. Last, ``overlapping_subscription``: a row that
starts before the end of an earlier row of the same customer that passed the other rules (earlier: by
start, then by end, an open row last; an open row never ends), whether that earlier row was used or
quarantined as overlapping itself; combined into one charge history, overlapping rows would count revenue
twice. A row starting on the day an earlier one ends does not overlap. Rows in = rows used + rows
quarantined, counted in subscriptions. A price of 0 (a free plan) follows ``prepare.zero_amount``: kept (the
default), the subscription is charged 0 every period like any other; ``quarantine``: ``zero_amount``. A used
subscription is charged on its start and on every anniversary before its end and not after the observation end,
which needs ``prepare.observation_end`` (or ``clv score --as-of``): the same charges as the billing feed of the
same subscribers, so the same subscribers and sBG fit follow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

import duckdb

from pipeline.config import Config
from pipeline.contractual.prepare import (
    Subscribers,
    as_of_config,
    classified_rows_sql,
    feed_columns,
    feed_layout,
    feed_timestamp_format,
    periods_between_sql,
    prepare_billing,
    quarantine_layout,
    subscribers_from_charges,
)
from pipeline.engines.duckdb_classify import timestamp_sql
from pipeline.engines.source_columns import Layout, private_alias
from pipeline.engines.sql import DUCKDB, text_timestamp
from pipeline.errors import ConfigError, InputError

__all__ = ["SUBSCRIPTION_REASONS", "prepare_contract_feed", "prepare_subscriptions"]

SUBSCRIPTION_REASONS = ("invalid_end", "end_not_after_start", "negative_price", "overlapping_subscription")
"""The quarantine reasons of a subscriptions table beyond the billing feed's (in the order a row meets them)."""


def _anniversary_sql(start: str, k: str, period: str) -> str:
    if period == "week":
        return f"CAST({start} + CAST(7 * {k} AS INTEGER) AS DATE)"
    months = k if period == "month" else f"12 * {k}"
    return f"CAST({start} + to_months(CAST({months} AS INTEGER)) AS DATE)"


def _classified_sql(
    config: Config, columns: dict[str, str], feed: Layout, end_column: str, timestamp_format: str | None
) -> str:
    """The rows classified as a billing feed's, then by the subscriptions' own rules. The end is read as the start
    is (a native timestamp as it is, text by the start's format, given or detected, or DuckDB's own reading)."""
    end = DUCKDB.identifier(end_column)
    raw_end = text_timestamp(DUCKDB, end)
    parsed = timestamp_sql(columns[end_column], timestamp_format, config.prepare.timezone, end)
    everything = ", ".join(DUCKDB.identifier(c) for c in columns)
    rows = classified_rows_sql(config, columns, feed, timestamp_format)
    open_end = "coalesce(CAST(end_ts AS DATE), DATE '9999-12-31')"
    earlier = (
        f"max(CASE WHEN reason IS NULL THEN {open_end} END) OVER (PARTITION BY cid ORDER BY CAST(ts AS DATE), "
        f"{open_end}, {everything} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    )
    own = f"""
        SELECT * EXCLUDE (reason),
               coalesce(reason, CASE
                   WHEN raw_end IS NOT NULL AND end_ts IS NULL THEN 'invalid_end'
                   WHEN CAST(end_ts AS DATE) <= CAST(ts AS DATE) THEN 'end_not_after_start'
                   WHEN raw_value < 0 THEN 'negative_price'
               END) AS reason
        FROM (SELECT *, {raw_end} AS raw_end, {parsed} AS end_ts FROM ({rows}))
    """
    return f"""
        SELECT * EXCLUDE (reason, earlier_end),
               coalesce(reason, CASE WHEN CAST(ts AS DATE) < earlier_end THEN 'overlapping_subscription' END) AS reason
        FROM (SELECT *, {earlier} AS earlier_end FROM ({own}))
    """


def _charges_sql(config: Config, observation_end: dt.date) -> str:
    """One charge per used subscription and billing period: the start, then every anniversary before the end
    and not after ``observation_end``."""
    period = config.business.billing_period
    last = f"least(CAST(end_ts AS DATE) - 1, DATE '{observation_end}')"
    paid = f"CASE WHEN end_ts IS NULL THEN DATE '{observation_end}' ELSE {last} END"
    return f"""
        SELECT cid, {_anniversary_sql("start_day", "k", period)} AS day, raw_value AS value
        FROM (
            SELECT cid, start_day, raw_value,
                   unnest(range(0, {periods_between_sql("start_day", paid, period)} + 1)) AS k
            FROM (SELECT *, CAST(ts AS DATE) AS start_day FROM classified WHERE reason IS NULL)
        )
    """


def prepare_subscriptions(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    config: Config,
    as_of: dt.date | None = None,
    source: str = "the subscriptions table",
    column_names: Mapping[str, str] | None = None,
) -> Subscribers:
    """The prepare stage of the contractual job on a subscriptions table (see the module docstring);
    ``column_names`` names its columns as :func:`pipeline.contractual.prepare.prepare_billing` says."""
    config = as_of_config(config, as_of)
    observation_end = config.prepare.observation_end
    if observation_end is None:
        raise ConfigError(
            "business.input: subscriptions needs prepare.observation_end (an open subscription has no last date)"
        )
    columns = feed_columns(relation)
    if "amount" not in columns:
        raise InputError("business.input: subscriptions needs the price column (data.columns.amount)")
    end = private_alias(config.business.end_column)
    if end not in columns:
        raise InputError(
            f"the subscriptions table has no end column '{config.business.end_column}' (business.end_column)"
        )
    feed = feed_layout(config, list(columns), column_names, source)
    timestamp_format = feed_timestamp_format(relation, config, columns, source)
    con.register("tx", relation)
    try:
        classified = _classified_sql(config, columns, feed, end, timestamp_format)
        con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {classified}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE charges AS {_charges_sql(config, observation_end)}")
        named = quarantine_layout(feed, list(columns), column_names)
        subscribers = subscribers_from_charges(con, config, named, as_of, source)
        return dataclasses.replace(subscribers, timestamp_format=timestamp_format)
    finally:
        con.unregister("tx")


def prepare_contract_feed(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    config: Config,
    as_of: dt.date | None = None,
    source: str = "the feed",
    column_names: Mapping[str, str] | None = None,
) -> Subscribers:
    """The contractual prepare of ``business.input``: a billing feed or a subscriptions table. ``source`` names
    the feed in its errors, ``column_names`` (the opened source's :attr:`pipeline.engines.Source.column_names`)
    its columns: ``prepare.duplicate_key`` names source columns, and the quarantine carries the source's names
    (:func:`pipeline.contractual.prepare.feed_layout`, :func:`~pipeline.contractual.prepare.quarantine_layout`)."""
    if config.business.input == "subscriptions":
        return prepare_subscriptions(con, relation, config, as_of, source, column_names)
    return prepare_billing(con, relation, config, as_of, source, column_names)
