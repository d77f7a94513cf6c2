"""The per-customer summaries from DuckDB into pandas: straight through Arrow, or through Parquet files.

Up to :data:`FETCH_THROUGH_FILES` customers the frames are fetched through Arrow; above it, through sorted
Parquet files written by DuckDB (see :func:`fetch_all`), so that the frames never sit in memory next to
DuckDB's working tables.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.engines.duckdb_source import release_memory
from pipeline.engines.sql import DUCKDB

__all__ = ["FETCH_THROUGH_FILES", "fetch_all"]

_literal = DUCKDB.string


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


def _fetch(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A pandas frame through Arrow: numeric columns without NULLs are handed over without a copy."""
    frame: pd.DataFrame = relation.to_arrow_table().to_pandas(split_blocks=True, self_destruct=True)
    return frame


FETCH_THROUGH_FILES = 2_000_000
"""Above this many customers the summaries reach pandas through Parquet files (see :func:`fetch_all`)."""


@contextmanager
def _folder(staging: Path | None) -> Iterator[Path]:
    """The folder for the fetch's files: ``staging`` (the engine's), or, for a caller that gives none,
    a temporary one removed afterwards."""
    if staging is not None:
        yield staging
        return
    with tempfile.TemporaryDirectory(prefix="clv_prepare_") as folder:
        yield Path(folder)


def fetch_all(
    transactions: duckdb.DuckDBPyRelation,
    drop: Callable[[], None],
    queries: list[str],
    customers: int,
    staging: Path | None,
) -> list[pd.DataFrame]:
    """The per-customer frames, ordered as their queries say, with the working tables dropped (``drop``).

    Up to :data:`FETCH_THROUGH_FILES` customers they are fetched straight through Arrow. Above it,
    DuckDB first writes each sorted result to a Parquet file in the ``staging`` folder (its sort
    spills within the memory limit), every working table is dropped, and only then are the files read
    into pandas: the frames never sit in memory next to DuckDB's customer table and sort buffers.
    """
    if customers <= FETCH_THROUGH_FILES:
        frames = [_fetch(_query(transactions, "tx", sql)) for sql in queries]
        drop()
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
        drop()
        release_memory(lambda sql: _query(transactions, "tx", sql))  # not kept next to the frames read below
        frames = []
        for path in paths:
            frames.append(pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True))
            # pyarrow's allocator keeps the file's decoding buffers for reuse unless told otherwise.
            pa.default_memory_pool().release_unused()
        return frames
