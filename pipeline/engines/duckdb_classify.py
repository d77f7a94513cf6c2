"""Row classification in DuckDB: how DuckDB reads timestamps, finds duplicates and splits customers into buckets.

The rules themselves (quarantine reasons in their order, ids, returns) are stated in
:mod:`pipeline.engines.rules` and rendered by :mod:`pipeline.engines.sql`, for Spark as well; duplicates
follow :mod:`pipeline.engines.source_columns`; a text timestamp column without a configured format gets
one from :mod:`pipeline.engines.timestamps` when DuckDB's own parsing cannot read it.
"""

from __future__ import annotations

import duckdb

from pipeline.config import PrepareConfig
from pipeline.engines import sql
from pipeline.engines.source_columns import Layout
from pipeline.engines.sql import DUCKDB, duckdb_id
from pipeline.engines.timestamps import OFFSET_PATTERN, detect_format

__all__ = [
    "classified_sql",
    "detected_format",
    "duplicate_sql",
    "ids_are_plain",
    "is_native_timestamp",
    "quarantine_sql",
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


def is_native_timestamp(dtype: str) -> bool:
    return dtype == "DATE" or dtype.startswith("TIMESTAMP")


def _text_timestamp(column: str) -> str:
    return sql.text_timestamp(DUCKDB, column)


def _timestamp_sql(dtype: str, timestamp_format: str | None, zone: str, column: str = '"timestamp"') -> str:
    tz = _literal(zone)
    if dtype.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({tz}, {column})"
    if is_native_timestamp(dtype):
        return f"CAST({column} AS TIMESTAMP)"
    text = _text_timestamp(column)
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
    rows = _run(transactions, sql.timestamp_sample_sql(DUCKDB, "tx", _timestamp_sql("VARCHAR", None, zone, "v")))
    return detect_format([str(v) for v, _ in rows], all(bool(ok) for _, ok in rows), source)


INTEGER_TYPES = frozenset(
    ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
)
"""DuckDB's integer types: their ids, as text, have no space and no dot."""


def ids_are_plain(transactions: duckdb.DuckDBPyRelation, dtype: str) -> bool:
    """Whether every id of ``tx`` is its own text under the id rule (:func:`pipeline.engines.sql.plain_id_test`):
    always for an integer column (no scan), otherwise one scan of the ids."""
    if dtype in INTEGER_TYPES:
        return True
    test = sql.plain_id_test(DUCKDB, "customer_id")
    (plain,) = _run(transactions, f"SELECT coalesce(bool_and({test}), true) FROM tx")[0]
    return bool(plain)


def _bucket_filter(bucket: tuple[int, int], plain_ids: bool) -> str:
    """The rows of bucket k of n: those whose id hashes to k modulo n. With ``plain_ids`` (every id is its own
    text, :func:`ids_are_plain`) the id's text is hashed without the id rule's tests, which give the same key
    there: at 100M rows in 6 passes, each pass reads the ids in 0.8 s instead of 1.9 s."""
    k, n = bucket
    if n == 1:
        return ""
    key = sql.plain_id_sql(DUCKDB, "customer_id") if plain_ids else duckdb_id("customer_id")
    return f"WHERE hash({key}) % {n} = {k}"


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
    bucket: tuple[int, int] = (0, 1),
    plain_ids: bool = False,
) -> str:
    """Every input row (of table ``tx``) with its parsed values and a quarantine ``reason`` (NULL when used).

    ``bucket`` (k, n): only the rows whose customer id hashes to k modulo n (all rows when n is 1); a
    customer's rows, and rows repeated whole, always fall in the same bucket. ``plain_ids``: every id is its
    own text (:func:`ids_are_plain`), so the bucket is found from the id's text alone. Rows repeated on a
    ``duplicate_key`` may not (the key need not hold the customer), so they are found over all rows
    before the bucket is taken.
    """
    duplicate = duplicate_sql(layout)
    if layout.duplicates is not None and layout.duplicates.order:
        rows = f"(SELECT *, {duplicate} AS is_duplicate FROM tx) {_bucket_filter(bucket, plain_ids)}"
        duplicate = "is_duplicate"
    else:
        rows = f"tx {_bucket_filter(bucket, plain_ids)}"
    return sql.classified_sql(
        DUCKDB,
        columns,
        layout,
        config,
        raw_ts='"timestamp"' if is_native_timestamp(columns["timestamp"]) else _text_timestamp('"timestamp"'),
        ts=_timestamp_sql(columns["timestamp"], timestamp_format, config.timezone),
        duplicate=duplicate,
        rows=rows,
    )


def quarantine_sql(classified: str, layout: Layout) -> str:
    """The quarantined rows: every source column as text under its own name, and the ``reason``."""
    return sql.quarantine_sql(DUCKDB, classified, layout)


def unreadable_timestamp(transactions: duckdb.DuckDBPyRelation, classified: str) -> str | None:
    """One timestamp that could not be read (the smallest), for the "no usable transactions" hint."""
    value = _run(transactions, sql.unreadable_timestamp_sql(DUCKDB, classified))[0][0]
    return None if value is None else str(value)
