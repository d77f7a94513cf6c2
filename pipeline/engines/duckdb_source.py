"""The input edge: open the configured transactions as a lazy DuckDB relation.

The relation's columns are renamed from the config's mapping to ``customer_id``, ``timestamp``,
``amount`` (or ``quantity`` and ``unit_price``; neither for an event feed) and, when mapped,
``order_id``; every other source column comes along under a private alias (see
:mod:`pipeline.engines.inputs`), for duplicate detection and the quarantine file. Nothing is parsed yet:
parsing and quarantine happen in ``prepare``. DuckDB reads the files itself, out of core.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.config import DataConfig, EngineConfig
from pipeline.engines.csv_encoding import utf8_files
from pipeline.engines.inputs import (
    CDNOW_FILES,
    NOT_IN_FORMAT,
    NUMBER_ROLES,
    bundled_cdnow_frame,
    check_csv_header,
    files,
    files_fingerprint,
    first_line,
    number_format,
    ragged_line,
    renamed_columns,
)
from pipeline.errors import InputError

__all__ = ["Transactions", "connect", "open_transactions", "release_memory"]


@dataclass(frozen=True)
class Transactions:
    """Raw transactions: the relation, where they came from and a fingerprint of the bytes read.

    ``column_names``: relation column -> source column name, in the source's order; pass it to
    :func:`pipeline.engines.duckdb_prepare.prepare` (for ``prepare.duplicate_key`` and the quarantine's
    column names).
    """

    relation: duckdb.DuckDBPyRelation
    description: str
    fingerprint: str
    timestamp_format: str | None
    column_names: dict[str, str] = field(default_factory=dict)


def _bundled_cdnow(con: duckdb.DuckDBPyConnection, source: str) -> Transactions:
    frame, description, fingerprint, timestamp_format = bundled_cdnow_frame(source)
    return Transactions(con.from_df(frame), description, fingerprint, timestamp_format)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _open_duckdb_table(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> duckdb.DuckDBPyRelation:
    literal = str(path).replace("'", "''")
    try:
        con.execute(f"ATTACH '{literal}' AS clv_source (READ_ONLY)")
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot open DuckDB database: {first_line(exc)}") from None
    try:
        return con.table(f"clv_source.{_quote(table)}")
    except duckdb.Error:
        raise InputError(f"{path}: no table {table!r} (data.table)") from None


_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
"""The connections :func:`connect` made that are still alive."""


@atexit.register
def _close_open_connections() -> None:
    """At exit, close the connections still open: DuckDB removes its spill files as a connection closes, and the
    ``clv`` process ends without running destructors (:mod:`pipeline.interpreter`)."""
    for con in list(_OPEN):
        with contextlib.suppress(duckdb.Error):
            con.close()


def connect(engine: EngineConfig) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the configured memory limit, threads and spill folder.

    Insertion order is not preserved (every query that needs an order says ORDER BY): it lets DuckDB
    build large intermediate tables without holding them back in order, which lowers peak memory.
    """
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{engine.memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if engine.threads is not None:
        con.execute(f"SET threads = {engine.threads}")
    if engine.temp_directory is not None:
        con.execute(f"SET temp_directory = '{str(engine.temp_directory).replace(chr(39), chr(39) * 2)}'")
    _OPEN.add(con)
    return con


def release_memory(sql: Callable[[str], duckdb.DuckDBPyRelation | None]) -> None:
    """Hand the memory DuckDB has freed back to the system: its allocator otherwise keeps what a large query
    freed (at 10M rows, prepare's working tables: about 0.5 GB) for the life of the connection.

    ``sql`` runs a statement on the connection (``con.sql``, or a relation's ``query``). Lowering
    ``allocator_bulk_deallocation_flush_threshold`` to 0 flushes the allocator; the setting is then put back,
    so later queries run as before. Query results are not touched."""
    name = "allocator_bulk_deallocation_flush_threshold"
    setting = sql(f"SELECT current_setting('{name}')")
    assert setting is not None
    (value,) = setting.fetchall()[0]
    sql(f"SET {name} = '0MB'")
    sql(f"SET {name} = '{value}'")


def open_transactions(
    con: duckdb.DuckDBPyConnection, data: DataConfig, temp_directory: Path | None = None
) -> Transactions:
    """Open the configured source; InputError names the file or column that is wrong. ``temp_directory``:
    where a CSV in another encoding than UTF-8 is transcoded to (the system's temporary folder without it)."""
    if data.source in CDNOW_FILES:
        return _bundled_cdnow(con, data.source)
    if data.source == "sql":
        assert data.query is not None  # guaranteed by DataConfig
        try:
            relation = con.sql(data.query)
        except duckdb.Error as exc:
            raise InputError(f"data.query: {first_line(exc)}") from None
        if relation is None:
            raise InputError("data.query: the query returns no rows (is it a SELECT?)")
        digest = hashlib.sha256(data.query.encode()).hexdigest()
        return _mapped(relation, data, "data.query", f"query:{digest}")
    assert data.path is not None  # guaranteed by DataConfig
    if data.source == "duckdb":
        assert data.table is not None
        if not data.path.is_file():
            raise InputError(f"{data.path}: DuckDB database file not found")
        relation = _open_duckdb_table(con, data.path, data.table)
        return _mapped(relation, data, f"{data.path}:{data.table}", files_fingerprint([data.path]))
    found = files(data.path, data.source)
    try:
        if data.source == "csv":
            utf8 = utf8_files(found, data.csv.encoding, temp_directory, con)
            if data.csv.header:
                check_csv_header(found, data)
            relation = con.read_csv(
                [str(f) for f in utf8],  # type: ignore[arg-type]  # DuckDB reads a list of files
                delimiter=data.csv.delimiter,
                header=data.csv.header,
                all_varchar=True,
            )
        else:
            relation = con.read_parquet([str(f) for f in found])
    except duckdb.Error as exc:
        message = first_line(exc)
        if "Invalid unicode" in str(exc):
            line = message.split("Line:")[-1].strip() if "Line:" in message else "?"
            message = f"not {data.csv.encoding} text (line {line}); set data.csv.encoding"
        elif data.source == "csv" and "sniffing" in message and (ragged := ragged_line(found, data)) is not None:
            raise InputError(ragged) from None
        raise InputError(f"{data.path}: cannot read {data.source}: {message}") from None
    return _mapped(relation, data, str(data.path), files_fingerprint(found))


def _rewritten(name: str, column: duckdb.Expression, data: DataConfig) -> duckdb.Expression:
    """A number column read with the CSV's separators (:func:`pipeline.engines.inputs.number_format`)."""
    form = number_format(data)
    if name not in NUMBER_ROLES or form is None:
        return column
    shaped = duckdb.FunctionExpression("regexp_full_match", column, duckdb.ConstantExpression(form.pattern))
    rewritten = column
    for old, new in form.replacements:
        rewritten = duckdb.FunctionExpression(
            "replace", rewritten, duckdb.ConstantExpression(old), duckdb.ConstantExpression(new)
        )
    refused = duckdb.FunctionExpression("concat", column, duckdb.ConstantExpression(NOT_IN_FORMAT))
    missing = duckdb.ConstantExpression(None)
    return duckdb.CaseExpression(shaped, rewritten).when(column.isnull(), missing).otherwise(refused)


def _mapped(relation: duckdb.DuckDBPyRelation, data: DataConfig, description: str, fingerprint: str) -> Transactions:
    """Rename the mapped columns to the standard names and the others to their private aliases; a
    missing column is an InputError."""
    renamed = renamed_columns(list(relation.columns), data, description)
    columns = [_rewritten(name, duckdb.ColumnExpression(column), data).alias(name) for name, column in renamed.items()]
    return Transactions(relation.select(*columns), description, fingerprint, data.timestamp_format, renamed)
