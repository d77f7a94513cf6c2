"""The output edge: write the job's tables and summary JSON to local files."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.engines.prepared import QuarantinedRows
from pipeline.errors import InputError


def _writable_dir(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output {directory}: cannot create directory: {exc.strerror}") from None
    return directory


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_tables(directory: Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """Write each table as ``<name>.parquet`` in ``directory``."""
    target = _writable_dir(directory)
    written = []
    for name, frame in tables.items():
        path = target / f"{name}.parquet"
        with _write_errors(path):
            frame.to_parquet(path, index=False)
        written.append(path)
    return written


def write_relation(relation: QuarantinedRows | duckdb.DuckDBPyRelation, path: Path) -> Path:
    """Write a (lazy) DuckDB relation as Parquet; DuckDB streams it without building a pandas frame.
    Spark rows become a Parquet folder written by the executors."""
    _writable_dir(path.parent)
    with _write_errors(path):
        relation.write_parquet(str(path))
    return path


class TableWriter:
    """Write a table chunk by chunk to Parquet or CSV (chosen by the file's suffix)."""

    SUFFIXES = (".parquet", ".csv")

    def __init__(self, path: Path) -> None:
        if path.suffix.lower() not in self.SUFFIXES:
            raise InputError(f"--output {path}: the file must end in .parquet or .csv")
        _writable_dir(path.parent)
        self.path = path
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.path.suffix.lower() == ".csv":
            frame.to_csv(self.path, mode="w" if self.rows == 0 else "a", header=self.rows == 0, index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_text(path: Path, text: str) -> Path:
    _writable_dir(path.parent)
    with _write_errors(path):
        path.write_text(text, encoding="utf-8")
    return path


def write_summary(path: Path, summary: dict[str, Any]) -> Path:
    _writable_dir(path.parent)
    with _write_errors(path):
        path.write_text(json.dumps(_json_safe(summary), indent=2) + "\n", encoding="utf-8")
    return path
