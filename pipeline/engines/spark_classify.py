"""Row classification in Spark SQL: how Spark reads timestamps and finds duplicates.

The rules themselves (reasons, ids, returns) are rendered by :mod:`pipeline.engines.sql`, as for DuckDB;
strptime formats become Spark datetime patterns; a text timestamp column without a configured format
gets one detected from the same sample of values as on DuckDB (:mod:`pipeline.engines.timestamps`);
duplicates follow :mod:`pipeline.engines.source_columns`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline.config import PrepareConfig
from pipeline.engines import sql
from pipeline.engines.source_columns import Layout
from pipeline.engines.sql import SPARK
from pipeline.engines.timestamps import OFFSET_PATTERN, detect_format, epoch_units_per_second
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "NATIVE_TIMESTAMPS",
    "classified_sql",
    "detected_format",
    "quarantine_sql",
    "spark_pattern",
    "unreadable_timestamp",
]

NATIVE_TIMESTAMPS = ("timestamp", "timestamp_ntz", "date")
_NUMERIC = {"Y": "yyyy", "m": "M", "d": "d", "H": "H", "M": "m", "S": "s", "I": "h", "y": "yy", "j": "D"}
_FIXED = {"Y": "yyyy", "m": "MM", "d": "dd", "H": "HH", "M": "mm", "S": "ss", "I": "hh", "y": "yy", "j": "DDD"}
_OTHER = {"f": "SSSSSS", "b": "MMM", "B": "MMMM", "a": "EEE", "A": "EEEE", "p": "a", "z": "XXX", "Z": "z"}


def spark_pattern(strptime_format: str) -> str:
    """A strptime format as a Spark datetime pattern (numbers parse with or without leading zeros, as
    in DuckDB, unless two numbers touch); ConfigError for a directive Spark cannot parse."""
    tokens = re.findall(r"%.|[^%]", strptime_format)
    out = []
    for i, token in enumerate(tokens):
        if token.startswith("%"):
            code = token[1]
            if code in _NUMERIC:
                touches = i + 1 < len(tokens) and tokens[i + 1][1:] in _NUMERIC and tokens[i + 1].startswith("%")
                touches = touches or (i > 0 and tokens[i - 1].startswith("%") and tokens[i - 1][1:] in _NUMERIC)
                out.append(_FIXED[code] if touches else _NUMERIC[code])
            elif code in _OTHER:
                out.append(_OTHER[code])
            elif code == "%":
                out.append("%")
            else:
                raise ConfigError(f"data.timestamp_format: {token} is not supported with engine.name 'spark'")
        elif token.isalpha() or token == "'":
            out.append("''" if token == "'" else f"'{token}'")
        else:
            out.append(token)
    return "".join(out)


_string = SPARK.string


_NAIVE = r"^[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"
_SPACED_NUMERIC_OFFSET = r"\s[+-][0-9]{2}(:?[0-9]{2})?$"
_SLASHES = r"^([0-9]{4})/([0-9]{1,2})/"
_WHITESPACE = r"\s+"
_UTC = r"\s*(Z|UTC)$"
_HHMM = r"([+-][0-9]{2})([0-9]{2})$"
_HH = r"([+-][0-9]{2})$"


def _text_timestamp(column: str) -> str:
    return sql.text_timestamp(SPARK, column)


def _timestamp_sql(dtype: str, timestamp_format: str | None, column: str = "`timestamp`") -> str:
    """The parsed timestamp; ``CAST(ts AS DATE)`` is its day in the session time zone (prepare.timezone)."""
    if dtype in NATIVE_TIMESTAMPS:
        return column
    text = _text_timestamp(column)
    per_second = epoch_units_per_second(timestamp_format)
    if per_second is not None:
        return sql.epoch_timestamp_sql(SPARK, text, per_second, "")
    if timestamp_format is not None:
        if re.search(r"\s", timestamp_format):
            # DuckDB's strptime reads a space of the format as any run of whitespace: so does this.
            text = f"regexp_replace({text}, {_string(_WHITESPACE)}, ' ')"
        return f"try_to_timestamp({text}, {_string(spark_pattern(timestamp_format))})"
    # What DuckDB's casts read: ISO dates and times ('-' or '/' separators), with an offset (+hh[:mm],
    # +hhmm, Z, UTC; DuckDB refuses a space before a numeric offset), or compact yyyymmdd. Offsets
    # are normalised to +hh:mm, which Spark's cast reads.
    iso = f"regexp_replace({text}, {_string(_SLASHES)}, '$1-$2-')"
    offset = f"regexp_replace({iso}, {_string(_UTC)}, '+00:00')"
    offset = f"regexp_replace({offset}, {_string(_HHMM)}, '$1:$2')"
    offset = f"regexp_replace({offset}, {_string(_HH)}, '$1:00')"
    return (
        f"CASE WHEN {text} RLIKE {_string(OFFSET_PATTERN)} AND NOT {text} RLIKE {_string(_SPACED_NUMERIC_OFFSET)} "
        f"THEN try_cast({offset} AS TIMESTAMP) "
        f"WHEN {text} RLIKE {_string(_NAIVE)} THEN try_cast({iso} AS TIMESTAMP) "
        f"WHEN {text} RLIKE '^[0-9]{{8}}$' THEN try_to_timestamp({text}, 'yyyyMMdd') END"
    )


_quoted = SPARK.identifier


def detected_format(spark: SparkSession, view: str, source: str) -> str | None:
    """The format to read the text ``timestamp`` column of ``view`` with: the same sample and the same
    choice as on DuckDB (run in the session zone of prepare.timezone)."""
    rows = spark.sql(sql.timestamp_sample_sql(SPARK, view, _timestamp_sql("string", None, "v"))).collect()
    return detect_format([str(row["v"]) for row in rows], all(bool(row["ok"]) for row in rows), source)


def _duplicate_sql(layout: Layout) -> str:
    if layout.duplicates is None:
        return "false"
    key = ", ".join(_quoted(c) for c in layout.duplicates.key)
    # Spark's row_number needs an order: among whole-row repeats any order is the same.
    order = layout.duplicates.order or layout.duplicates.key[:1]
    ordered = ", ".join(f"{_quoted(c)} ASC NULLS FIRST" for c in order)
    return f"row_number() OVER (PARTITION BY {key} ORDER BY {ordered}) > 1"


def classified_sql(
    view: str, columns: dict[str, str], layout: Layout, config: PrepareConfig, timestamp_format: str | None
) -> str:
    """Every input row with its parsed values and a quarantine ``reason`` (NULL when it is used)."""
    return sql.classified_sql(
        SPARK,
        columns,
        layout,
        config,
        raw_ts="`timestamp`" if columns["timestamp"] in NATIVE_TIMESTAMPS else _text_timestamp("`timestamp`"),
        ts=_timestamp_sql(columns["timestamp"], timestamp_format),
        duplicate=_duplicate_sql(layout),
        rows=view,
    )


def quarantine_sql(classified: str, layout: Layout) -> str:
    """The quarantined rows: every source column as text under its own name, and the ``reason``."""
    return sql.quarantine_sql(SPARK, classified, layout)


def unreadable_timestamp(spark: SparkSession, classified: str) -> str | None:
    """One timestamp that could not be read (the smallest), for the "no usable transactions" hint."""
    value = spark.sql(sql.unreadable_timestamp_sql(SPARK, classified)).collect()[0]["v"]
    return None if value is None else str(value)
