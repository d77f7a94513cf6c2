"""Prepare a billing feed (customer, charge date, amount) into one row per subscriber, in DuckDB SQL.

Rows are classified by the non-contractual job's own SQL (:func:`pipeline.engines.sql.classified_sql`: the
quarantine rules of :func:`pipeline.engines.rules.quarantine_rules`, ids, returns): missing or unreadable ids,
dates and amounts, out-of-range dates, duplicates (as :func:`pipeline.engines.source_columns.layout` says:
under ``prepare.duplicates: auto``, rows identical in every source column only when an order id is mapped;
``prepare.duplicate_key`` names source columns, as the source names them), zero amounts and refunds as
configured, dates after the observation end; rows in = rows used + rows quarantined, or the job stops. The
quarantined rows are that job's quarantine file: every source column as text under its source name, then
``reason``, sorted by reason, then by the columns. Timestamps are read as that job reads them: a text
column DuckDB cannot read gets the strptime format detected from a sample of it
(:func:`pipeline.engines.duckdb_classify.detected_format`), an ambiguous one stops the job, and a feed with no
usable row gets that job's error (:func:`pipeline.engines.prepared.no_usable_rows`). A used row that is not a
refund (a negative amount, or an order id starting with ``prepare.cancel_prefix``, as in the non-contractual job)
is a charge: under ``prepare.zero_amount: keep`` (the default) a charge of 0 (a free plan) is a billing period
paid, so its subscriber is a subscriber like any other (``quarantine`` quarantines it as ``zero_amount``).

Per subscriber, as of a date D (the calibration end, and the observation end):

- ``cohort``: the billing period (month, week or year) of the first charge, its first day;
- ``renewals``: distinct billing periods with a charge, counted from the first charge's anniversary, less one;
- ``age``: renewal decisions that have come due by D: whole billing periods from the first charge to
  D - ``business.grace_days`` (at least ``renewals``);
- ``churned``: a due renewal was missed (age > renewals); otherwise the subscriber is active (censored);
- ``price``: the last charge's amount (the plan's price; of several charges that day, the largest; with order
  ids a charge is an invoice, its lines added up: :func:`charges_sql`),
  ``revenue``: the sum of the charges, rounded to 1/``SCALE`` and added up as exact integers as in the
  non-contractual job (:mod:`pipeline.engines.rules`): the same bits whatever the order DuckDB adds them in.

And the feed's median interval between a subscriber's charges, for the advice when it is not the billing
period, and the subscribers charged at least twice the billing period apart, for the advice on a mix of plans
(:mod:`pipeline.contractual.intervals`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.config import Config
from pipeline.contractual.intervals import ChargeInterval, charge_interval
from pipeline.engines.duckdb_classify import classified_sql, detected_format, is_native_timestamp
from pipeline.engines.prepared import no_usable_reasons, no_usable_rows
from pipeline.engines.rules import SCALE
from pipeline.engines.source_columns import REASON, Layout, layout, quarantine_names
from pipeline.engines.sql import DUCKDB, quarantine_sql, unreadable_timestamp_sql
from pipeline.errors import InputError

__all__ = [
    "SUBSCRIBER_COLUMNS",
    "BillingLedger",
    "Subscribers",
    "as_of_config",
    "charges_sql",
    "classified_rows_sql",
    "feed_columns",
    "feed_layout",
    "feed_timestamp_format",
    "periods_between_sql",
    "prepare_billing",
    "quarantine_layout",
    "quarantine_rows_sql",
    "subscribers_from_charges",
    "subscribers_sql",
    "unreadable_timestamp",
]

SUBSCRIBER_COLUMNS = (
    "customer_id",
    "cohort",
    "first_charge",
    "last_charge",
    "renewals",
    "age",
    "churned",
    "price",
    "revenue",
)


@dataclass(frozen=True)
class BillingLedger:
    """Where every input row went: rows in = rows used + rows quarantined (by reason)."""

    rows_in: int
    rows_used: int
    rows_quarantined: int
    reasons: dict[str, int]
    charges: int

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_by_reason": dict(self.reasons),
            "charges": self.charges,
        }


@dataclass(frozen=True)
class Subscribers:
    """The prepared billing feed: subscribers as of the calibration end and as of the observation end
    (:data:`SUBSCRIBER_COLUMNS`, sorted by id), the ledger, the quarantined rows (:func:`quarantine_rows_sql`)
    and the charges used (customer_id, charge_date, amount; for the advice on the data), and the feed's median
    interval between a subscriber's charges (a billing feed's training prepare only: None as of a date, and for
    a subscriptions table, whose charges are laid on the configured period)."""

    calibration: pd.DataFrame
    full: pd.DataFrame
    ledger: BillingLedger
    quarantine: pd.DataFrame
    charges: pd.DataFrame
    calibration_end: dt.date
    observation_end: dt.date
    charge_interval: ChargeInterval | None = None
    timestamp_format: str | None = None
    """The strptime format the text timestamps were read with (configured or detected); None: DuckDB's own."""


