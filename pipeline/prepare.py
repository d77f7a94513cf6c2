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
  raw holdout transaction, ``revenue_holdout`` their sum.

One difference from lifetimes, on purpose: ``calibration_end`` includes the whole day, so a purchase
at 15:00 on that day is calibration, not holdout (lifetimes compares against midnight).

The stage runs in DuckDB over a lazy relation and builds pandas frames only for per-customer rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from models.clv import DAYS_PER_UNIT
from pipeline.config import PrepareConfig
from pipeline.errors import InputError

QUARANTINE_REASONS: tuple[str, ...] = (
    "missing_customer_id",
    "missing_timestamp",
    "invalid_timestamp",
    "invalid_amount",
    "negative_amount",
    "after_observation_end",
)


@dataclass(frozen=True)
class Ledger:
    """Row accounting: every input row is either used or quarantined with a reason."""

    rows_in: int
    rows_used: int
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def reconciled(self) -> bool:
        return self.rows_in == self.rows_used + self.rows_quarantined


@dataclass(frozen=True)
class PreparedData:
    """Output of the prepare stage.

    ``calibration``: one row per customer whose first purchase is on or before calibration_end, with the
    calibration summary and the holdout actuals. ``full``: one row per customer over the whole history
    up to observation_end (what the production model is fitted on and scores). ``quarantine``: the
    rejected rows with their ``reason``.
    """

    calibration: pd.DataFrame
    full: pd.DataFrame
    quarantine: pd.DataFrame
    ledger: Ledger
    calibration_end: dt.date
    observation_end: dt.date
    duration_holdout: float
    first_date: dt.date
    last_date: dt.date


def _parsed(timestamp_format: str | None) -> str:
    raw_ts = 'CAST("timestamp" AS VARCHAR)'
    if timestamp_format is None:
        ts = 'TRY_CAST("timestamp" AS TIMESTAMP)'
    else:
        fmt = timestamp_format.replace("'", "''")
        ts = f"try_strptime({raw_ts}, '{fmt}')"
    return f"""
        SELECT
            NULLIF(trim(CAST(customer_id AS VARCHAR)), '') AS cid,
            NULLIF(trim({raw_ts}), '') AS raw_ts,
            {ts} AS ts,
            TRY_CAST(amount AS DOUBLE) AS value,
            customer_id, "timestamp", amount
        FROM tx
    """


def _classified(timestamp_format: str | None, observation_end: dt.date | None) -> str:
    after = (
        f"WHEN CAST(ts AS DATE) > DATE '{observation_end}' THEN 'after_observation_end'"
        if observation_end
        else ""
    )
    return f"""
        SELECT *, CASE
            WHEN cid IS NULL THEN 'missing_customer_id'
            WHEN raw_ts IS NULL THEN 'missing_timestamp'
            WHEN ts IS NULL THEN 'invalid_timestamp'
            WHEN value IS NULL OR NOT isfinite(value) THEN 'invalid_amount'
            WHEN value < 0 THEN 'negative_amount'
            {after}
            ELSE NULL END AS reason
        FROM ({_parsed(timestamp_format)})
    """


def _summary_sql(cutoff: dt.date, period: str, unit_days: float) -> str:
    return f"""
        WITH periods AS (
            SELECT cid, date_trunc('{period}', d)::DATE AS p, fsum(value) AS amount
            FROM clean WHERE d <= DATE '{cutoff}' GROUP BY cid, p
        ), customers AS (
            SELECT cid, min(p) AS first_p, max(p) AS last_p, count(*) AS n, fsum(amount) AS total_spend
            FROM periods GROUP BY cid
        ), repeats AS (
            SELECT periods.cid, favg(periods.amount) AS mv
            FROM periods JOIN customers USING (cid) WHERE periods.p > customers.first_p GROUP BY periods.cid
        )
        SELECT customers.cid AS customer_id,
               CAST(n - 1 AS DOUBLE) AS frequency,
               date_diff('day', first_p, last_p) / {unit_days} AS recency,
               date_diff('day', first_p, date_trunc('{period}', DATE '{cutoff}')::DATE) / {unit_days} AS "T",
               coalesce(repeats.mv, 0.0) AS monetary_value,
               total_spend,
               first_p AS first_purchase
        FROM customers LEFT JOIN repeats USING (cid)
        ORDER BY customer_id
    """


