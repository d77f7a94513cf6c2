"""How the Python interpreter runs a ``clv`` command: how often its cycle collector runs, and how the process ends.

The command imports MLflow, SQLAlchemy, pandas, scipy and DuckDB: about 280,000 objects that Python's cycle
collector walks again and again while the job allocates (its first generation is collected every 700
allocations). On the bundled CDNOW, ``clv train`` spent 0.6-0.7 s in those collections (7 full ones); with the
first generation collected every :data:`FIRST_GENERATION` allocations it made none. Arrays and frames are freed by
their reference counts, not by the collector: at 100M rows the job's peak was 3,633 MiB with it, 3,629 MiB
without (what only a reference cycle holds, such as a kept traceback's frames, waits longer to be freed).

Once the command is done, the interpreter tears every module down and collects every object once more before
the process ends: 1.2-1.4 s of a CDNOW or 5M-row ``clv train``, after its last output was written.
:func:`exit_now` ends the process instead, once the threads that are not daemons are done, the exit handlers
have run (logging's, MLflow's, temporary folders' finalizers, and the DuckDB connections closed: DuckDB removes its
spill files then, :mod:`pipeline.engines.duckdb_source`) and the streams are flushed; mypy ends the same way.
No destructor runs: what must happen at the end is an exit handler. Only the ``clv`` command
does either (:func:`pipeline.cli.run`): a program that calls :func:`pipeline.cli.main` keeps its interpreter as it is.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import os
import signal
import sys
import threading
from typing import NoReturn

__all__ = ["FIRST_GENERATION", "exit_now", "fewer_collections"]

FIRST_GENERATION = 50_000
"""Allocations between two collections of the cycle collector's first generation (Python's default: 700)."""


def fewer_collections() -> None:
    """Collect the first generation every :data:`FIRST_GENERATION` allocations; the older generations keep their
    thresholds (each is collected after 10 collections of the one before)."""
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION, second, third)


def exit_now(code: int | None) -> NoReturn:
    """End the process with ``code`` (None: 0) the way the interpreter ends it, without its teardown: wait for the
    threads that are not daemons (an executor's workers finish their queued work: MLflow's artifact copies run in
    one), run the exit handlers, flush the streams (Python's and the C library's), exit; as Python does, a stream
    that cannot be flushed makes the exit code 120. From here on a SIGTERM ends the process at once (the command is
    done). Where this Python has no such wait, it ends as usual."""
    wait_for_threads = getattr(threading, "_shutdown", None)  # the interpreter's own first step when it ends
    if wait_for_threads is None:
        sys.exit(code)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    wait_for_threads()
    atexit._run_exitfuncs()  # its second
    code = 0 if code is None else code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a full disk, a closed pipe: what was left to write is lost
            code = 120
    with contextlib.suppress(OSError, AttributeError):  # what C libraries wrote through stdio (glibc and others)
        ctypes.CDLL(None).fflush(None)
    os._exit(code)
