"""How the C allocator keeps the job's memory: how many heaps (arenas) for its threads, and whether what it frees
is kept for the next allocation.

glibc's ``malloc`` gives each new thread that allocates a heap of its own, until there are eight per core, and
keeps what a thread frees in its heap for later allocations instead of giving it back. The job's worker threads
(:func:`models.histories.in_parts`, the validation blocks) allocate and free arrays of millions of rows, and the
heaps they leave behind stayed with the process to the end: at 50M rows the peak was 4.03 GB with the default
and 3.61 GB with two heaps (``docs/explanation/benchmarks.md``). :func:`limit_heaps` caps them for the
process, as ``MALLOC_ARENA_MAX`` does, unless that variable is set; with another C library it does nothing.

glibc also gives every large block (numpy's arrays of millions of rows) back to the system when it is freed,
and the next array takes fresh pages. On the benchmark machine a page the system has had back for a few
seconds costs about 2 s per GB to touch again, against 0.1 s for one reused at once: at 100M rows the job
spent 10-17 s doing so. :func:`keep_freed_memory` keeps freed blocks in the process for its next arrays;
:func:`handing_back` gives them back as before for the work whose peak sets the job's (the validation, where
the blocks kept by two threads added up: 3,912-3,983 MiB at 100M rows, against 3,741-3,775 MiB);
:func:`give_back` gives the free pages back at once.

numpy asks the kernel for transparent huge pages (2 MB) for its large arrays. Where the kernel compacts memory to
find them as the pages are first touched (``defrag`` ``madvise``, the usual setting, and this machine's), that
stalls on memory a query engine has just fragmented and freed: :func:`small_pages` asks for none inside.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["HEAPS", "give_back", "handing_back", "keep_freed_memory", "limit_heaps", "small_pages"]

HEAPS = 2
"""The heaps the job's process keeps (glibc's ``M_ARENA_MAX``)."""

_M_ARENA_MAX = -8  # glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_MMAP_MAX = 65536
"""glibc's default ``M_MMAP_MAX``: large blocks get mappings of their own."""
_KEPT = 2**31 - 1
"""The trim threshold while freed memory is kept: a heap's free top is kept up to 2 GB (glibc's default is
128 KB; ``mallopt`` takes an int)."""
_HANDED_BACK = 128 * 1024
"""The mmap and trim thresholds while :func:`handing_back`: glibc's defaults. Blocks from 128 KB get mappings of
their own, given back when freed (with 32 MB, the validation's peak at 100M rows was 3,912-3,925 MiB)."""
_TUNABLES = ("mmap_max", "trim_threshold", "mmap_threshold")
"""The malloc settings :func:`keep_freed_memory` makes; a user who set one (``MALLOC_MMAP_MAX_``, or
``glibc.malloc.mmap_max`` in ``GLIBC_TUNABLES``, ...) keeps theirs."""
_kept = False
"""Whether :func:`keep_freed_memory` set the allocator to keep what is freed."""
_handing = 0
"""How many :func:`handing_back` blocks are open (the settings are the process's: the last one out restores)."""
_lock = threading.Lock()


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl and others have no such symbol
    except (OSError, AttributeError):
        return None
    return libc


def give_back() -> bool:
    """Give the free pages inside the C allocator's heaps back to the system (glibc's ``malloc_trim(0)``): what the
    worker threads freed in the middle of a heap otherwise stays in the process's memory. Only glibc; the
    values in memory are untouched. Returns whether anything was given back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def limit_heaps(heaps: int = HEAPS) -> bool:
    """Cap the C allocator's heaps at ``heaps`` (glibc only; a ``MALLOC_ARENA_MAX`` the user set wins).
    Returns whether the cap was set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    return bool(libc.mallopt(_M_ARENA_MAX, heaps)) if libc is not None else False


def keep_freed_memory() -> bool:
    """Keep the memory the job frees for its next allocations (glibc only; malloc settings the user made win).

    Large blocks come from the heap instead of a mapping of their own (``M_MMAP_MAX`` 0), and a heap's free top
    is kept (``M_TRIM_THRESHOLD``): the next stage's arrays reuse those pages instead of faulting in fresh ones.
    Returns whether the settings were made.
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(f"MALLOC_{name.upper()}_" in os.environ or f"glibc.malloc.{name}" in tunables for name in _TUNABLES):
        return False
    libc = _glibc()
    if libc is None:
        return False
    global _kept
    _kept = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEPT))
    return _kept


@contextmanager
def handing_back() -> Iterator[None]:
    """Inside, freed blocks are given back to the system as glibc does by default, where
    :func:`keep_freed_memory` had them kept (what was kept is given back on entry): for work in several threads
    whose kept blocks would add up to a higher peak than the arrays alive at once. Blocks may nest or overlap
    across threads: freed memory is kept again when the last one ends. Nothing changes when nothing was kept."""
    libc = _glibc()
    if not _kept or libc is None:
        yield
        return
    global _handing
    with _lock:
        _handing += 1
        if _handing == 1:
            libc.malloc_trim(0)
            libc.mallopt(_M_MMAP_THRESHOLD, _HANDED_BACK)
            libc.mallopt(_M_TRIM_THRESHOLD, _HANDED_BACK)
            libc.mallopt(_M_MMAP_MAX, _MMAP_MAX)
    try:
        yield
    finally:
        with _lock:
            _handing -= 1
            if _handing == 0:
                libc.mallopt(_M_MMAP_MAX, 0)
                libc.mallopt(_M_TRIM_THRESHOLD, _KEPT)


def _huge_page_switch() -> Callable[[bool], bool] | None:
    """numpy's switch of its huge-page advice (sets it, returns what it was), where this numpy has it."""
    try:
        module = importlib.import_module("numpy._core.multiarray")
    except ImportError:
        return None
    switch = getattr(module, "_set_madvise_hugepage", None)
    return switch if callable(switch) else None


_small = 0
"""How many :func:`small_pages` blocks are open (numpy's switch is the process's: the last one out restores)."""
_advised = True
"""numpy's huge-page advice when the first :func:`small_pages` block opened."""


@contextmanager
def small_pages() -> Iterator[None]:
    """Inside, numpy's new arrays are not advised to the kernel for transparent huge pages (a user's
    ``NUMPY_MADVISE_HUGEPAGE`` wins; nothing changes with a numpy without the switch). For copies into fresh
    arrays right after DuckDB handed back its memory: at 100M rows prepare's frames (10M customers) took 0.75-0.76
    s inside against 2.37-2.46 s (two runs each), the whole stage alone 26.2-28.2 s against 29.0-29.4 s. Blocks
    may nest or overlap across threads: numpy's own setting comes back when the last one ends."""
    switch = _huge_page_switch()
    if switch is None or "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        yield
        return
    global _small, _advised
    with _lock:
        if _small == 0:
            _advised = bool(switch(False))
        _small += 1
    try:
        yield
    finally:
        with _lock:
            _small -= 1
            if _small == 0:
                switch(_advised)
