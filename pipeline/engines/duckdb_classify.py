"""Row classification in DuckDB: how DuckDB reads timestamps, finds duplicates and splits customers into buckets
of ranges of their ids.

The rules themselves (quarantine reasons in their order, ids, returns) are stated in
:mod:`pipeline.engines.rules` and rendered by :mod:`pipeline.engines.sql`, for Spark as well; duplicates
follow :mod:`pipeline.engines.source_columns`; a text timestamp column without a configured format gets
one from :mod:`pipeline.engines.timestamps` when DuckDB's own parsing cannot read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import duckdb

from pipeline.config import PrepareConfig
from pipeline.engines import sql
from pipeline.engines.source_columns import Layout
from pipeline.engines.sql import DUCKDB, duckdb_id
from pipeline.engines.timestamps import OFFSET_PATTERN, detect_format, epoch_units_per_second
from pipeline.errors import InputError

__all__ = [
    "INTEGER_TYPES",
    "PROBE_ROWS",
    "Buckets",
    "check_collation",
    "classified_sql",
    "counted_rows",
    "customer_buckets",
    "detected_format",
    "duplicate_sql",
    "is_native_timestamp",
    "parses_text",
    "plain_ids",
    "quarantine_sql",
    "timestamp_sql",
    "unreadable_timestamp",
]

_literal = DUCKDB.string
_quoted = DUCKDB.identifier


def _run(relation: duckdb.DuckDBPyRelation, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` with ``relation`` visible as table ``tx``."""
    result = relation.query("tx", sql)
    assert result is not None  # a SELECT always yields a relation
    rows: list[tuple[object, ...]] = result.fetchall()
    return rows


def check_collation(transactions: duckdb.DuckDBPyRelation) -> None:
    """InputError when the relation's connection compares text under another collation than DuckDB's own
    (``SET default_collation``): ids, order ids and duplicate keys that differ only in case (or accents) would be
    taken for one customer, one order or a duplicate line."""
    (collation,) = _run(transactions, "SELECT current_setting('default_collation')")[0]
    if str(collation).lower() not in ("", "binary", "c", "posix"):
        raise InputError(
            f"the DuckDB connection compares text under default_collation {str(collation)!r}, which would merge "
            "ids that differ in case or accents; use a connection without it"
        )


def is_native_timestamp(dtype: str) -> bool:
    return dtype == "DATE" or dtype.startswith("TIMESTAMP")


def _is_zoned_timestamp(dtype: str) -> bool:
    """A timestamp with a time zone, at microseconds (``TIMESTAMP WITH TIME ZONE``) or nanoseconds
    (``TIMESTAMPTZ_NS``: what pandas writes to Parquet for a tz-aware column)."""
    return dtype.startswith(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))


def _text_timestamp(column: str) -> str:
    return sql.text_timestamp(DUCKDB, column)


def timestamp_sql(dtype: str, timestamp_format: str | None, zone: str, column: str = '"timestamp"') -> str:
    """The date-time of ``column`` (of DuckDB type ``dtype``) as a TIMESTAMP, the wall time in ``zone``: a native
    timestamp as it is (one with a time zone converted), text by ``timestamp_format`` (strptime, or an epoch
    format) or, without one, by DuckDB's own reading (ISO, with or without an offset, and ``yyyymmdd``)."""
    tz = _literal(zone)
    if _is_zoned_timestamp(dtype):
        # At nanoseconds, first to microseconds (rounded): DuckDB cannot cast TIMESTAMPTZ_NS to TIMESTAMP, and
        # timezone() of it would stay at nanoseconds; so the wall time is the one a microsecond file gives.
        return f"timezone({tz}, CAST({column} AS TIMESTAMPTZ))"
    if is_native_timestamp(dtype):
        return f"CAST({column} AS TIMESTAMP)"
    text = _text_timestamp(column)
    per_second = epoch_units_per_second(timestamp_format)
    if per_second is not None:
        return sql.epoch_timestamp_sql(DUCKDB, text, per_second, zone)
    if timestamp_format is not None:
        parsed = f"try_strptime({text}, {_literal(timestamp_format)})"
        return f"timezone({tz}, {parsed})" if "%z" in timestamp_format or "%Z" in timestamp_format else parsed
    return (
        f"CASE WHEN regexp_matches({text}, {_literal(OFFSET_PATTERN)}) "
        f"THEN timezone({tz}, TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE coalesce(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, '%Y%m%d')) END"
    )


