"""The input edge: open the configured transactions as a lazy DuckDB relation.

The relation's columns are renamed from the config's mapping to ``customer_id``, ``timestamp``,
``amount`` (or ``quantity`` and ``unit_price``; neither for an event feed) and, when mapped,
``order_id``; every other source column comes along under a private alias (see
:mod:`pipeline.engines.source_columns`), for duplicate detection and the quarantine file. Nothing is parsed
yet: parsing and quarantine happen in ``prepare``. DuckDB reads the files itself, out of core.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.config import BusinessConfig, DataConfig, EngineConfig
from pipeline.engines.source_columns import private_alias
from pipeline.errors import InputError

CDNOW_FILES = {"cdnow_master": "CDNOW_master.txt", "cdnow_sample": "CDNOW_sample.txt"}


@dataclass(frozen=True)
class Transactions:
    """Raw transactions: the relation, where they came from and a fingerprint of the bytes read.

    ``column_names``: relation column -> source column name, in the source's order; pass it to
    :func:`pipeline.engines.duckdb_prepare.prepare` (for ``prepare.duplicate_key`` and the quarantine's column names).
    """

    relation: duckdb.DuckDBPyRelation
    description: str
    fingerprint: str
    timestamp_format: str | None
    column_names: dict[str, str] = field(default_factory=dict)


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def bundled_cdnow_frame(source: str) -> tuple[pd.DataFrame, str, str, str]:
    """The bundled CDNOW file as text columns customer_id, timestamp, amount; its description,
    fingerprint and timestamp format."""
    resource = importlib.resources.files("lifetimes") / "datasets" / CDNOW_FILES[source]
    with importlib.resources.as_file(resource) as path:
        if source == "cdnow_master":
            names = ["customer_id", "timestamp", "cds", "amount"]
            frame = pd.read_csv(path, sep=r"\s+", skiprows=1, header=None, names=names, dtype=str)
        else:
            # The 1/10 sample has no header: master id, sample id, date, cds, dollars. Ids are sample ids.
            names = ["master_id", "customer_id", "timestamp", "cds", "amount"]
            frame = pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype=str)
        fingerprint = _fingerprint([path])
    return frame[["customer_id", "timestamp", "amount"]], f"lifetimes:{CDNOW_FILES[source]}", fingerprint, "%Y%m%d"


def _bundled_cdnow(con: duckdb.DuckDBPyConnection, source: str) -> Transactions:
    frame, description, fingerprint, timestamp_format = bundled_cdnow_frame(source)
    return Transactions(con.from_df(frame), description, fingerprint, timestamp_format)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise InputError(f"{path}: folder holds no .parquet files")
        return files
    if not path.exists():
        raise InputError(f"{path}: input file not found")
    return [path]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _open_duckdb_table(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> duckdb.DuckDBPyRelation:
    literal = str(path).replace("'", "''")
    try:
        con.execute(f"ATTACH '{literal}' AS clv_source (READ_ONLY)")
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot open DuckDB database: {_first_line(exc)}") from None
    try:
        return con.table(f"clv_source.{_quote(table)}")
    except duckdb.Error:
        raise InputError(f"{path}: no table {table!r} (data.table)") from None


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
    return con


def open_transactions(con: duckdb.DuckDBPyConnection, data: DataConfig) -> Transactions:
    """Open the configured source; InputError names the file or column that is wrong."""
    if data.source in CDNOW_FILES:
        return _bundled_cdnow(con, data.source)
    if data.source == "sql":
        assert data.query is not None  # guaranteed by DataConfig
        try:
            relation = con.sql(data.query)
        except duckdb.Error as exc:
            raise InputError(f"data.query: {_first_line(exc)}") from None
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
        return _mapped(relation, data, f"{data.path}:{data.table}", _fingerprint([data.path]))
    files = _files(data.path)
    if any(f.stat().st_size == 0 for f in files):
        raise InputError(f"{data.path}: the file is empty")
    try:
        if data.source == "csv":
            if data.csv.encoding.lower().replace("-", "") not in ("utf8", "utf16", "latin1"):
                raise InputError(f"data.csv.encoding: unsupported encoding {data.csv.encoding!r}")
            if data.csv.header:
                _check_csv_header(files[0], data)
            relation = con.read_csv(
                [str(f) for f in files],  # type: ignore[arg-type]  # DuckDB reads a list of files
                delimiter=data.csv.delimiter,
                header=data.csv.header,
                all_varchar=True,
                encoding=data.csv.encoding,
            )
        else:
            relation = con.read_parquet([str(f) for f in files])
    except duckdb.Error as exc:
        message = _first_line(exc)
        if "Invalid unicode" in str(exc):
            line = message.split("Line:")[-1].strip() if "Line:" in message else "?"
            message = f"not {data.csv.encoding} text (line {line}); set data.csv.encoding"
        raise InputError(f"{data.path}: cannot read {data.source}: {message}") from None
    return _mapped(relation, data, str(data.path), _fingerprint(files))


def _check_csv_header(path: Path, data: DataConfig) -> None:
    """DuckDB silently renames repeated header names (amount, amount_1): refuse them instead."""
    try:
        with path.open(encoding=data.csv.encoding, errors="replace", newline="") as handle:
            header = next(csv.reader(handle, delimiter=data.csv.delimiter), [])
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: duplicate column name(s) in the header: {', '.join(repeated)}")


def mapped_columns(columns: list[str], data: DataConfig, description: str) -> dict[str, str]:
    """Standard name -> input column for every mapped role; InputError for a missing or repeated column."""
    mapping = data.columns
    roles = {
        "customer_id": mapping.customer_id,
        "timestamp": mapping.timestamp,
        "amount": None if mapping.uses_quantity else mapping.amount,
        "quantity": mapping.quantity,
        "unit_price": mapping.unit_price,
        "order_id": mapping.order_id,
    }
    if len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError(f"{description}: duplicate column name(s): {', '.join(duplicated)}")
    selected = {}
    for role, column in roles.items():
        if column is None:
            continue
        if column not in columns:
            raise InputError(
                f"{description}: missing required column '{column}' (data.columns.{role}); found: {', '.join(columns)}"
            )
        selected[role] = column
    return selected


def renamed_columns(columns: list[str], data: DataConfig, description: str) -> dict[str, str]:
    """Relation column -> source column, in the source's order: the mapped roles under their standard
    names, every other source column under its private alias; InputError for a missing column."""
    selected = mapped_columns(columns, data, description)
    renamed: dict[str, str] = {}
    for column in columns:
        roles = [role for role, mapped in selected.items() if mapped == column]
        renamed.update(dict.fromkeys(roles, column) if roles else {private_alias(column): column})
    return renamed


def _mapped(relation: duckdb.DuckDBPyRelation, data: DataConfig, description: str, fingerprint: str) -> Transactions:
    """Rename the mapped columns to the standard names and the others to their private aliases; a
    missing column is an InputError."""
    renamed = renamed_columns(list(relation.columns), data, description)
    columns = [duckdb.ColumnExpression(column).alias(name) for name, column in renamed.items()]
    return Transactions(relation.select(*columns), description, fingerprint, data.timestamp_format, renamed)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_cac(business: BusinessConfig, customers: pd.Series) -> pd.Series | None:
    """Acquisition cost per customer (indexed by customer_id) from the business config, or None."""
    if business.cac is not None:
        return pd.Series(business.cac, index=pd.Index(customers.to_numpy(), name="customer_id"), name="cac")
    if business.cac_file is None:
        return None
    path = business.cac_file
    if not path.is_file():
        raise InputError(f"{path}: CAC file not found (business.cac_file)")
    try:
        frame = pd.read_csv(path, dtype={"customer_id": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read CAC file: {str(exc).splitlines()[0]}") from None
    if "customer_id" not in frame.columns or not ({"cac", "channel"} & set(frame.columns)):
        raise InputError(f"{path}: needs columns customer_id and cac, or customer_id and channel")
    repeated = frame["customer_id"][frame["customer_id"].duplicated()]
    if not repeated.empty:
        raise InputError(f"{path}: customer_id {repeated.iloc[0]!r} appears more than once")
    if "cac" in frame.columns:
        cac = pd.to_numeric(frame["cac"], errors="coerce")
        if cac.isna().any() or (cac < 0).any():
            raise InputError(f"{path}: column 'cac' must hold non-negative numbers")
    else:
        unknown = sorted(set(frame["channel"].astype(str)) - set(business.cac_by_channel))
        if unknown:
            raise InputError(f"{path}: channel(s) without a cost in business.cac_by_channel: {', '.join(unknown[:5])}")
        cac = frame["channel"].astype(str).map(business.cac_by_channel).astype(float)
    return pd.Series(cac.to_numpy(), index=pd.Index(frame["customer_id"], name="customer_id"), name="cac")
