"""Prepare stage on DuckDB: raw transactions -> cleaned rows, a quarantine ledger, and per-customer summaries.

What the summaries hold is described in :mod:`pipeline.engines.prepared`, the rules in
:mod:`pipeline.engines.rules`. The stage runs in DuckDB over a lazy relation: DuckDB reads the input
itself, scans it once into a table of rows per customer and day, aggregates the purchase periods into
one table of customers (the queries are in :mod:`pipeline.engines.duckdb_summary`), and pandas frames are
built only from that per-customer table, through Arrow (above 2M customers through Parquet files in the
``staging`` folder the engine gives, so that the frames are not built while DuckDB still holds its
tables). The quarantined rows stay a lazy relation for the edge to write.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from models.clv import DAYS_PER_UNIT
from pipeline.config import PrepareConfig
from pipeline.engines.duckdb_classify import (
    classified_sql,
    detected_format,
    is_native_timestamp,
    quarantine_sql,
    unreadable_timestamp,
)
from pipeline.engines.duckdb_source import release_memory
from pipeline.engines.duckdb_summary import (
    BIGINT_MAX,
    Windows,
    calibration_sql,
    customers_sql,
    daily_sql,
    full_sql,
    periods_sql,
    returns_sql,
    weekly_parts_sql,
    weekly_sql,
)
from pipeline.engines.prepared import (
    AsOfData,
    Ledger,
    PreparedData,
    check_calibration_end,
    reconciled_ledger,
    used_dates,
)
from pipeline.engines.rules import SCALE, holdout_days
from pipeline.engines.source_columns import Layout
from pipeline.engines.source_columns import layout as source_layout
from pipeline.engines.sql import DUCKDB
from pipeline.errors import InputError

__all__ = ["FETCH_THROUGH_FILES", "ROWS_PER_PASS", "prepare", "prepare_as_of"]

_literal = DUCKDB.string
_trimmed = DUCKDB.ascii_trim  # the ids' ASCII trim, under the name the tests have always used

ROWS_PER_PASS = 12_500_000
"""Input rows per pass over the input: larger inputs are read once per bucket of customers."""


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


@dataclass(frozen=True)
class _Scan:
    """The input scanned into tables ``daily_<bucket>`` (view ``daily`` over all of them): rows per
    (reason, customer, order, return flag, day)."""

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


def _store(relation: duckdb.DuckDBPyRelation, table: str, create: bool) -> None:
    if create:
        relation.create(table)
    else:
        relation.insert_into(table)


def _scan(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None,
    column_names: Mapping[str, str] | None,
    source: str,
    daily: str,
) -> _Scan:
    columns = {name: str(dtype) for name, dtype in zip(transactions.columns, transactions.types, strict=True)}
    layout = source_layout(list(columns), column_names, config, source)
    if timestamp_format is None and not is_native_timestamp(columns["timestamp"]):
        timestamp_format = detected_format(transactions, config.timezone, source)
    classified = classified_sql(columns, layout, config, timestamp_format)
    rows_in = int(_query(transactions, "tx", "SELECT count(*) FROM tx").fetchall()[0][0])
    # Customers split into buckets, one pass over the input each, so that the per-day aggregation of
    # a bucket fits in memory: one big aggregation would spill many times its size to disk.
    buckets = max(1, -(-rows_in // ROWS_PER_PASS))
    for bucket in range(buckets):
        bucket_sql = classified_sql(columns, layout, config, timestamp_format, (bucket, buckets))
        _query(transactions, "tx", daily_sql(bucket_sql, layout.has_order)).create(f"{daily}_{bucket}")
    every_bucket = " UNION ALL ".join(f"SELECT * FROM {daily}_{bucket}" for bucket in range(buckets))
    _query(transactions, "tx", f"CREATE VIEW {daily} AS {every_bucket}")
    counts = _query(
        transactions,
        "tx",
        f"""SELECT coalesce(reason, '') AS reason, sum(n) AS n, min(d) AS first, max(d) AS last,
                   sum(n) FILTER (WHERE is_return) AS returns,
                   any_value(cid) FILTER (WHERE reason IS NULL AND amount IS NULL) AS overflow
            FROM {daily} GROUP BY ALL""",
    ).fetchall()
    for *_, overflow in counts:
        if overflow is not None:
            raise InputError(
                f"{source}: customer {overflow!r} has more than {BIGINT_MAX / SCALE:.3g} in purchases or returns "
                "on one day; set prepare.max_amount to quarantine such amounts"
            )
    by_reason = {reason: (int(n), first, last, int(r or 0)) for reason, n, first, last, r, _ in counts}
    first_date, last_date, observation_end, net = used_dates(
        by_reason, config, source, lambda: unreadable_timestamp(transactions, classified)
    )
    netted, unmatched = (0, 0)
    if net:
        returns = returns_sql(daily, observation_end, config.period)
        netted, unmatched = _query(transactions, "tx", returns).fetchall()[0]
    ledger = reconciled_ledger(rows_in, by_reason, int(netted), int(unmatched), source)
    return _Scan(
        daily, buckets, layout, timestamp_format, classified, ledger, first_date, last_date, observation_end, net
    )


def _quarantine(transactions: duckdb.DuckDBPyRelation, scan: _Scan) -> duckdb.DuckDBPyRelation:
    return _query(transactions, "tx", quarantine_sql(scan.classified_sql, scan.layout))


@dataclass(frozen=True)
class _Tables:
    """Names of the working tables prepare creates (and drops) in the relation's connection."""

    daily: str
    periods: str
    customers: str
    weekly: str

    @staticmethod
    def new() -> _Tables:
        stem = f"clv_prepare_{uuid.uuid4().hex}"
        return _Tables(f"{stem}_daily", f"{stem}_periods", f"{stem}_customers", f"{stem}_weekly")

    def drop(self, transactions: duckdb.DuckDBPyRelation, *names: str) -> None:
        """Drop the named tables (all of them by default); ``daily`` stands for its view and bucket tables."""
        names = names or (self.daily, self.periods, self.customers, self.weekly)
        if self.daily in names:
            _query(transactions, "tx", f"DROP VIEW IF EXISTS {self.daily}")
            prefix = _literal(f"{self.daily}_")
            sql = f"SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, {prefix})"
            buckets = _query(transactions, "tx", sql).fetchall()
            names = tuple(n for n in names if n != self.daily) + tuple(name for (name,) in buckets)
        for name in names:
            _query(transactions, "tx", f"DROP TABLE IF EXISTS {name}")


