"""A benchmark child's peak memory is its own, not its parent's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from benchmarks.process import peak_mb

CHILD = "from benchmarks.process import peak_mb; import numpy as np; a = np.ones(25_000_000); print(peak_mb())"


def test_a_child_does_not_report_its_parents_memory() -> None:
    """Linux's ru_maxrss carries the parent's resident memory over into a child it starts: a child started by
    a pytest worker holding 1.6 GB reported 1,628 MB for a 20,000-row DuckDB prepare (232 MB on its own)."""
    held = np.ones(50_000_000)  # 400 MB resident in this process while the child starts
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    child = float(done.stdout.strip().splitlines()[-1])
    assert 200 < child < 380  # its own 200 MB array and the interpreter, not this process's 400 MB more
    assert held.nbytes == 400_000_000
    assert peak_mb() > 400  # this process's own peak holds the array
