"""Prepare stage on DuckDB: raw transactions -> cleaned rows, a quarantine ledger, and per-customer summaries.

What the summaries hold is described in :mod:`pipeline.engines.prepared`, the rules in
:mod:`pipeline.engines.rules`. The stage runs in DuckDB over a lazy relation: DuckDB reads the input
itself, one pass per bucket of customers (a range of ids), into a table of rows per customer and day; the
purchase periods of each bucket are aggregated into a table of its customers, whose summary rows, sorted by id,
leave DuckDB at once (the queries are in :mod:`pipeline.engines.duckdb_summary`, the rows go to
:mod:`pipeline.engines.duckdb_fetch`). When the observation end is configured, each bucket is summarised as
soon as it is scanned and its rows dropped, so DuckDB holds one bucket's rows and customers at a time;
otherwise the buckets are kept until the data's last day is known. The quarantined rows stay a lazy relation
for the edge to write.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from models.clv import DAYS_PER_UNIT
from pipeline.allocator import small_pages
from pipeline.config import PrepareConfig
from pipeline.engines.duckdb_classify import (
    check_collation,
    classified_sql,
    counted_rows,
    customer_buckets,
    detected_format,
    is_native_timestamp,
    parses_text,
    quarantine_sql,
    unreadable_timestamp,
)
from pipeline.engines.duckdb_counts import merged_counts, reason_counts
from pipeline.engines.duckdb_fetch import Part, Summaries, summaries
from pipeline.engines.duckdb_source import release_memory
from pipeline.engines.duckdb_statements import Statements, WorkingTables
from pipeline.engines.duckdb_summary import (
    CALIBRATION,
    FULL,
    IN_CALIBRATION,
    Windows,
    counts_sql,
    customers_sql,
    daily_sql,
    full_sql,
    overflow_sql,
    periods_sql,
    returns_sql,
    summaries_sql,
    weekly_parts_sql,
    weekly_sql,
)
from pipeline.engines.prepared import (
    AsOfData,
    Ledger,
    PreparedData,
    ReasonCounts,
    check_calibration_end,
    reconciled_ledger,
    used_dates,
)
from pipeline.engines.rules import holdout_days, nets_returns
from pipeline.engines.source_columns import Layout
from pipeline.engines.source_columns import layout as source_layout
from pipeline.engines.sql import DUCKDB
from pipeline.errors import InputError

__all__ = ["ROWS_PER_FULL_PASS", "ROWS_PER_PASS", "prepare", "prepare_as_of"]

_trimmed = DUCKDB.ascii_trim  # the ids' ASCII trim, under the name the tests have always used

ROWS_PER_PASS = 10_000_000
"""Input rows per pass over the input where it is clustered by customer (each pass reads its own row groups):
larger inputs are read once per bucket of customers. Measured on the benchmark feed: 50M rows in 3 passes took
24.6 s (peak 2.8 GB), in 4 passes of 12.5M 26.5 s (2.5 GB), in 2 passes 28.3 s (3.1 GB, the aggregations outgrow
the memory limit); 100M rows 61.9 s in 6 passes, 67.7 s in 8 (both 3.3 GB). Once the customers left DuckDB bucket
by bucket (2026-12-05), 100M rows took 38.5-44.0 s in 6 passes, 45.6 s in 4 and 70.6 s in 3. With the summaries'
frames copied once (2026-12-06), prepare alone at 50M rows took 12.2-12.9 s in 5 passes of 10M (median 12.7 s over
8 runs) against 12.9-13.5 s in 3 of 17M (median 13.0 s), at a peak of 1.5 against 2.0 GB, and 100M rows 25.1-25.9 s
in 10 passes against 26.6-27.7 s in 6; 7 passes at 50M took 13.1-13.7 s."""

ROWS_PER_FULL_PASS = 17_000_000
"""Input rows per pass where the input is not clustered by customer (ordered by time), or is text files (CSV),
parsed whole by every pass: every pass then reads the whole input, and fewer passes cost less. On the
benchmark's 100M rows ordered by time, prepare alone took 41.9-42.6 s in 6 passes against 44.5-45.9 s in 10
(2026-12-06); earlier 57.3 s in 6, 58.6 s in 4 and 70.9 s in 3."""


@dataclass(frozen=True)
class _Scan:
    """The input scanned one customer bucket at a time into tables ``daily_<bucket>`` of rows per (kind: used
    purchase, used return or quarantine reason; customer, order, day), with view ``daily`` over all of them;
    the tables are kept only when the windows were not known before the scan, otherwise each bucket was
    summarised and dropped as soon as it was scanned."""

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


Summarise = Callable[[str, bool, int, int], None]
"""Summarise one bucket's daily table into its summary rows (and the weekly parts): (table, net, bucket,
buckets)."""


def _store(relation: duckdb.DuckDBPyRelation, table: str, create: bool) -> None:
    if create:
        relation.create(table)
    else:
        relation.insert_into(table)


def _first_overflow(statements: Statements, daily: str) -> object:
    """The customer named when a used day's sum overflowed."""
    return statements.on_tables(overflow_sql(daily)).fetchall()[0][0]


