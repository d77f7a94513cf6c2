"""Frames the job keeps but no longer reads, moved out of its own memory into a memory-mapped file.

At 10M customers the calibration summary and the holdout table take about 2 GB, and after the calibration
stage (fit, validation, champion, contest) nothing in the job reads them again until ``--output`` is
written: the result hands them to the caller. :func:`map_to_disk` writes such a frame to an Arrow IPC file
and reads it back memory-mapped, as an ordinary pandas DataFrame with the same columns, dtypes, index and
values (tested). Its numbers, dates and text are views of the file (pyarrow's zero-copy conversion, one
block per column), so they take memory only while something reads them, as clean file pages the OS can
drop again, instead of the process's own memory for the rest of the job. The file is unlinked as soon as it
is mapped: its disk space goes back when the frame is collected (a job killed while it writes the file can leave
it in the folder). Like any frame pyarrow converts without a copy, a mapped frame is read-only: ``.copy()`` it
before changing values in place.

The folder must be on disk (a ``tmpfs`` folder is memory itself). A frame that does not come back the same
(a dtype pyarrow cannot keep, such as an object column of mixed values) or that cannot be written (disk
full) is kept in memory as it is, and the reason is returned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import os
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.histories import workers
from pipeline.engines.prepared import PreparedData
from pipeline.validate import Validation

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MAP_ABOVE_ROWS", "Mapped", "drop_pages", "is_mapped", "map_to_disk", "set_aside"]

MAP_ABOVE_ROWS = 2_000_000
"""The default bound (``engine.set_aside_customers``): below it, writing the frames costs more time than their
memory is worth (the same bound as prepare's large fetch)."""


@dataclass(frozen=True)
class Mapped:
    """The frame (memory-mapped, or the original) and why it stayed in memory (None when mapped)."""

    frame: pd.DataFrame
    reason: str | None = None


def _unchanged(frame: pd.DataFrame, back: pd.DataFrame) -> str | None:
    """Why ``back`` is not ``frame``'s equal in columns, dtypes and index (values are not read here: reading
    them would bring the whole file into memory again), or None."""
    if list(back.columns) != list(frame.columns):
        return "its columns did not come back the same"
    for column in frame.columns:
        if back[column].dtype != frame[column].dtype:
            return f"column {column!r} came back as {back[column].dtype}, not {frame[column].dtype}"
    if type(back.index) is not type(frame.index) or not back.index.equals(frame.index):
        return "its index did not come back the same"
    return None


def _table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as Arrow with pandas' metadata (dtypes, index), float columns with NaN kept as NaN: as nulls
    they would come back as a copy, not as a view of the file."""
    import numpy as np
    import pyarrow as pa

    table = pa.Table.from_pandas(frame)
    for position, column in enumerate(table.column_names):
        if column in frame.columns and frame[column].dtype == np.float64 and table.column(position).null_count:
            table = table.set_column(position, column, pa.array(frame[column].to_numpy(), type=pa.float64()))
    # one record batch: a text column in chunks (the fetch's row groups) would cut every column into batches,
    # and those would come back as a concatenated copy of each column, not as views of the file
    return table.combine_chunks()


def map_to_disk(frame: pd.DataFrame, folder: Path | None = None) -> Mapped:
    """``frame`` written to an Arrow IPC file in ``folder`` (the system's temporary folder when None) and read
    back memory-mapped; or ``frame`` itself, with the reason, when it does not map."""
    import pyarrow as pa

    try:  # mapping only saves memory: whatever fails, the frame stays as it was, with the reason
        table = _table(frame)
    except Exception as exc:  # pyarrow raises its own errors and Python's (e.g. OverflowError)
        return Mapped(frame, f"not representable in Arrow ({type(exc).__name__})")
    try:
        handle, name = tempfile.mkstemp(prefix="clv-frame-", suffix=".arrow", dir=folder)
    except OSError as exc:
        return Mapped(frame, f"could not be written ({exc.strerror or exc})")
    os.close(handle)
    try:
        with pa.OSFile(name, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        del table
        with open(name, "rb") as file:
            pages = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        back = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(pages))).read_all().to_pandas(split_blocks=True)
    except OSError as exc:
        return Mapped(frame, f"could not be written ({exc.strerror or exc})")
    except Exception as exc:  # as above: the frame stays in memory
        return Mapped(frame, f"could not be read back ({type(exc).__name__})")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)  # the mapping stays valid; the space goes back with it
    reason = _unchanged(frame, back)
    if reason is not None:
        return Mapped(frame, reason)
    _register(back, (pages,))
    return Mapped(back)


_PAGES: dict[int, tuple[weakref.ref[pd.DataFrame], tuple[mmap.mmap, ...]]] = {}
"""The mappings behind each mapped frame, by the frame's id while it lives."""


def _register(frame: pd.DataFrame, pages: tuple[mmap.mmap, ...]) -> None:
    _PAGES[id(frame)] = (weakref.ref(frame), pages)
    weakref.finalize(frame, _PAGES.pop, id(frame), None)


def _pages(frame: pd.DataFrame) -> tuple[mmap.mmap, ...]:
    entry = _PAGES.get(id(frame))
    return entry[1] if entry is not None and entry[0]() is frame else ()


def drop_pages(frame: pd.DataFrame) -> None:
    """Let the OS take back the pages of ``frame``'s files that reading it brought into memory (a mapped frame;
    any other frame: nothing to do). The frame is unchanged: a later read maps them again."""
    if hasattr(mmap, "MADV_DONTNEED"):  # not on Windows
        for pages in _pages(frame):
            pages.madvise(mmap.MADV_DONTNEED)


def is_mapped(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` is mapped from disk here (its pages can be dropped)."""
    return bool(_pages(frame))


def _memory(series: pd.Series) -> tuple[object, ...] | None:
    """Where ``series``'s values are: its dtype, length and buffers' addresses (None when unknown). Two columns
    with the same are the same values, shared copy-on-write, as the holdout table shares the calibration's."""
    import numpy as np

    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biufmM":
        values = np.asarray(series.array)
        return (str(series.dtype), values.__array_interface__["data"][0], values.shape, values.strides)
    arrow = getattr(series.array, "__arrow_array__", None)
    if not isinstance(series.dtype, pd.StringDtype) or arrow is None:
        return None
    chunks = arrow().chunks
    addresses = tuple(b.address if b is not None else 0 for c in chunks for b in c.buffers())
    return (str(series.dtype), len(series), addresses, tuple((c.offset, len(c)) for c in chunks))


def _shared(holdout: pd.DataFrame, calibration: pd.DataFrame) -> dict[str, str]:
    """The holdout table's columns that are the calibration summary's (the same memory), by name."""
    if not holdout.index.equals(calibration.index):
        return {}
    where = {key: str(c) for c in calibration.columns if (key := _memory(calibration[c])) is not None}
    return {str(h): where[key] for h in holdout.columns if (key := _memory(holdout[h])) is not None and key in where}


def _holdout_on(holdout: pd.DataFrame, shared: dict[str, str], calibration: Mapped, own: Mapped) -> Mapped:
    """The holdout table from its own columns mapped and the ones it shares taken from the calibration summary
    (mapped too, or as it stayed): each column written once."""
    if own.reason is not None:
        return Mapped(holdout, own.reason)
    columns = {h: calibration.frame[shared[h]] if h in shared else own.frame[h] for h in holdout.columns}
    joined = pd.DataFrame(columns, index=holdout.index, copy=False)
    reason = _unchanged(holdout, joined)
    if reason is not None:
        return Mapped(holdout, reason)
    _register(joined, _pages(calibration.frame) + _pages(own.frame))
    return Mapped(joined)


def set_aside(
    prepared: PreparedData, validation: Validation, folder: Path | None, min_rows: int = MAP_ABOVE_ROWS
) -> tuple[PreparedData, Validation, tuple[str, ...]]:
    """The calibration summary and the holdout table mapped to disk in ``folder`` when they have ``min_rows``
    rows or more (after the calibration stage, the job's last reader of both), and a warning for each that
    stays in memory. The same frames, out of the job's memory (2 GB at 10M customers)."""
    if len(prepared.calibration) < min_rows:
        return prepared, validation, ()
    shared = _shared(validation.holdout, prepared.calibration)
    with ThreadPoolExecutor(max_workers=workers()) as pool:  # side by side: the writes release the GIL
        calibration_written = pool.submit(map_to_disk, prepared.calibration, folder)
        own = map_to_disk(validation.holdout.drop(columns=list(shared)), folder)
        calibration = calibration_written.result()
    holdout = _holdout_on(validation.holdout, shared, calibration, own)
    named = (("calibration summary", calibration), ("holdout table", holdout))
    warnings = tuple(f"memory: the {name} stays in memory ({m.reason})" for name, m in named if m.reason)
    prepared = dataclasses.replace(prepared, calibration=calibration.frame)
    return prepared, dataclasses.replace(validation, holdout=holdout.frame), warnings
