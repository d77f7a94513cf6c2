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
from typing import NamedTuple

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.engines.duckdb_source import release_memory
from pipeline.engines.sql import DUCKDB

__all__ = ["FETCH_THROUGH_FILES", "Part", "fetch_all"]

_literal = DUCKDB.string


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


class Part(NamedTuple):
    """One frame taken from a query's result: the id and the columns named ``<prefix><column>`` (under their own
    names), in the rows where the boolean column ``rows`` is true (every row without it)."""

    prefix: str = ""
    rows: str | None = None


def _part(table: pa.Table, part: Part) -> pa.Table:
    """The columns and rows of ``part``, renamed."""
    names = [c for c in table.column_names if c == "customer_id" or (c != part.rows and c.startswith(part.prefix))]
    selected = table.select(names)
    if part.rows is not None:
        keep = table[part.rows]
        if keep.null_count or not pc.all(keep).as_py():
            selected = selected.filter(keep)
    return selected.rename_columns([c.removeprefix(part.prefix) if c != "customer_id" else c for c in names])


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
    sql: str,
    parts: list[Part],
    customers: int,
    staging: Path | None,
) -> list[pd.DataFrame]:
    """The per-customer frames ``parts`` of one query (sorted once, as it says), with the working tables
    dropped (``drop``).

    Up to :data:`FETCH_THROUGH_FILES` customers the result is fetched straight through Arrow. Above it,
    DuckDB first writes it to a Parquet file in the ``staging`` folder (its sort spills within the memory
    limit), every working table is dropped, and only then is the file read into pandas, a part at a time:
    the frames never sit in memory next to DuckDB's customer table and sort buffers. One query for the
    full history and the calibration sorted the 5M customers' ids once instead of twice (1 s less).
    """
    if customers <= FETCH_THROUGH_FILES:
        table = _query(transactions, "tx", sql).to_arrow_table()
        drop()
        return [_part(table, part).to_pandas(split_blocks=True) for part in parts]
    with _folder(staging) as folder:
        path = folder / "customers.parquet"
        (preserve,) = _query(transactions, "tx", "SELECT current_setting('preserve_insertion_order')").fetchall()[0]
        # The file must keep the ORDER BY: DuckDB's parallel writer keeps row order only when asked to.
        _query(transactions, "tx", "SET preserve_insertion_order = true")
        try:
            _query(transactions, "tx", f"COPY ({sql}) TO {_literal(str(path))} (FORMAT parquet)")
        finally:
            _query(transactions, "tx", f"SET preserve_insertion_order = {'true' if preserve else 'false'}")
        drop()
        release_memory(lambda sql: _query(transactions, "tx", sql))  # not kept next to the frames read below
        names = pq.read_schema(path).names
        # The ids are read once for every part: one decoding of the text, and the parts that keep every row
        # share one column of ids instead of a copy each (0.17 GB at 10M customers).
        ids = pq.read_table(path, columns=["customer_id"]).column("customer_id")
        if pa.types.is_string(ids.type):  # as pandas keeps text (64-bit offsets): not converted once per part
            ids = ids.cast(pa.large_string())
        frames = []
        for part in parts:
            wanted = [c for c in names if c != "customer_id" and (c == part.rows or c.startswith(part.prefix))]
            table = _part(pq.read_table(path, columns=wanted).add_column(0, "customer_id", ids), part)
            frames.append(table.to_pandas(split_blocks=True, self_destruct=True))
            del table
            # pyarrow's allocator keeps the file's decoding buffers for reuse unless told otherwise.
            pa.default_memory_pool().release_unused()
        return frames