def _holdout_sql(calibration_end: dt.date, observation_end: dt.date, period: str) -> str:
    return f"""
        SELECT cid AS customer_id,
               CAST(count(DISTINCT date_trunc('{period}', d)) AS DOUBLE) AS frequency_holdout,
               favg(value) AS monetary_value_holdout,
               fsum(value) AS revenue_holdout
        FROM clean WHERE d > DATE '{calibration_end}' AND d <= DATE '{observation_end}'
        GROUP BY cid
    """


def _period_start(day: dt.date, period: str) -> dt.date:
    """First day of the period holding ``day``: weeks start on Monday (DuckDB and pandas 'W')."""
    return day if period == "day" else day - dt.timedelta(days=day.weekday())


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


def prepare(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None = None,
    source: str = "input",
) -> PreparedData:
    """Clean, quarantine and summarise ``transactions`` (columns customer_id, timestamp, amount)."""
    classified = _query(transactions, "tx", _classified(timestamp_format, config.observation_end))
    valid = classified.filter("reason IS NULL")
    bounds = valid.aggregate("min(CAST(ts AS DATE)) AS first, max(CAST(ts AS DATE)) AS last").fetchall()[0]
    first_date, last_date = bounds
    if first_date is None:
        raise InputError(f"{source}: no usable transactions after cleaning")
    observation_end = config.observation_end or last_date
    calibration_end = config.calibration_end
    if calibration_end < first_date or calibration_end >= last_date:
        raise InputError(
            f"{source}: prepare.calibration_end {calibration_end} is outside the data "
            f"({first_date} to {last_date}); it must leave transactions on both sides"
        )

    counts = dict(classified.aggregate("coalesce(reason, '') AS reason, count(*) AS n", "reason").fetchall())
    rows_used = int(counts.pop("", 0))
    quarantined = {reason: int(counts.get(reason, 0)) for reason in QUARANTINE_REASONS if counts.get(reason)}
    rows_in = int(transactions.aggregate("count(*)").fetchall()[0][0])
    ledger = Ledger(rows_in=rows_in, rows_used=rows_used, quarantined=quarantined)
    if not ledger.reconciled:
        raise InputError(
            f"{source}: row reconciliation failed: {rows_in} rows in, {rows_used} used + "
            f"{ledger.rows_quarantined} quarantined"
        )
    quarantine = (
        classified.filter("reason IS NOT NULL")
        .select(
            'CAST(customer_id AS VARCHAR) AS customer_id, CAST("timestamp" AS VARCHAR) AS "timestamp", '
            "CAST(amount AS VARCHAR) AS amount, reason"
        )
        .df()
    )

    clean = valid.select("cid, CAST(ts AS DATE) AS d, value")
    unit_days = DAYS_PER_UNIT[config.time_unit]
    calibration = _query(clean, "clean", _summary_sql(calibration_end, config.period, unit_days)).df()
    holdout = _query(clean, "clean", _holdout_sql(calibration_end, observation_end, config.period)).df()
    full = _query(clean, "clean", _summary_sql(observation_end, config.period, unit_days)).df()

    calibration = calibration.merge(holdout, on="customer_id", how="left")
    for column in ("frequency_holdout", "monetary_value_holdout", "revenue_holdout"):
        calibration[column] = calibration[column].fillna(0.0)
    holdout_days = (
        _period_start(observation_end, config.period) - _period_start(calibration_end, config.period)
    ).days
    duration_holdout = holdout_days / unit_days
    calibration["duration_holdout"] = duration_holdout
    return PreparedData(
        calibration=calibration,
        full=full,
        quarantine=quarantine,
        ledger=ledger,
        calibration_end=calibration_end,
        observation_end=observation_end,
        duration_holdout=duration_holdout,
        first_date=first_date,
        last_date=last_date,
    )