def detected_format(transactions: duckdb.DuckDBPyRelation, zone: str, source: str) -> str | None:
    """The format to read the text ``timestamp`` column with, from a sample of its distinct values (the
    :data:`~pipeline.engines.timestamps.SAMPLE_SIZE` with the smallest MD5, as Spark takes them), or None when
    DuckDB reads them itself (see :func:`pipeline.engines.timestamps.detect_format`)."""
    rows = _run(transactions, sql.timestamp_sample_sql(DUCKDB, "tx", timestamp_sql("VARCHAR", None, zone, "v")))
    return detect_format([str(v) for v, _ in rows], all(bool(ok) for _, ok in rows), source)


INTEGER_TYPES = frozenset(
    ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
)
"""DuckDB's integer types: their ids, as text, have no space and no dot."""

SAMPLE_ROWS = 250_000
"""About this many rows, all the rows of one customer in ``rows / SAMPLE_ROWS`` (by the hash of the id), give
the bounds of the customer buckets (:func:`customer_buckets`)."""


@dataclass(frozen=True)
class Buckets:
    """Customers split into ranges of their id, one pass over the input per range: bucket k holds the ids from
    ``bounds[k - 1]`` (included) to ``bounds[k]`` (excluded); the first also holds the rows without an id.

    ``key`` is the id as the buckets compare it: the column itself where every id is its own text under the id
    rule (a text column) or is an integer, so that a file sorted or clustered by customer is read a range of
    row groups at a time (DuckDB skips the others on their statistics); the id rule's text otherwise. Text is
    compared byte by byte (``COLLATE C``). ``bounds`` are SQL literals, ascending and distinct; none for one
    pass over every row."""

    key: str
    bounds: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.bounds) + 1

    def where(self, k: int) -> str:
        """The WHERE clause of bucket ``k`` over the input's columns ("" for one bucket)."""
        if not self.bounds:
            return ""
        conditions = []
        if k > 0:
            conditions.append(f"{self.key} >= {self.bounds[k - 1]}")
        if k < len(self.bounds):
            conditions.append(f"{self.key} < {self.bounds[k]}")
        condition = " AND ".join(conditions)
        return f"WHERE ({condition} OR {self.key} IS NULL)" if k == 0 else f"WHERE {condition}"


