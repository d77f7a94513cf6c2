"""The per-customer summaries from DuckDB into pandas, a bucket of customers at a time.

Prepare summarises its input one bucket of customers (a range of ids) at a time. Each bucket's summary rows,
sorted by id, go to :class:`Summaries` as soon as they are computed, so that DuckDB need not keep every
customer until the end: at 100M rows the customer table held 1.9 GB of DuckDB's memory by the last pass,
and the final sorted ``COPY`` of 10M customers took 5.7 s of the fetch's 9.8 s. A small single bucket stays in
memory as Arrow; otherwise each bucket is written to an Arrow IPC file in a staging folder (no encoding, no
compression) and read back, a frame at a time, once DuckDB's working tables are dropped.

The buckets are ranges of ids compared byte by byte, the order of ``ORDER BY customer_id``, so the buckets'
sorted rows, one after the other, are sorted: this is checked at each bucket's border. Where it fails (integer
ids: the buckets are ranges of numbers, the rows are sorted by the id's text) DuckDB sorts the ids once more.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

__all__ = ["FETCH_THROUGH_FILES", "Part", "Query", "Summaries", "summaries"]

FETCH_THROUGH_FILES = 2_000_000
"""A single bucket of more customers than this, and every bucket of a scan in several, goes through a file."""

_BATCH_ROWS = 1 << 20
"""Rows per record batch written to a bucket's file (and per chunk of the frames' columns)."""


class Part(NamedTuple):
    """One frame taken from the summaries: the id and the columns named ``<prefix><column>`` (under their own
    names), in the rows where the boolean column ``rows`` is true (every row without it)."""

    prefix: str = ""
    rows: str | None = None

    def columns(self, names: list[str]) -> list[str]:
        """The columns of ``names`` this part reads (besides the id): its own and its row flag."""
        return [c for c in names if c != "customer_id" and (c == self.rows or c.startswith(self.prefix))]


def _part(table: pa.Table, part: Part) -> pa.Table:
    """The columns and rows of ``part``, renamed."""
    names = [c for c in table.column_names if c == "customer_id" or (c != part.rows and c.startswith(part.prefix))]
    selected = table.select(names)
    if part.rows is not None:
        keep = table[part.rows]
        if keep.null_count or not pc.all(keep).as_py():
            selected = selected.filter(keep)
    return selected.rename_columns([c.removeprefix(part.prefix) if c != "customer_id" else c for c in names])


def _ordered(ids: list[pa.ChunkedArray]) -> bool:
    """Whether the buckets' ids (each bucket's sorted), one bucket after the other, are sorted: at every border
    the last id before is below the first id after (Python compares text by code point, UTF-8's byte order)."""
    ends = [(column[0].as_py(), column[-1].as_py()) for column in ids if len(column)]
    return all(last < first for (_, last), (first, _) in itertools.pairwise(ends))


Query = Callable[[str, pa.Table], duckdb.DuckDBPyRelation]
"""Runs SQL in prepare's DuckDB connection (its memory limit, threads and spill folder) with an Arrow table
visible as ``clv_prepare_ids``."""


def _sorting_order(ids: pa.ChunkedArray, query: Query) -> npt.NDArray[np.int64]:
    """Positions that sort ``ids`` as DuckDB's ``ORDER BY`` does, in prepare's own connection: 1.05 s for 10M
    ids (pyarrow's ``sort_indices`` took 6.6 s)."""
    table = pa.table({"customer_id": ids, "position": np.arange(len(ids), dtype=np.int64)})
    order: npt.NDArray[np.int64] = query(
        "SELECT position FROM clv_prepare_ids ORDER BY customer_id ASC", table
    ).fetchnumpy()["position"]
    return order


def _owned_text(ids: pa.ChunkedArray) -> pa.ChunkedArray:
    """The ids as one array of text with 64-bit offsets (as pandas keeps text), in memory of its own: a copy,
    never the buffers of a mapped file (a cast alone would keep the file's characters)."""
    large = [chunk.cast(pa.large_string()) if pa.types.is_string(chunk.type) else chunk for chunk in ids.chunks]
    return pa.chunked_array([pa.concat_arrays(large)] if large else [], pa.large_string())


def _view(chunk: pa.Array) -> npt.NDArray[Any] | None:
    """A chunk's values as numpy sees them in its buffer (no copy), or None where pandas would not take them so:
    nulls, or another type than 64-bit numbers and timestamps without a time zone."""
    kind = chunk.type
    numeric = pa.types.is_float64(kind) or pa.types.is_int64(kind)
    if chunk.null_count or not (numeric or (pa.types.is_timestamp(kind) and kind.tz is None)):
        return None
    view: npt.NDArray[Any] = chunk.to_numpy(zero_copy_only=True)
    return view


def _kept(column: pa.ChunkedArray, keep: list[npt.NDArray[np.bool_]] | None, kept: int) -> npt.NDArray[Any] | pd.Series:
    """One column of a part as pandas takes it: its chunks copied into one numpy array (the rows of ``keep``, a
    mask per chunk, ``kept`` of them), or pandas' own conversion where a chunk is not a plain numpy view."""
    views = [view for view in map(_view, column.chunks) if view is not None]
    if not views or len(views) < column.num_chunks:
        if keep is not None:
            array = column.filter(pa.chunked_array([pa.array(rows) for rows in keep]))
        else:  # a copy: pandas would take a chunk of its own as it is, in the mapped file
            array = pa.chunked_array([pa.concat_arrays(column.chunks)], column.type)
        series: pd.Series = array.to_pandas()
        return series
    if keep is None:
        return np.concatenate(views)
    out = np.empty(kept, dtype=views[0].dtype)
    at = 0
    for view, rows in zip(views, keep, strict=True):
        n = int(np.count_nonzero(rows))
        np.compress(rows, view, out=out[at : at + n])
        at += n
    return out


def _frame(table: pa.Table, part: Part, ids: pa.ChunkedArray) -> pd.DataFrame:
    """The frame of ``part`` from ``table`` (the part's columns of mapped bucket files) and the sorted ``ids``:
    each column of numbers or timestamps copied once, straight into the numpy array pandas keeps (the others
    through pyarrow's conversion, from a copy). pyarrow's conversion had copied the buckets' chunks into one array
    after filtering the rows into new chunks: at 5M customers the two frames took 0.61-0.96 s instead of 0.90-1.79 s
    (four runs each, prepare alone). No customer (files without a batch): pyarrow's conversion."""
    names = [c for c in table.column_names if c != part.rows]
    if table.num_rows == 0:
        empty: pd.DataFrame = _part(table.add_column(0, "customer_id", ids), part).to_pandas(split_blocks=True)
        return empty
    keep = None
    if part.rows is not None:
        flag = pc.fill_null(table[part.rows], False)  # as Table.filter, a NULL flag drops the row
        if not pc.all(flag).as_py():
            keep = [chunk.to_numpy(zero_copy_only=False) for chunk in flag.chunks]
    lengths = [len(chunk) for chunk in flag.chunks] if keep is not None else []
    if keep is not None and any([len(chunk) for chunk in table[name].chunks] != lengths for name in names):
        converted: pd.DataFrame = _part(table.add_column(0, "customer_id", ids), part).to_pandas(split_blocks=True)
        return converted
    kept = len(ids) if keep is None else sum(int(np.count_nonzero(rows)) for rows in keep)
    key = ids if keep is None else ids.filter(pa.array(np.concatenate(keep)))
    columns: dict[str, object] = {"customer_id": key.to_pandas().array}
    for name in names:
        columns[name.removeprefix(part.prefix)] = _kept(table[name], keep, kept)
    return pd.DataFrame(columns, copy=False)


class Summaries:
    """The sorted summary rows of each bucket, in bucket order, until :meth:`frames` reads them into pandas."""

    def __init__(self, folder: Callable[[], Path]) -> None:
        self._folder = folder
        self._buckets: list[pa.Table | Path] = []

    def add(self, rows: duckdb.DuckDBPyRelation, buckets: int, customers: Callable[[], int]) -> None:
        """Take one bucket's rows (a sorted query of its ``customers()``) of ``buckets``: through a file when
        there are several buckets or more than :data:`FETCH_THROUGH_FILES` customers, else as Arrow in memory."""
        if buckets == 1 and customers() <= FETCH_THROUGH_FILES:
            self._buckets.append(rows.to_arrow_table())
            return
        path = self._folder() / f"summaries-{len(self._buckets)}.arrow"
        reader = rows.to_arrow_reader(_BATCH_ROWS)
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        self._buckets.append(path)

    def close(self) -> None:
        """Remove the buckets' files (the frames read from them hold copies)."""
        for bucket in self._buckets:
            if isinstance(bucket, Path):
                bucket.unlink(missing_ok=True)
        self._buckets.clear()

    def _names(self) -> list[str]:
        first = self._buckets[0]
        if isinstance(first, Path):
            with pa.OSFile(str(first)) as source:
                return list(ipc.open_file(source).schema.names)
        return list(first.column_names)

    @staticmethod
    def _columns(bucket: pa.Table | Path, columns: list[str]) -> pa.Table:
        """The named columns of one bucket. A file is memory-mapped: its columns are read where they lie, without
        allocating or copying (at 10M customers the frames took 2.3-2.5 s instead of 5.0-6.1 s from plain reads,
        and the peak of prepare fell from 3.21 to 2.61 GB); :func:`_frame` copies them before the file goes."""
        if not isinstance(bucket, Path):
            return bucket.select(columns)
        with pa.memory_map(str(bucket)) as source:  # the mapping lives on in the columns' buffers
            return ipc.open_file(source).read_all().select(columns)

    def frames(self, parts: list[Part], query: Query) -> list[pd.DataFrame]:
        """The frames ``parts``, sorted by id; ``query`` runs the sort that integer ids need (see the module).
        The ids are read once for every part: one column of text shared by the parts that keep every row
        (0.17 GB at 10M customers), as pandas keeps text (64-bit offsets)."""
        by_bucket = [self._columns(bucket, ["customer_id"]).column(0) for bucket in self._buckets]
        ids = pa.chunked_array([chunk for column in by_bucket for chunk in column.chunks], by_bucket[0].type)
        order = None if _ordered(by_bucket) else _sorting_order(ids, query)
        del by_bucket
        ids = _owned_text(ids if order is None else ids.take(order))
        names = self._names()
        files = any(isinstance(bucket, Path) for bucket in self._buckets)
        frames = []
        for part in parts:
            table = pa.concat_tables([self._columns(bucket, part.columns(names)) for bucket in self._buckets])
            if order is None and files:
                frames.append(_frame(table, part, ids))  # copied out of the mapped files
            else:  # in memory already, or taken in order (a copy of its own)
                table = table if order is None else table.take(order)
                table = _part(table.add_column(0, "customer_id", ids), part)
                frames.append(table.to_pandas(split_blocks=True, self_destruct=True))
            del table
            # pyarrow's allocator keeps the copies' buffers for reuse unless told otherwise.
            pa.default_memory_pool().release_unused()
        return frames


@contextmanager
def summaries(staging: Path | None) -> Iterator[Summaries]:
    """A :class:`Summaries` whose files go to ``staging`` (the engine's folder) or, without one, to a temporary
    folder made when the first file is written; the files (and that folder) are removed afterwards."""
    with ExitStack() as stack:

        def folder() -> Path:
            nonlocal staging
            if staging is None:
                staging = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clv_prepare_")))
            return staging

        sink = Summaries(folder)
        try:
            yield sink
        finally:
            sink.close()