def periods_between_sql(start: str, end: str, period: str) -> str:
    """Whole billing periods from the date ``start`` to the date ``end`` (0 when end < the first anniversary;
    negative when end < start): the anniversary of the 31st in a 30-day month is that month's last day."""
    if period == "week":
        return f"CAST(floor(date_diff('day', {start}, {end}) / 7) AS BIGINT)"
    months = f"date_diff('month', {start}, {end})"
    whole = (
        f"({months} - CASE WHEN CAST({start} + to_months(CAST({months} AS INTEGER)) AS DATE) > {end} THEN 1 ELSE 0 END)"
    )
    return whole if period == "month" else f"CAST(floor({whole} / 12) AS BIGINT)"


def feed_columns(relation: duckdb.DuckDBPyRelation) -> dict[str, str]:
    """The feed's columns and their DuckDB types."""
    return {name: str(dtype) for name, dtype in zip(relation.columns, relation.types, strict=True)}


def feed_timestamp_format(
    relation: duckdb.DuckDBPyRelation, config: Config, columns: Mapping[str, str], source: str
) -> str | None:
    """The strptime format the feed's text timestamps are read with: ``data.timestamp_format`` or, when DuckDB
    cannot read them itself, the one detected from a sample of them as the non-contractual job detects it
    (:func:`pipeline.engines.duckdb_classify.detected_format`; InputError when the sample reads two ways);
    None for DuckDB's own reading (and a native timestamp column)."""
    if config.data.timestamp_format is not None or is_native_timestamp(columns["timestamp"]):
        return config.data.timestamp_format
    return detected_format(relation, config.prepare.timezone, source)


def classified_rows_sql(config: Config, columns: Mapping[str, str], feed: Layout, timestamp_format: str | None) -> str:
    """Every row of ``tx`` (whose columns and types are ``columns``, laid out as ``feed``: :func:`feed_layout`)
    classified as the non-contractual job classifies it (:func:`pipeline.engines.duckdb_classify.classified_sql`,
    the rules written once): its id (cid), timestamp (raw_ts, and ts parsed as that job parses it, by
    ``timestamp_format`` when given), ``raw_value`` (the amount, quantity x unit price, or 0 in an event feed:
    :attr:`~pipeline.engines.source_columns.Layout.has_amounts`), ``is_return`` (a negative value, or an order id
    starting with ``prepare.cancel_prefix``), the signed ``value`` and the quarantine ``reason``.

    Duplicates follow the non-contractual job's rule (:func:`pipeline.engines.source_columns.layout`): under
    ``prepare.duplicates: auto`` rows repeated whole are duplicates only when an order id is mapped (without
    one, two identical lines are two real purchases); ``quarantine`` always, ``keep`` never;
    ``prepare.duplicate_key`` names the source columns that make a row a repeat."""
    return classified_sql(dict(columns), feed, config.prepare, timestamp_format)


