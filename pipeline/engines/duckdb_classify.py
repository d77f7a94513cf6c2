"""Row classification in DuckDB: every input row with its parsed values and a quarantine reason.

The row rules of the prepare stage (see :mod:`pipeline.engines.duckdb_prepare` and data/README.md), in the order a
row meets them: missing or empty customer id, missing, unreadable or out-of-range timestamp, unusable
or too large amount (feeds with amounts only), duplicate, zero amount and dropped return (when
configured), after the observation end. :mod:`pipeline.engines.spark_classify` is the same in Spark SQL.

Ids are compared as :mod:`pipeline.engines.ids` says; duplicates as :mod:`pipeline.engines.source_columns` says;
a text timestamp column without a configured format gets one from :mod:`pipeline.engines.timestamps` when
DuckDB's own parsing cannot read it.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipeline.config import PrepareConfig
from pipeline.engines.ids import duckdb_id
from pipeline.engines.source_columns import REASON, Layout, quarantine_names
from pipeline.engines.timestamps import OFFSET_PATTERN, SAMPLE_SIZE, detect_format

__all__ = [
    "MAX_ABS_AMOUNT",
    "classified_sql",
    "detected_format",
    "is_native_timestamp",
    "quarantine_sql",
    "unreadable_timestamp",
]

MAX_ABS_AMOUNT = 1e13
"""Amounts this large are always errors (and beyond what exact sums of 1/10,000 units hold in a BIGINT row)."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _run(relation: duckdb.DuckDBPyRelation, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` with ``relation`` visible as table ``tx``."""
    result = relation.query("tx", sql)
    assert result is not None  # a SELECT always yields a relation
    rows: list[tuple[object, ...]] = result.fetchall()
    return rows


def is_native_timestamp(dtype: str) -> bool:
    return dtype == "DATE" or dtype.startswith("TIMESTAMP")


def _text_timestamp(column: str) -> str:
    return f"NULLIF(trim(CAST({column} AS VARCHAR)), '')"


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
    default = _timestamp_sql("VARCHAR", None, zone, "v")
    rows = _run(
        transactions,
        f"""SELECT v, {default} IS NOT NULL FROM (
                SELECT DISTINCT {_text_timestamp('"timestamp"')} AS v FROM tx
            ) WHERE v IS NOT NULL ORDER BY md5(v), v LIMIT {SAMPLE_SIZE}""",
    )
    return detect_format([str(v) for v, _ in rows], all(bool(ok) for _, ok in rows), source)


def _bucket_filter(bucket: tuple[int, int]) -> str:
    k, n = bucket
    return "" if n == 1 else f"WHERE hash({duckdb_id('customer_id')}) % {n} = {k}"


def _duplicate_sql(layout: Layout) -> str:
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
) -> str:
    """Every input row (of table ``tx``) with its parsed values and a quarantine ``reason`` (NULL when used).

    ``bucket`` (k, n): only the rows whose customer id hashes to k modulo n (all rows when n is 1); a
    customer's rows, and rows repeated whole, always fall in the same bucket. Rows repeated on a
    ``duplicate_key`` may not (the key need not hold the customer), so they are found over all rows
    before the bucket is taken.
    """
    has_order = layout.has_order
    if not layout.has_amounts:
        value = "CAST(0 AS DOUBLE)"  # an event feed: every row is a purchase, and nothing is spent
    elif "quantity" in columns:
        value = "TRY_CAST(quantity AS DOUBLE) * TRY_CAST(unit_price AS DOUBLE)"
    else:
        value = "TRY_CAST(amount AS DOUBLE)"
    order = duckdb_id("order_id") if has_order else "NULL"
    cancelled = (
        f"coalesce(starts_with({order}, {_literal(config.cancel_prefix)}), false)"
        if has_order and config.cancel_prefix and layout.has_amounts
        else "false"
    )
    raw_ts = '"timestamp"' if is_native_timestamp(columns["timestamp"]) else _text_timestamp('"timestamp"')
    rules = [
        "WHEN cid IS NULL THEN 'missing_customer_id'",
        "WHEN raw_ts IS NULL THEN 'missing_timestamp'",
        "WHEN ts IS NULL THEN 'invalid_timestamp'",
    ]
    if layout.has_amounts:
        rules += [
            "WHEN raw_value IS NULL OR NOT isfinite(raw_value) THEN 'invalid_amount'",
            f"WHEN abs(raw_value) >= {MAX_ABS_AMOUNT!r} THEN 'amount_too_large'",
        ]
    rules.append(f"WHEN CAST(ts AS DATE) < DATE '{config.min_date}' THEN 'timestamp_out_of_range'")
    if config.max_amount is not None and layout.has_amounts:
        rules.append(f"WHEN abs(raw_value) > {float(config.max_amount)!r} THEN 'amount_too_large'")
    rules.append("WHEN is_duplicate THEN 'duplicate'")
    if config.zero_amount == "quarantine" and layout.has_amounts:
        rules.append("WHEN raw_value = 0 THEN 'zero_amount'")
    if config.returns == "drop" and layout.has_amounts:
        rules.append("WHEN is_return THEN 'return_dropped'")
    # Without an observation end, a date after today is still a typo, not the end of the holdout.
    observation_end = config.observation_end or dt.date.today()
    rules.append(f"WHEN CAST(ts AS DATE) > DATE '{observation_end}' THEN 'after_observation_end'")
    raw = ", ".join(_quoted(c) for c in columns)
    duplicate = _duplicate_sql(layout)
    if layout.duplicates is not None and layout.duplicates.order:
        rows = f"(SELECT *, {duplicate} AS is_duplicate FROM tx) {_bucket_filter(bucket)}"
        duplicate = "is_duplicate"
    else:
        rows = f"tx {_bucket_filter(bucket)}"
    return f"""
        SELECT *,
               CASE WHEN is_return THEN -abs(raw_value) ELSE raw_value END AS value,
               CASE {" ".join(rules)} ELSE NULL END AS reason
        FROM (
            SELECT *, (raw_value < 0 OR {cancelled}) AS is_return
            FROM (
                SELECT {raw},
                       {duckdb_id("customer_id")} AS cid,
                       {raw_ts} AS raw_ts,
                       {_timestamp_sql(columns["timestamp"], timestamp_format, config.timezone)} AS ts,
                       {value} AS raw_value,
                       {order} AS order_key,
                       {duplicate} AS is_duplicate
                FROM {rows}
            )
        )
    """


def quarantine_sql(classified: str, layout: Layout) -> str:
    """The quarantined rows: every source column as text under its own name, and the ``reason``."""
    names = quarantine_names(layout.names)
    raw = ", ".join(f"CAST({_quoted(c)} AS VARCHAR) AS {_quoted(name)}" for c, name in names.items())
    return f"SELECT {raw}, reason AS {REASON} FROM ({classified}) WHERE reason IS NOT NULL"


def unreadable_timestamp(transactions: duckdb.DuckDBPyRelation, classified: str) -> str | None:
    """One timestamp that could not be read (the smallest), for the "no usable transactions" hint."""
    rows = _run(
        transactions, f"SELECT min(CAST(raw_ts AS VARCHAR)) FROM ({classified}) WHERE reason = 'invalid_timestamp'"
    )
    value = rows[0][0]
    return None if value is None else str(value)