def _returns(statements: Statements, daily: str, observation_end: dt.date, period: str) -> tuple[int, int]:
    """Used return rows netted against a purchase period, and those with none at or before them."""
    netted, unmatched = statements.on_tables(returns_sql(daily, observation_end, period)).fetchall()[0]
    return int(netted), int(unmatched)


def _scan(
    statements: Statements,
    columns: dict[str, str],
    layout: Layout,
    config: PrepareConfig,
    timestamp_format: str | None,
    source: str,
    daily: str,
    summarise: Summarise | None,
) -> _Scan:
    """Scan the input bucket by bucket. With ``summarise`` (the windows are known: the observation end is
    configured), each bucket is counted, netted and summarised, then its table dropped: DuckDB holds one
    bucket's rows at a time. Without it, the tables are kept for the summaries once the data's last day is
    known. Netting is decided per bucket in the first case: a bucket without returns has nothing to net,
    and the netted summaries of its customers equal the plain ones."""
    transactions, given_format = statements.transactions, timestamp_format
    if timestamp_format is None and not is_native_timestamp(columns["timestamp"]):
        timestamp_format = detected_format(transactions, config.timezone, source)
    dtype = columns["customer_id"]
    # Where every id is its own text, the ids are read without the id rule's test; the buckets' key needs it too.
    rows_in, plain = counted_rows(transactions, dtype)
    # Customers split into buckets of ranges of their ids, one pass over the input each, so that the per-day
    # aggregation of a bucket fits in memory: one big aggregation would spill many times its size to disk.
    # Text files (CSV) are parsed whole by every pass, however their rows are ordered: the fewer passes.
    per_pass = ROWS_PER_FULL_PASS if parses_text(transactions) else ROWS_PER_PASS
    wanted, full_passes = (max(1, -(-rows_in // rows)) for rows in (per_pass, ROWS_PER_FULL_PASS))
    classified = classified_sql(columns, layout, config, timestamp_format, plain_ids=plain)
    buckets = customer_buckets(transactions, dtype, wanted, rows_in, plain, full_passes)
    by_reason: ReasonCounts = {}
    netted, unmatched = (0, 0)
    for bucket in range(buckets.count):
        table = f"{daily}_{bucket}"
        bucket_sql = classified_sql(columns, layout, config, timestamp_format, buckets.where(bucket), plain)
        statements.on_input(daily_sql(bucket_sql, layout.has_order)).create(table)
        rows = statements.on_tables(counts_sql(table)).fetchall()
        counts = reason_counts(rows, source, functools.partial(_first_overflow, statements, table))
        by_reason = merged_counts(by_reason, counts)
        if summarise is None:
            continue
        assert config.observation_end is not None  # summarise is given only when it is configured
        net = nets_returns(config, counts.get("", (0, None, None, 0))[3])
        if net:
            more_netted, more_unmatched = _returns(statements, table, config.observation_end, config.period)
            netted, unmatched = netted + more_netted, unmatched + more_unmatched
        summarise(table, net, bucket, buckets.count)
        statements.on_tables(f"DROP TABLE {table}")
    if summarise is None:
        every_bucket = " UNION ALL ".join(f"SELECT * FROM {daily}_{bucket}" for bucket in range(buckets.count))
        statements.on_tables(f"CREATE VIEW {daily} AS {every_bucket}")
    first_date, last_date, observation_end, net = used_dates(
        by_reason, config, source, lambda: unreadable_timestamp(transactions, classified), given_format
    )
    if net and summarise is None:
        netted, unmatched = _returns(statements, daily, observation_end, config.period)
    ledger = reconciled_ledger(rows_in, by_reason, netted, unmatched, source)
    dates = (first_date, last_date, observation_end)
    return _Scan(daily, buckets.count, layout, timestamp_format, classified, ledger, *dates, net)


def _quarantine(statements: Statements, scan: _Scan) -> duckdb.DuckDBPyRelation:
    return statements.on_input(quarantine_sql(scan.classified_sql, scan.layout))


def _summarise(
    statements: Statements,
    layout: Layout,
    config: PrepareConfig,
    windows: Windows,
    tables: WorkingTables,
    sink: Summaries,
    scoring: bool,
) -> Summarise:
    """Summarise a bucket's daily table into its customers, whose summary rows (for scoring the full history
    alone, for training with the calibration; sorted by id) go to ``sink``, and for training the weekly parts;
    then drop its tables."""
    unit_days = DAYS_PER_UNIT[config.time_unit]
    rows_sql = full_sql if scoring else summaries_sql
    has_order = layout.has_order

    def summarise(daily: str, net: bool, bucket: int, buckets: int) -> None:
        periods_query, aggregates = periods_sql(daily, windows, has_order)
        periods = f"({periods_query})"
        if aggregates:
            statements.on_tables(periods_query).create(tables.periods)
            periods = tables.periods
        statements.on_tables(customers_sql(daily, periods, windows, net, not aggregates)).create(tables.customers)
        if not scoring:
            parts = statements.on_tables(weekly_parts_sql(periods, tables.customers, windows))
            _store(parts, tables.weekly, bucket == 0)
        rows = statements.on_tables(rows_sql(tables.customers, windows, unit_days, layout.has_amounts))
        sink.add(rows, buckets, lambda: _count(statements, tables.customers))
        tables.drop(statements, tables.periods, tables.customers)

    return summarise


def _windows(config: PrepareConfig, observation_end: dt.date) -> Windows:
    """The training windows: calibration up to calibration_end, the holdout up to ``observation_end``."""
    days = holdout_days(config.calibration_end, observation_end, config.period)
    return Windows(
        config.calibration_end, observation_end, config.calibration_end - dt.timedelta(days=days), config.period
    )


def _summaries(
    statements: Statements,
    config: PrepareConfig,
    timestamp_format: str | None,
    column_names: Mapping[str, str] | None,
    source: str,
    tables: WorkingTables,
    sink: Summaries,
    scoring: bool,
) -> _Scan:
    """Scan the input and summarise its customers into ``sink`` (for training also the weekly parts): bucket
    by bucket as it is scanned when the windows are known before the scan (the observation end is configured,
    or the scoring date), from the kept daily tables afterwards when not (the observation end is then the
    data's last day)."""
    transactions = statements.transactions
    check_collation(statements.working)  # the input's connection, without binding the input
    columns = {name: str(dtype) for name, dtype in zip(transactions.columns, transactions.types, strict=True)}
    layout = source_layout(list(columns), column_names, config, source)
    end = config.observation_end
    windows = None if end is None else Windows(end, end, end, config.period) if scoring else _windows(config, end)
    summarise = None if windows is None else _summarise(statements, layout, config, windows, tables, sink, scoring)
    scan = _scan(statements, columns, layout, config, timestamp_format, source, tables.daily, summarise)
    if not scoring:
        check_calibration_end(config, scan.first_date, scan.last_date, source)
    if windows is None:
        windows = _windows(config, scan.observation_end)
        summarise = _summarise(statements, layout, config, windows, tables, sink, scoring)
        for bucket in range(scan.buckets):
            summarise(f"{scan.daily}_{bucket}", scan.net, bucket, scan.buckets)
    return scan


def _count(statements: Statements, table: str) -> int:
    return int(statements.on_tables(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _frames(statements: Statements, tables: WorkingTables, sink: Summaries, parts: list[Part]) -> list[pd.DataFrame]:
    """The summaries' frames ``parts``, read once every working table is dropped and DuckDB has handed the
    memory back: the frames never sit in memory next to DuckDB's tables."""
    tables.drop(statements)
    release_memory(statements.on_tables)
    with small_pages():  # fresh arrays in the memory DuckDB just handed back (see pipeline.allocator)
        return sink.frames(parts, lambda sql, ids: _with_ids(statements.working, sql, ids))


def _with_ids(working: duckdb.DuckDBPyRelation, sql: str, clv_prepare_ids: pa.Table) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` in the input's connection (through ``working``, which does not read the input), where DuckDB
    finds the Arrow table ``clv_prepare_ids`` among this frame's locals (its Python replacement scan, on unless
    the connection turned it off)."""
    try:
        result = working.query("clv_prepare_working", sql)
    except duckdb.CatalogException:
        raise InputError(
            "the DuckDB connection has python_enable_replacements off; prepare needs it to sort integer ids"
        ) from None
    assert result is not None  # a SELECT always yields a relation
    return result


def prepare(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
    staging: Path | None = None,
) -> PreparedData:
    """Clean, quarantine and summarise ``transactions`` for training: calibration, holdout and full history.

    Columns: customer_id, timestamp, amount (or quantity and unit_price; neither for an event feed),
    optionally order_id, and the other source columns under their private aliases; ``column_names``
    (:attr:`pipeline.engines.Source.column_names`) names them as the source does. Without a
    ``timestamp_format``, a text timestamp column DuckDB cannot read gets a detected one.
    The input is scanned a bucket of customers at a time into a table of rows per (kind, customer, order,
    day) in the relation's DuckDB connection (which spills to disk past its memory limit); the ledger, the
    purchase periods and the bucket's summary rows come from it, and the working tables are dropped before
    returning. ``staging``: the engine's folder for the buckets' files (a temporary folder without it).
    """
    tables, statements = WorkingTables.new(), Statements(transactions)
    try:
        with summaries(staging) as sink:
            scan = _summaries(statements, config, timestamp_format, column_names, source, tables, sink, False)
            weekly = statements.on_tables(weekly_sql(tables.weekly)).df()
            full, calibration = _frames(statements, tables, sink, [Part(FULL), Part(CALIBRATION, IN_CALIBRATION)])
    finally:
        tables.drop(statements)
    calibration_end, observation_end = config.calibration_end, scan.observation_end
    duration_holdout = holdout_days(calibration_end, observation_end, config.period) / DAYS_PER_UNIT[config.time_unit]
    calibration["duration_holdout"] = duration_holdout
    if calibration.empty:
        raise InputError(f"{source}: no customer made a purchase on or before calibration_end {calibration_end}")
    return PreparedData(
        calibration=calibration,
        full=full,
        quarantine=_quarantine(statements, scan),
        ledger=scan.ledger,
        weekly=weekly,
        calibration_end=calibration_end,
        observation_end=observation_end,
        duration_holdout=duration_holdout,
        first_date=scan.first_date,
        last_date=scan.last_date,
        has_amounts=scan.layout.has_amounts,
        timestamp_format=scan.timestamp_format,
    )


def prepare_as_of(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    as_of: dt.date,
    timestamp_format: str | None = None,
    source: str = "input",
    column_names: Mapping[str, str] | None = None,
    staging: Path | None = None,
) -> AsOfData:
    """Clean, quarantine and summarise ``transactions`` up to ``as_of`` for scoring (no holdout).

    The same rules as :func:`prepare`; rows after ``as_of`` are quarantined as ``after_observation_end``.
    """
    config = config.model_copy(update={"observation_end": as_of})
    tables, statements = WorkingTables.new(), Statements(transactions)
    try:
        with summaries(staging) as sink:
            scan = _summaries(statements, config, timestamp_format, column_names, source, tables, sink, True)
            (customers,) = _frames(statements, tables, sink, [Part()])
    finally:
        tables.drop(statements)
    return AsOfData(
        customers=customers,
        quarantine=_quarantine(statements, scan),
        ledger=scan.ledger,
        as_of=as_of,
        has_amounts=scan.layout.has_amounts,
        timestamp_format=scan.timestamp_format,
    )