def unreadable_timestamp(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """One timestamp of the classified rows in ``table`` that could not be read, for the "no usable" hint."""
    value = con.sql(unreadable_timestamp_sql(DUCKDB, f"SELECT * FROM {table}")).fetchall()[0][0]
    return None if value is None else str(value)


def feed_layout(
    config: Config, columns: list[str], column_names: Mapping[str, str] | None = None, source: str = "the feed"
) -> Layout:
    """The feed's :class:`~pipeline.engines.source_columns.Layout` (its source columns' names, its duplicates, and
    whether it has amounts), as the non-contractual job lays it out: ``column_names`` (relation column -> source
    column name: the opened source's :attr:`pipeline.engines.Source.column_names`) names the source's columns,
    which ``prepare.duplicate_key`` names (InputError, naming ``source``, for one the source does not have);
    without it the relation is its own source (each column as it is named, private prefix removed)."""
    return layout(columns, column_names, config.prepare, source)


def quarantine_layout(feed: Layout, columns: list[str], column_names: Mapping[str, str] | None) -> Layout:
    """``feed`` as the quarantine names its columns: the source's names when ``column_names`` is given (``{}``
    for a relation that is its own source). Without it (None: a prepare called on a bare relation), the
    relation's own columns, unrenamed."""
    return feed if column_names is not None else dataclasses.replace(feed, names={c: c for c in columns})


def quarantine_rows_sql(feed: Layout, classified: str = "classified") -> str:
    """The rows of the table ``classified`` with a reason, as the non-contractual job writes them
    (:func:`pipeline.engines.sql.quarantine_sql`): every source column as text under its source name
    (:func:`~pipeline.engines.source_columns.quarantine_names` of ``feed.names``), then ``reason``; sorted as its
    quarantine file is (:meth:`pipeline.engines.duckdb_engine.DuckDBEngine.write_quarantine`): by reason, then by
    the columns in the source's order, empty values first."""
    keys = [REASON, *quarantine_names(feed.names).values()]
    order = ", ".join(f"{DUCKDB.identifier(k)} ASC NULLS FIRST" for k in keys)
    return f"{quarantine_sql(DUCKDB, f'SELECT * FROM {classified}', feed)} ORDER BY {order}"


def subscribers_sql(config: Config, as_of: dt.date) -> str:
    """Subscribers acquired by ``as_of``, from the ``charges`` (cid, day, value) with a charge by then."""
    period = config.business.billing_period
    unit = {"week": "week", "month": "month", "year": "year"}[period]
    due = f"DATE '{as_of}' - INTERVAL {config.business.grace_days} DAY"
    index = periods_between_sql("first_charge", "day", period)
    return f"""
        WITH mine AS (SELECT * FROM charges WHERE day <= DATE '{as_of}'),
        firsts AS (SELECT cid, min(day) AS first_charge FROM mine GROUP BY cid),
        per AS (
            SELECT m.cid, f.first_charge, max(m.day) AS last_charge,
                   count(DISTINCT {index}) - 1 AS renewals,
                   arg_max(m.value, (m.day, m.value)) AS price,
                   CAST(sum(CAST(round(m.value * {SCALE}) AS BIGINT)) AS DOUBLE) / {SCALE} AS revenue
            FROM mine m JOIN firsts f USING (cid)
            GROUP BY m.cid, f.first_charge
        )
        SELECT cid AS customer_id,
               CAST(date_trunc('{unit}', first_charge) AS DATE) AS cohort,
               first_charge, last_charge, renewals,
               greatest({periods_between_sql("first_charge", f"CAST({due} AS DATE)", period)}, renewals) AS age,
               greatest({periods_between_sql("first_charge", f"CAST({due} AS DATE)", period)}, renewals)
                   > renewals AS churned,
               price, revenue
        FROM per ORDER BY customer_id
    """


def as_of_config(config: Config, as_of: dt.date | None) -> Config:
    """``config`` with ``prepare.observation_end`` at ``as_of`` (scoring), unchanged without one."""
    if as_of is None:
        return config
    return config.model_copy(update={"prepare": config.prepare.model_copy(update={"observation_end": as_of})})


def prepare_billing(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    config: Config,
    as_of: dt.date | None = None,
    source: str = "the billing feed",
    column_names: Mapping[str, str] | None = None,
) -> Subscribers:
    """The prepare stage of the contractual job (see the module docstring). ``as_of`` (scoring): the
    subscribers as of that date only (rows after it are quarantined; ``calibration`` is left empty). ``source``
    names the feed in its errors; ``column_names`` (the opened source's) its columns, in ``prepare.duplicate_key``
    and the quarantine (:func:`feed_layout`, :func:`quarantine_layout`)."""
    config = as_of_config(config, as_of)
    columns = feed_columns(relation)
    feed = feed_layout(config, list(columns), column_names, source)
    if not feed.has_amounts:
        raise InputError(
            "business.type contractual needs a billing feed with amounts "
            "(data.columns.amount, or data.columns.quantity and unit_price)"
        )
    timestamp_format = feed_timestamp_format(relation, config, columns, source)
    con.register("tx", relation)
    try:
        classified = classified_rows_sql(config, columns, feed, timestamp_format)
        con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {classified}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE charges AS {charges_sql(feed.has_order)}")
        named = quarantine_layout(feed, list(columns), column_names)
        subscribers = subscribers_from_charges(con, config, named, as_of, source)
        interval = charge_interval(con, config.business.billing_period) if as_of is None else None
        return dataclasses.replace(subscribers, charge_interval=interval, timestamp_format=timestamp_format)
    finally:
        con.unregister("tx")


def charges_sql(has_order: bool) -> str:
    """The charges (cid, day, value) of the used rows of ``classified`` that are not refunds: each row, or with
    order ids each invoice (the rows of one order id, its lines: dated by the first, their amounts added as
    exact integers of 1/``SCALE``, as the non-contractual job adds an order's lines; rows without an order id
    are one invoice per customer and day, as there). A negative line is a refund, as everywhere (a credit line on
    an invoice too): not part of the charge."""
    used = "FROM classified WHERE reason IS NULL AND NOT is_return"
    if not has_order:
        return f"SELECT cid, CAST(ts AS DATE) AS day, raw_value AS value {used}"
    invoice = "coalesce(order_key, 'day ' || CAST(CAST(ts AS DATE) AS VARCHAR))"
    return f"""
        SELECT cid, min(CAST(ts AS DATE)) AS day,
               CAST(sum(CAST(round(raw_value * {SCALE}) AS HUGEINT)) AS DOUBLE) / {SCALE} AS value
        {used} GROUP BY cid, {invoice}
    """


def subscribers_from_charges(
    con: duckdb.DuckDBPyConnection, config: Config, named: Layout, as_of: dt.date | None, source: str
) -> Subscribers:
    """The subscribers, ledger and quarantine of the rows of ``tx`` (registered) classified in ``classified``
    (a ``reason`` per row; the quarantine's columns named by ``named``: :func:`quarantine_layout`), from the
    ``charges`` (cid, day, value) of the used ones; rows in are counted on ``tx`` itself, and must equal rows used
    + rows quarantined. Without a charge, the non-contractual job's error
    (:func:`pipeline.engines.prepared.no_usable_rows`: the reasons, and a hint such as an unreadable date)."""
    counts = con.sql("SELECT reason, count(*) FROM classified GROUP BY reason").fetchall()
    reasons = {str(r): int(n) for r, n in counts if r is not None}
    used = sum(int(n) for r, n in counts if r is None)
    quarantine = con.sql(quarantine_rows_sql(named)).df()
    last = con.sql("SELECT max(day) FROM charges").fetchall()[0]
    if last[0] is None:
        what = "subscriptions" if config.business.input == "subscriptions" else "charges"
        why = no_usable_reasons(counts, "refunds")  # the rows used, if any, are every one a refund
        raise no_usable_rows(why, config.prepare, source, lambda: unreadable_timestamp(con, "classified"), what)
    observation_end = config.prepare.observation_end or last[0]
    calibration_end = config.prepare.calibration_end if as_of is None else as_of
    if as_of is None and calibration_end >= observation_end:
        raise InputError(
            f"prepare.calibration_end {calibration_end} is not before the observation end {observation_end}"
        )
    full = con.sql(subscribers_sql(config, observation_end)).df()
    calibration = full.head(0) if as_of is not None else con.sql(subscribers_sql(config, calibration_end)).df()
    charges = con.sql("SELECT cid AS customer_id, day AS charge_date, value AS amount FROM charges").df()
    rows_in, quarantined = int(con.sql("SELECT count(*) FROM tx").fetchall()[0][0]), sum(reasons.values())
    if rows_in != used + quarantined:
        raise InputError(f"rows in ({rows_in:,}) != rows used ({used:,}) + rows quarantined ({quarantined:,})")
    ledger = BillingLedger(rows_in, used, quarantined, reasons, len(charges))
    if as_of is None and len(calibration) == 0:
        raise InputError(f"no subscriber was acquired by prepare.calibration_end {calibration_end}")
    return Subscribers(_typed(calibration), _typed(full), ledger, quarantine, charges, calibration_end, observation_end)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(SUBSCRIBER_COLUMNS)].copy()
    out["customer_id"] = out["customer_id"].astype(str)
    for column in ("renewals", "age"):
        out[column] = out[column].astype("int64")
    out["churned"] = out["churned"].astype(bool)
    for column in ("price", "revenue"):
        out[column] = out[column].astype("float64")
    return out.reset_index(drop=True)
