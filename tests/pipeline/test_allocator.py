from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import allocator
from pipeline.allocator import HEAPS, keep_freed_memory, limit_heaps

# Six threads allocate at the same time, then the process counts glibc's heaps (malloc_info's <heap nr=...>).
COUNT_HEAPS = textwrap.dedent(
    """
    import ctypes, sys, threading
    from pipeline.allocator import limit_heaps
    if sys.argv[1] == "limit":  # before numpy starts its threads, as clv does
        assert limit_heaps()
    import numpy as np
    barrier = threading.Barrier(6)
    def work():
        barrier.wait()
        for _ in range(20):
            np.ones(1_000_000).sum()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    handle = libc.fopen(sys.argv[2].encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(handle))
    libc.fclose(ctypes.c_void_p(handle))
    """
)


def _glibc() -> bool:
    import ctypes

    return hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


def _heaps(tmp_path: Path, mode: str) -> int:
    out = tmp_path / f"{mode}.xml"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    subprocess.run([sys.executable, "-c", COUNT_HEAPS, mode, str(out)], check=True, env=env)
    return out.read_text().count("<heap nr=")


@pytest.mark.skipif(not _glibc(), reason="the heaps are glibc's")
def test_the_job_keeps_two_heaps_where_threads_would_make_more(tmp_path: Path) -> None:
    assert _heaps(tmp_path, "limit") == HEAPS
    assert _heaps(tmp_path, "default") > HEAPS  # without the cap, six threads get heaps of their own


def test_a_users_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_heaps() is False


# 1,600 blocks of 64 KB (under glibc's mmap threshold: inside the heap), every other one freed: 50 MB free in the
# middle of the heap, which free() keeps; prints the resident MB before and after give_back().
GIVE_BACK = textwrap.dedent(
    """
    import ctypes, os
    from pipeline.allocator import give_back
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    page = os.sysconf("SC_PAGE_SIZE")
    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 1e6
    blocks = [libc.malloc(65536) for _ in range(1600)]
    for block in blocks:
        ctypes.memset(ctypes.c_void_p(block), 1, 65536)
    for block in blocks[::2]:
        libc.free(ctypes.c_void_p(block))
    before = resident()
    assert give_back()
    print(before, resident())
    """
)


@pytest.mark.skipif(not _glibc() or not Path("/proc/self/statm").exists(), reason="glibc's heaps, Linux's statm")
def test_give_back_returns_the_free_pages_inside_the_heap() -> None:
    done = subprocess.run([sys.executable, "-c", GIVE_BACK], check=True, capture_output=True, text=True)
    before, after = (float(v) for v in done.stdout.split())
    assert before - after > 30  # most of the 50 MB freed in the middle of the heap


# A 400 MB array written and freed; prints the resident MB before it, with it, and after it was freed.
KEEP = textwrap.dedent(
    """
    import contextlib, os, sys
    from pipeline.allocator import handing_back, keep_freed_memory
    if sys.argv[1] in ("keep", "handing back", "after handing back", "nested"):
        assert keep_freed_memory()
    if sys.argv[1] == "after handing back":
        with handing_back():
            pass
    outer = handing_back() if sys.argv[1] == "nested" else contextlib.nullcontext()
    outer.__enter__()
    if sys.argv[1] == "nested":
        with handing_back():
            pass  # an inner block ends inside the outer one
    import numpy as np
    page = os.sysconf("SC_PAGE_SIZE")
    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 1e6
    with handing_back() if sys.argv[1] in ("handing back", "default") else contextlib.nullcontext():
        before = resident()
        array = np.ones(50_000_000)
        with_it = resident()
        del array
        print(before, with_it, resident())
    """
)


def _kept(mode: str) -> tuple[float, float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run([sys.executable, "-c", KEEP, mode], check=True, env=env, capture_output=True, text=True)
    before, with_it, after = (float(v) for v in done.stdout.split())
    return before, with_it, after


@pytest.mark.skipif(not _glibc(), reason="the settings are glibc's")
def test_freed_arrays_stay_with_the_job_for_its_next_ones() -> None:
    before, with_it, after = _kept("keep")
    assert with_it - before > 390
    assert after - before > 390  # kept for the next array
    before, with_it, after = _kept("after handing back")
    assert after - before > 390  # kept again once the handing back is over


@pytest.mark.skipif(not _glibc(), reason="the settings are glibc's")
@pytest.mark.parametrize("mode", ["default", "handing back", "nested"])
def test_a_freed_array_is_handed_back_by_default_and_while_handing_back(mode: str) -> None:
    before, with_it, after = _kept(mode)
    assert with_it - before > 390
    assert after - before < 10  # glibc hands a large block back at once


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MALLOC_MMAP_MAX_", "65536"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0:glibc.malloc.arena_max=2"),
    ],
)
def test_a_users_malloc_settings_win(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for other in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    assert keep_freed_memory() is False


def _switch() -> Callable[[bool], bool]:
    switch = allocator._huge_page_switch()
    assert switch is not None  # this numpy has it
    return switch


def _huge_pages() -> bool:
    """Whether numpy advises its new arrays for huge pages now (read by setting it and putting it back)."""
    advised = bool(_switch()(True))
    _switch()(advised)
    return advised


@pytest.mark.parametrize("advised", [True, False])
def test_small_pages_inside_and_numpys_own_setting_back_after(advised: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    before = _switch()(advised)
    try:
        with allocator.small_pages():
            assert not _huge_pages()
        assert _huge_pages() is advised
        with pytest.raises(ValueError, match="stopped inside"), allocator.small_pages():
            raise ValueError("stopped inside")
        assert _huge_pages() is advised
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's choice is kept
        with allocator.small_pages():
            assert _huge_pages() is advised
    finally:
        _switch()(before)


def test_small_pages_blocks_that_overlap_leave_numpys_setting_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two blocks opened and closed out of order, as two threads would: the advice comes back with the last."""
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    before = _switch()(True)
    try:
        first, second = allocator.small_pages(), allocator.small_pages()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert not _huge_pages()  # the second block is still open
        second.__exit__(None, None, None)
        assert _huge_pages()
    finally:
        _switch()(before)
