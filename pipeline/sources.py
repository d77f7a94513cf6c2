"""The input edge: open the configured transactions as a lazy DuckDB relation.

The relation has three columns, ``customer_id``, ``timestamp`` and ``amount``, renamed from the
config's column mapping but not yet parsed: parsing and quarantine happen in ``prepare``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.config import DataConfig
from pipeline.errors import InputError

CDNOW_FILES = {"cdnow_master": "CDNOW_master.txt", "cdnow_sample": "CDNOW_sample.txt"}


@dataclass(frozen=True)
class Transactions:
    """Raw transactions: the relation, where they came from and a fingerprint of the bytes read."""

    relation: duckdb.DuckDBPyRelation
    description: str
    fingerprint: str
    timestamp_format: str | None


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _bundled_cdnow(con: duckdb.DuckDBPyConnection, source: str) -> Transactions:
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
    relation = con.from_df(frame[["customer_id", "timestamp", "amount"]])
    return Transactions(relation, f"lifetimes:{CDNOW_FILES[source]}", fingerprint, "%Y%m%d")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise InputError(f"{path}: folder holds no .parquet files")
        return files
    if not path.exists():
        raise InputError(f"{path}: input file not found")
    return [path]


def open_transactions(con: duckdb.DuckDBPyConnection, data: DataConfig) -> Transactions:
    """Open the configured source; InputError names the file or column that is wrong."""
    if data.source in CDNOW_FILES:
        return _bundled_cdnow(con, data.source)
    assert data.path is not None  # guaranteed by DataConfig
    files = _files(data.path)
    try:
        if data.source == "csv":
            if data.csv.encoding.lower().replace("-", "") not in ("utf8", "utf16", "latin1"):
                raise InputError(f"data.csv.encoding: unsupported encoding {data.csv.encoding!r}")
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
        raise InputError(f"{data.path}: cannot read {data.source}: {_first_line(exc)}") from None
    mapping = data.columns
    present = set(relation.columns)
    for role, column in (
        ("customer_id", mapping.customer_id),
        ("timestamp", mapping.timestamp),
        ("amount", mapping.amount),
    ):
        if column not in present:
            raise InputError(
                f"{data.path}: missing required column '{column}' (data.columns.{role}); "
                f"found: {', '.join(relation.columns)}"
            )
    relation = relation.select(
        duckdb.ColumnExpression(mapping.customer_id).alias("customer_id"),
        duckdb.ColumnExpression(mapping.timestamp).alias("timestamp"),
        duckdb.ColumnExpression(mapping.amount).alias("amount"),
    )
    return Transactions(relation, str(data.path), _fingerprint(files), data.timestamp_format)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
