"""Prepare a discrete-opportunity feed into BG/BB histories, in DuckDB SQL.

The feed has the non-contractual job's three shapes (:class:`pipeline.engines.source_columns.Layout`): an amount
per row, quantity x unit price per line (the line's amount is their product), or no money at all (an event
feed: customer and date; every used row is a purchase and the histories have no ``monetary_value``). Rows are
classified by the non-contractual job's own SQL (:func:`pipeline.contractual.prepare.classified_rows_sql`, over
:func:`pipeline.engines.sql.classified_sql`): the same quarantine rules, ids, duplicates and returns, and the
same reading of timestamps (a text column's format detected as that job detects it).

The opportunities are the calendar periods of ``business.billing_period`` (a week, a month or a year). Per
customer, as of a date D, counting only the opportunities that had ended by D:

- ``first_period``: the period of the first purchase (the customer's "cohort"; not an opportunity);
- ``n_periods`` (n): opportunities after the first period that had ended by D;
- ``frequency`` (x): those of them with a purchase; ``recency`` (t_x): the last of them (0 without one);
- ``recent`` (calibration only): purchases in its last n* opportunities, n* the holdout's length;
- ``monetary_value`` (a feed with amounts only): the mean spend of those x opportunities (the amounts of one
  opportunity added up; 0 without one), the Gamma-Gamma input, as the non-contractual job's mean spend per
  repeat period. As there (:mod:`pipeline.engines.rules`), amounts are rounded to 1/``SCALE`` and added up as
  exact integers, so the same feed gives the same bits whatever the order DuckDB's threads add them in.

A purchase is a used row that is not a return: under ``prepare.zero_amount: keep`` (the default) a purchase of
0 is a purchase like any other (the opportunity counts in ``frequency``, its spend 0 in ``monetary_value``, its
date in the observation end), as in the non-contractual job; ``quarantine`` quarantines it (``zero_amount``).

Returns (negative amounts or quantities, and lines whose order id starts with ``prepare.cancel_prefix``) follow
``prepare.returns`` as in the non-contractual job (:mod:`pipeline.engines.rules`): ``drop`` quarantines them
(``return_dropped``); ``net`` subtracts each from the customer's latest opportunity with a purchase at or
before it, counting only the returns up to D, and an opportunity's spend never goes below 0 (it still counts as
a purchase). A return with no purchase at or before it has no effect. Returns never count as purchases. An
event feed has no amount rules and no returns.

A customer whose first purchase is in the period still running at D is not counted yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import duckdb
import pandas as pd

from pipeline.config import Config
from pipeline.contractual.prepare import (
    BillingLedger,
    as_of_config,
    classified_rows_sql,
    feed_columns,
    feed_layout,
    feed_timestamp_format,
    periods_between_sql,
    quarantine_layout,
    quarantine_rows_sql,
    unreadable_timestamp,
)
from pipeline.engines.prepared import no_usable_reasons, no_usable_rows
from pipeline.engines.rules import SCALE
from pipeline.errors import InputError

__all__ = ["HISTORY_COLUMNS", "Histories", "prepare_opportunities"]

HISTORY_COLUMNS = ("customer_id", "first_period", "frequency", "recency", "n_periods", "recent", "monetary_value")
"""The histories' columns; an event feed's have no ``monetary_value`` (it has no money)."""


@dataclass(frozen=True)
class Histories:
    """Histories as of the calibration end and the observation end (both sorted by id), the ledger and the
    quarantined rows (every source column as text under its source name, then ``reason``; sorted as the
    non-contractual job's quarantine file: :func:`pipeline.contractual.prepare.quarantine_rows_sql`).
    ``has_amounts``: False for an event feed (the frames then have no ``monetary_value``)."""

    calibration: pd.DataFrame
    full: pd.DataFrame
    ledger: BillingLedger
    quarantine: pd.DataFrame
    calibration_end: dt.date
    observation_end: dt.date
    has_amounts: bool = True
    timestamp_format: str | None = None
    """The strptime format the text timestamps were read with (configured or detected); None: DuckDB's own."""


def _as_of(unit: str, period: str, as_of: dt.date, window: int = 0) -> str:
    ended = f"CAST(date_trunc('{unit}', DATE '{as_of}' + INTERVAL 1 DAY) AS DATE)"
    index = periods_between_sql("first_period", "period", period)
    repeat = "CASE WHEN idx > 0 AND idx <= n THEN spend END"  # an opportunity's spend, in 1/SCALE
    return f"""
        WITH lines AS (
            SELECT cid, CAST(date_trunc('{unit}', day) AS DATE) AS period, amount, is_return
            FROM buys WHERE day <= DATE '{as_of}'
        ),
        bought AS (SELECT cid, period, sum(amount) AS spend FROM lines WHERE NOT is_return GROUP BY cid, period),
        refunds AS (
            SELECT r.cid, b.period, sum(r.amount) AS refund
            FROM (SELECT * FROM lines WHERE is_return) r ASOF JOIN bought b ON r.cid = b.cid AND r.period >= b.period
            GROUP BY ALL
        ),
        mine AS (
            SELECT cid, period, greatest(spend + coalesce(refund, 0), 0) AS spend
            FROM bought LEFT JOIN refunds USING (cid, period)
        ),
        firsts AS (SELECT cid, min(period) AS first_period FROM mine GROUP BY cid),
        indexed AS (
            SELECT m.cid, f.first_period, m.spend, {index} AS idx,
                   {periods_between_sql("first_period", ended, period)} - 1 AS n
            FROM mine m JOIN firsts f USING (cid)
        )
        SELECT cid AS customer_id, first_period,
               count(DISTINCT CASE WHEN idx > 0 AND idx <= n THEN idx END) AS frequency,
               coalesce(max(CASE WHEN idx > 0 AND idx <= n THEN idx END), 0) AS recency,
               max(n) AS n_periods,
               count(DISTINCT CASE WHEN idx > 0 AND idx <= n AND idx > n - {window} THEN idx END) AS recent,
               CASE WHEN count({repeat}) > 0 THEN CAST(sum({repeat}) AS DOUBLE) / ({SCALE} * count({repeat}))
                    ELSE 0.0 END AS monetary_value
        FROM indexed GROUP BY cid, first_period HAVING max(n) >= 0 ORDER BY customer_id
    """


def prepare_opportunities(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    config: Config,
    as_of: dt.date | None = None,
    source: str = "the feed",
    column_names: Mapping[str, str] | None = None,
) -> Histories:
    """The prepare stage of the discrete job (see the module docstring). ``as_of`` (scoring): the histories
    as of that date only (rows after it are quarantined; ``calibration`` is left empty). ``source`` names the
    feed in its errors, ``column_names`` (the opened source's :attr:`pipeline.engines.Source.column_names`) its
    columns, which ``prepare.duplicate_key`` names (:func:`pipeline.contractual.prepare.feed_layout`)."""
    config = as_of_config(config, as_of)
    columns = feed_columns(relation)
    feed = feed_layout(config, list(columns), column_names, source)
    has_amounts = feed.has_amounts
    timestamp_format = feed_timestamp_format(relation, config, columns, source)
    period = config.business.billing_period
    con.register("tx", relation)
    try:
        rows = classified_rows_sql(config, columns, feed, timestamp_format)
        con.execute(f"CREATE OR REPLACE TEMP TABLE dclassified AS {rows}")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE buys AS SELECT cid, CAST(ts AS DATE) AS day, is_return, "
            f"CAST(round(value * {SCALE}) AS BIGINT) AS amount FROM dclassified WHERE reason IS NULL"
        )
        counts = con.sql("SELECT reason, count(*) FROM dclassified GROUP BY reason").fetchall()
        last = con.sql("SELECT max(day), count(*) FROM buys WHERE NOT is_return").fetchall()[0]
        if last[0] is None:
            raise _no_purchases(con, config, counts, source)
        observation_end = config.prepare.observation_end or last[0]
        calibration_end = config.prepare.calibration_end if as_of is None else as_of
        if as_of is None and calibration_end >= observation_end:
            raise InputError(
                f"prepare.calibration_end {calibration_end} is not before the observation end {observation_end}"
            )
        full = con.sql(_as_of(period, period, observation_end)).df()
        holdout = periods_between_sql(
            f"DATE '{calibration_end + dt.timedelta(days=1)}'",
            f"DATE '{observation_end + dt.timedelta(days=1)}'",
            period,
        )
        window = int(con.sql(f"SELECT {holdout}").fetchall()[0][0])
        calibrated = con.sql(_as_of(period, period, calibration_end, window)) if as_of is None else None
        calibration = full.head(0) if calibrated is None else calibrated.df()
        named = quarantine_layout(feed, list(columns), column_names)
        quarantine = con.sql(quarantine_rows_sql(named, "dclassified")).df()
    finally:
        con.unregister("tx")
    reasons = {str(r): int(n) for r, n in counts if r is not None}
    used = sum(int(n) for r, n in counts if r is None)
    rows_in, quarantined = int(relation.count("*").fetchall()[0][0]), sum(reasons.values())
    if rows_in != used + quarantined:
        raise InputError(f"rows in ({rows_in:,}) != rows used ({used:,}) + rows quarantined ({quarantined:,})")
    ledger = BillingLedger(rows_in, used, quarantined, reasons, int(last[1]))
    typed = (_typed(calibration, has_amounts), _typed(full, has_amounts))
    return Histories(*typed, ledger, quarantine, calibration_end, observation_end, has_amounts, timestamp_format)


def _no_purchases(
    con: duckdb.DuckDBPyConnection, config: Config, counts: list[tuple[Any, ...]], source: str
) -> InputError:
    """The non-contractual job's error when no row is usable (:func:`pipeline.engines.prepared.no_usable_rows`):
    the reasons (and the used rows that are all returns), with a hint such as a date that could not be read."""
    unreadable = partial(unreadable_timestamp, con, "dclassified")
    reasons = no_usable_reasons(counts, "returns")
    return no_usable_rows(reasons, config.prepare, source, unreadable, "purchases", config.data.timestamp_format)


def _typed(frame: pd.DataFrame, has_amounts: bool) -> pd.DataFrame:
    """The histories' columns and types; without amounts (an event feed), no ``monetary_value``: its spend is
    no money (every purchase is 0), and a column of zeros would read as money."""
    columns = [c for c in HISTORY_COLUMNS if has_amounts or c != "monetary_value"]
    out = frame.loc[:, columns].copy()
    out["customer_id"] = out["customer_id"].astype(str)
    for column in ("frequency", "recency", "n_periods", "recent"):
        out[column] = out[column].astype("int64")
    if has_amounts:
        out["monetary_value"] = out["monetary_value"].astype("float64")
    return out.reset_index(drop=True)
