"""How many heaps (arenas) the C allocator keeps for the job's threads.

glibc's ``malloc`` gives each new thread that allocates a heap of its own, until there are eight per core, and
keeps what a thread frees in its heap for later allocations instead of giving it back. The job's worker threads
(:func:`models.histories.in_parts`, the validation blocks) allocate and free arrays of millions of rows, and the
heaps they leave behind stayed with the process to the end: at 50M rows the peak was 4.03 GB with the default
and 3.61 GB with two heaps (``docs/explanation/benchmarks.md``). :func:`limit_heaps` caps them for the
process, as ``MALLOC_ARENA_MAX`` does, unless that variable is set; with another C library it does nothing.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["HEAPS", "give_back", "limit_heaps"]

HEAPS = 2
"""The heaps the job's process keeps (glibc's ``M_ARENA_MAX``)."""

_M_ARENA_MAX = -8  # glibc's malloc.h


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
