"""Run one benchmark case in a fresh interpreter, so that its peak memory (ru_maxrss) is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def peak_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far, in seconds (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(module: str, *args: str) -> dict[str, float]:
    """``python -m module --child args...``; the child prints its result as JSON on the last line."""
    done = subprocess.run([sys.executable, "-m", module, "--child", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {args[0]} failed: {done.stderr.strip().splitlines()[-1]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
