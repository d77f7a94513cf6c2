"""Customer and order ids as text, the same in both engines.

An id is read as text; ASCII spaces at either end are removed (nothing else: a no-break space is part
of the id); then an id that looks like a whole float, ``^[+-]?[0-9]+\\.0+$`` (``17850.0``, which pandas
writes for an integer column with empty cells), loses its ``.0...`` part, so that ``17850.0`` and
``17850`` are one customer (scoring sends integer ids as ``17850``). Nothing else is rewritten:
``1.5e3``, ``017850`` and ``17850.5`` stay as they are. An empty id is missing.

Both dialects are written here side by side so that they stay identical: the regex is anchored with
``\\z`` (end of text) because Java's ``$``, in Spark, also matches before a final line break.
"""

from __future__ import annotations

__all__ = ["FLOAT_ID_PATTERN", "ascii_trimmed", "duckdb_id", "spark_id"]

FLOAT_ID_PATTERN = r"^[+-]?[0-9]+\.0+$"
"""The documented rule; both engines use it with ``\\z`` for ``$``."""
_ANCHORED = FLOAT_ID_PATTERN.removesuffix("$") + r"\z"


def ascii_trimmed(text: str) -> str:
    """DuckDB: ``text`` without ASCII spaces at either end, as Spark's ``trim`` (DuckDB's one-argument
    trim also removes Unicode spaces). Trimming only where there is a space at an end costs half of
    trimming every id."""
    return f"CASE WHEN {text} LIKE ' %' OR {text} LIKE '% ' THEN trim({text}, ' ') ELSE {text} END"


def duckdb_id(column: str) -> str:
    """DuckDB: the id in ``column`` as compared and reported (NULL when empty). The LIKE test first
    spares the regex on ids that cannot match."""
    text = ascii_trimmed(f"CAST({column} AS VARCHAR)")
    return (
        f"NULLIF(CASE WHEN {text} LIKE '%.%0' AND regexp_matches({text}, '{_ANCHORED}') "
        f"THEN split_part({text}, '.', 1) ELSE {text} END, '')"
    )


def spark_id(column: str) -> str:
    """Spark SQL: the same as :func:`duckdb_id` (Spark's ``trim`` removes ASCII spaces only; backslashes
    are doubled because Spark unescapes them in string literals)."""
    text = f"trim(CAST({column} AS STRING))"
    pattern = _ANCHORED.replace("\\", "\\\\")
    return (
        f"NULLIF(CASE WHEN {text} LIKE '%.%0' AND {text} RLIKE '{pattern}' "
        f"THEN split_part({text}, '.', 1) ELSE {text} END, '')"
    )
