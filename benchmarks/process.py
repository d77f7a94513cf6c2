"""Run one benchmark case in a fresh interpreter, so that its peak memory is its own."""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys


def peak_mb() -> float:
    """Peak resident memory of this process since it started its program, in MB: Linux's high-water mark of
    its memory (``VmHWM``). Not ``ru_maxrss``, which Linux carries over from before the ``exec``: a child
    started by a process holding 1.55 GB reported 1,552 MB there, against 11 MB of its own."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # without /proc


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


class TreePeak:
    """Peak resident memory of this process and all its descendants (a Spark driver's JVM and its
    Python workers), sampled every ``interval`` seconds in a thread: ``with TreePeak() as peak: ...``,
    then ``peak.mb``. Sampling can miss a spike shorter than the interval."""

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.interval = interval
        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += process.memory_info().rss
            self.mb = max(self.mb, total / 2**20)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