def _customers(
    transactions: duckdb.DuckDBPyRelation, scan: _Scan, windows: Windows, tables: _Tables, weekly: bool
) -> None:
    """Build the per-customer table (and, with ``weekly``, the weekly parts), one customer bucket at a time."""
    for bucket in range(scan.buckets):
        daily = f"{scan.daily}_{bucket}"
        periods_query, aggregates = periods_sql(daily, windows, scan.layout.has_order)
        periods = f"({periods_query})"
        if aggregates:
            tables.drop(transactions, tables.periods)
            _query(transactions, "tx", periods_query).create(tables.periods)
            periods = tables.periods
        customers = _query(transactions, "tx", customers_sql(daily, periods, windows, scan.net))
        _store(customers, tables.customers, bucket == 0)
        if weekly:
            parts = _query(transactions, "tx", weekly_parts_sql(periods, tables.customers, windows))
            _store(parts, tables.weekly, bucket == 0)


def _count(transactions: duckdb.DuckDBPyRelation, table: str) -> int:
    return int(_query(transactions, "tx", f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _fetch(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A pandas frame through Arrow: numeric columns without NULLs are handed over without a copy."""
    frame: pd.DataFrame = relation.to_arrow_table().to_pandas(split_blocks=True, self_destruct=True)
    return frame


FETCH_THROUGH_FILES = 2_000_000
"""Above this many customers the summaries reach pandas through Parquet files (see :func:`_fetch_all`)."""


@contextmanager
def _folder(staging: Path | None) -> Iterator[Path]:
    """The folder for the fetch's files: ``staging`` (the engine's), or, for a caller that gives none,
    a temporary one removed afterwards."""
    if staging is not None:
        yield staging
        return
    with tempfile.TemporaryDirectory(prefix="clv_prepare_") as folder:
        yield Path(folder)


def _fetch_all(
    transactions: duckdb.DuckDBPyRelation,
    tables: _Tables,
    queries: list[str],
    customers: int,
    staging: Path | None,
) -> list[pd.DataFrame]:
    """The per-customer frames, ordered as their queries say, with the working tables dropped.

    Up to :data:`FETCH_THROUGH_FILES` customers they are fetched straight through Arrow. Above it,
    DuckDB first writes each sorted result to a Parquet file in the ``staging`` folder (its sort
    spills within the memory limit), every working table is dropped, and only then are the files read
    into pandas: the frames never sit in memory next to DuckDB's customer table and sort buffers.
    """
    if customers <= FETCH_THROUGH_FILES:
        frames = [_fetch(_query(transactions, "tx", sql)) for sql in queries]
        tables.drop(transactions)
        return frames
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _folder(staging) as folder:
        paths = [folder / f"{k}.parquet" for k in range(len(queries))]
        (preserve,) = _query(transactions, "tx", "SELECT current_setting('preserve_insertion_order')").fetchall()[0]
        # The files must keep the ORDER BY: DuckDB's parallel writer keeps row order only when asked to.
        _query(transactions, "tx", "SET preserve_insertion_order = true")
        try:
            for sql, path in zip(queries, paths, strict=True):
                _query(transactions, "tx", f"COPY ({sql}) TO {_literal(str(path))} (FORMAT parquet)")
        finally:
            _query(transactions, "tx", f"SET preserve_insertion_order = {'true' if preserve else 'false'}")
        tables.drop(transactions)
        release_memory(lambda sql: _query(transactions, "tx", sql))  # not kept next to the frames read below
        frames = []
        for path in paths:
            frames.append(pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True))
            # pyarrow's allocator keeps the file's decoding buffers for reuse unless told otherwise.
            pa.default_memory_pool().release_unused()
        return frames


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
    The input is scanned once into a table of rows per (reason, customer, order, day) in the
    relation's DuckDB connection (which spills to disk past its memory limit); the ledger, the purchase
    periods and one per-customer table come from it, and the working tables are dropped before returning.
    ``staging``: the engine's folder for the files of a large fetch (a temporary folder without it).
    """
    tables = _Tables.new()
    try:
        scan = _scan(transactions, config, timestamp_format, column_names, source, tables.daily)
        calibration_end, observation_end = config.calibration_end, scan.observation_end
        check_calibration_end(config, scan.first_date, scan.last_date, source)
        unit_days = DAYS_PER_UNIT[config.time_unit]
        days = holdout_days(calibration_end, observation_end, config.period)
        windows = Windows(calibration_end, observation_end, calibration_end - dt.timedelta(days=days), config.period)
        _customers(transactions, scan, windows, tables, weekly=True)
        weekly = _query(transactions, "tx", weekly_sql(tables.weekly, tables.customers)).df()
        tables.drop(transactions, tables.daily, tables.periods)
        # Two frames fetched one after the other: no third, wider frame to split in pandas.
        duration_holdout = days / unit_days
        money = scan.layout.has_amounts
        queries = [
            full_sql(tables.customers, windows, unit_days, money),
            calibration_sql(tables.customers, windows, unit_days, money),
        ]
        full, calibration = _fetch_all(transactions, tables, queries, _count(transactions, tables.customers), staging)
    finally:
        tables.drop(transactions)
    calibration["duration_holdout"] = duration_holdout
    if calibration.empty:
        raise InputError(f"{source}: no customer made a purchase on or before calibration_end {calibration_end}")
    return PreparedData(
        calibration=calibration,
        full=full,
        quarantine=_quarantine(transactions, scan),
        ledger=scan.ledger,
        weekly=weekly,
        calibration_end=calibration_end,
        observation_end=observation_end,
        duration_holdout=duration_holdout,
        first_date=scan.first_date,
        last_date=scan.last_date,
        has_amounts=money,
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
    tables = _Tables.new()
    try:
        scan = _scan(transactions, config, timestamp_format, column_names, source, tables.daily)
        unit_days = DAYS_PER_UNIT[config.time_unit]
        windows = Windows(as_of, as_of, as_of, config.period)
        _customers(transactions, scan, windows, tables, weekly=False)
        tables.drop(transactions, tables.daily, tables.periods)
        (customers,) = _fetch_all(
            transactions,
            tables,
            [full_sql(tables.customers, windows, unit_days, scan.layout.has_amounts)],
            _count(transactions, tables.customers),
            staging,
        )
    finally:
        tables.drop(transactions)
    return AsOfData(
        customers=customers,
        quarantine=_quarantine(transactions, scan),
        ledger=scan.ledger,
        as_of=as_of,
        has_amounts=scan.layout.has_amounts,
        timestamp_format=scan.timestamp_format,
    )