def _bounds(transactions: duckdb.DuckDBPyRelation, key: str, counts: tuple[int, ...], rows: int) -> list[list[object]]:
    """For each of ``counts``, the distinct (n-1)-quantiles of ``key`` over the rows of a sample of whole customers
    (every row when few), sorted by Python (text byte by byte, whatever the connection's collation): one scan."""
    every = max(1, rows // SAMPLE_ROWS)
    sample = f" WHERE hash({key}) % {every} = 0" if every > 1 else ""
    fractions = [f"{k}/{n}" for n in counts for k in range(1, n)]
    (found,) = _run(transactions, f"SELECT quantile_disc({key}, [{', '.join(fractions)}]) FROM tx{sample}")[0]
    found = found if isinstance(found, list) else [None] * len(fractions)
    bounds, start = [], 0
    for n in counts:
        bounds.append(sorted({v for v in found[start : start + n - 1] if v is not None}))
        start += n - 1
    return bounds


PROBE_ROWS = 2048
"""The rows read to tell whether the input is clustered by customer (:func:`_clustered`): one vector of DuckDB's,
which one thread reads from one row group, however many threads the connection has."""


def _clustered(transactions: duckdb.DuckDBPyRelation, key: str, bounds: list[object], text: bool) -> bool:
    """Whether the input looks clustered by customer: the ids of the first :data:`PROBE_ROWS` rows DuckDB reads lie
    between two neighbouring ``bounds``, or across one of them. Sorted or clustered by customer, a file's row groups
    each hold a narrow range of ids, and a pass over a range skips the others; ordered by time, any rows hold ids
    from every bucket and each pass reads every row group. Which row group comes first may vary with DuckDB's
    threads; it decides only how many passes are made, never what they give. ``text``: the key is text, compared
    byte by byte, as the buckets compare it."""
    k = "k COLLATE C" if text else "k"
    low, high = _run(transactions, f"SELECT min({k}), max({k}) FROM (SELECT {key} AS k FROM tx LIMIT {PROBE_ROWS})")[0]
    if low is None or high is None:
        return False
    return sum(1 for bound in bounds if cast(Any, low) < bound <= cast(Any, high)) <= 1


def plain_ids(transactions: duckdb.DuckDBPyRelation, dtype: str) -> bool:
    """Whether every id is its own text under the id rule (:func:`pipeline.engines.sql.plain_id_test`): an integer
    column's always are; a scan finds it for the others (0.045 s at 5M rows of Parquet, 0.75 s at 100M; ``bool_and``
    of the test took 1.8 s at 100M). Where they are, the ids are read without the rule's test (at 5M rows the
    per-day table took 0.83 s instead of 0.96 s)."""
    if dtype in INTEGER_TYPES:
        return True
    test = sql.plain_id_test(DUCKDB, "customer_id")
    (others,) = _run(transactions, f"SELECT count(*) FROM tx WHERE NOT ({test})")[0]
    return bool(others == 0)


_TEXT_FILES = re.compile(r"read_csv|read_json|sniff_csv|\.(csv|tsv|txt|json|jsonl|ndjson)\b", re.IGNORECASE)
"""In a relation's SQL: it parses text files, where a count of the rows is a scan of its own."""


def parses_text(transactions: duckdb.DuckDBPyRelation) -> bool:
    """Whether reading ``transactions`` parses text files (CSV, JSON), by the SQL of the relation (which
    DuckDB writes out without binding it again); True when that SQL cannot be had. Only the speed of
    :func:`counted_rows` depends on it, never its counts: a view over a CSV is not seen (it is then parsed once
    per count), a Parquet path with ``.json`` in it is (one scan for both counts)."""
    try:
        query = transactions.sql_query()
    except duckdb.Error:
        return True
    return bool(_TEXT_FILES.search(query))


def counted_rows(transactions: duckdb.DuckDBPyRelation, dtype: str) -> tuple[int, bool]:
    """The input's rows, and whether every id is its own text under the id rule (:func:`plain_ids`).

    Where they are, the passes read the ids without the rule's test, and the buckets compare the column itself.
    The test is made once here instead of once per pass: at 5M rows of Parquet it costs 0.10 s here and saves
    about as much in the one pass (measured: prepare 1.58-2.24 s against 1.66-1.70 s before, a CSV 3.93-4.05 s
    against 3.90-4.24 s). An integer column's ids are plain without a scan.

    The ids that are not plain are counted in a WHERE, which DuckDB evaluates as it reads a Parquet file (once
    per distinct value of a dictionary-encoded column), and the rows apart, from the file's metadata: at 50M
    rows 0.34-0.39 s against 0.73-0.76 s for a FILTER of the one count over every row. A source of text files (CSV) is
    read once for both counts instead: each count would parse the files."""
    if dtype in INTEGER_TYPES:
        (rows,) = _run(transactions, "SELECT count(*) FROM tx")[0]
        return cast(int, rows), True
    test = sql.plain_id_test(DUCKDB, "customer_id")
    if parses_text(transactions):
        query = f"SELECT count(*), count(*) FILTER (WHERE NOT ({test})) FROM tx"
    else:
        query = f"SELECT (SELECT count(*) FROM tx), (SELECT count(*) FROM tx WHERE NOT ({test}))"
    rows, others = _run(transactions, query)[0]
    return cast(int, rows), others == 0


def customer_buckets(
    transactions: duckdb.DuckDBPyRelation,
    dtype: str,
    n: int,
    rows: int,
    plain: bool | None = None,
    unclustered: int | None = None,
) -> Buckets:
    """About ``n`` buckets of customers with as many of the ``rows`` each (fewer when a few customers hold
    most rows), from a sample of the ids: one scan of them, after :func:`plain_ids` (``plain``, found when not
    given). ``unclustered``: about that many buckets instead where the input is not clustered by customer
    (:func:`_clustered`: one more look at its first rows), since each pass then reads the whole input."""
    column = '"customer_id"'
    if n <= 1:
        return Buckets(column)
    counts = (n,) if unclustered is None or unclustered >= n else (n, unclustered)
    if dtype in INTEGER_TYPES:
        key, sample = column, column
    elif plain_ids(transactions, dtype) if plain is None else plain:
        text = sql.plain_id_sql(DUCKDB, "customer_id")
        key, sample = (column if dtype == "VARCHAR" else text), text  # '' is below every bound, in the first bucket
    else:
        key = sample = duckdb_id("customer_id")
    found = _bounds(transactions, sample, counts, rows)
    clustered = len(found) == 1 or _clustered(transactions, sample, found[0], dtype not in INTEGER_TYPES)
    bounds = found[0] if clustered else found[1]
    if dtype in INTEGER_TYPES:
        return Buckets(column, tuple(str(b) for b in bounds))
    # Compared byte by byte, the order in which Python sorted the bounds, whatever collation the connection or
    # the column has: under another (NOCASE, a locale) the ranges would overlap. Row groups are still skipped.
    return Buckets(f"({key} COLLATE C)", tuple(_literal(str(b)) for b in bounds))


def duplicate_sql(layout: Layout) -> str:
    """Whether a row of ``tx`` is a duplicate under ``layout`` (a boolean expression; ``false`` when kept)."""
    if layout.duplicates is None:
        return "false"
    key = ", ".join(_quoted(c) for c in layout.duplicates.key)
    order = ", ".join(f"{_quoted(c)} ASC NULLS FIRST" for c in layout.duplicates.order)
    return f"row_number() OVER (PARTITION BY {key}{f' ORDER BY {order}' if order else ''}) > 1"


def classified_sql(
    columns: dict[str, str],
    layout: Layout,
    config: PrepareConfig,
    timestamp_format: str | None,
    where: str = "",
    plain_ids: bool = False,
) -> str:
    """Every input row (of table ``tx``) with its parsed values and a quarantine ``reason`` (NULL when used).

    ``where``: only the rows of one customer bucket (:meth:`Buckets.where`); a customer's rows, and rows
    repeated whole, always fall in the same bucket. Rows repeated on a ``duplicate_key`` may not (the key need
    not hold the customer), so they are found over all rows before the bucket is taken. ``plain_ids``: every
    id is its own text (:func:`plain_ids`), read without the id rule's test.
    """
    duplicate = duplicate_sql(layout)
    if layout.duplicates is not None and layout.duplicates.order:
        rows = f"(SELECT *, {duplicate} AS is_duplicate FROM tx) {where}"
        duplicate = "is_duplicate"
    else:
        rows = f"tx {where}"
    return sql.classified_sql(
        DUCKDB,
        columns,
        layout,
        config,
        raw_ts='"timestamp"' if is_native_timestamp(columns["timestamp"]) else _text_timestamp('"timestamp"'),
        ts=timestamp_sql(columns["timestamp"], timestamp_format, config.timezone),
        duplicate=duplicate,
        rows=rows,
        plain_ids=plain_ids,
    )


def quarantine_sql(classified: str, layout: Layout) -> str:
    """The quarantined rows: every source column as text under its own name, and the ``reason``."""
    return sql.quarantine_sql(DUCKDB, classified, layout)


def unreadable_timestamp(transactions: duckdb.DuckDBPyRelation, classified: str) -> str | None:
    """One timestamp that could not be read (the smallest), for the "no usable transactions" hint."""
    value = _run(transactions, sql.unreadable_timestamp_sql(DUCKDB, classified))[0][0]
    return None if value is None else str(value)
