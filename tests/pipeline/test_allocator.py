from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.allocator import HEAPS, limit_heaps

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
