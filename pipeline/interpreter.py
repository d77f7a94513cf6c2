"""How the Python interpreter runs a ``clv`` command: how often its cycle collector runs, and how the process ends.

The command imports MLflow, SQLAlchemy, pandas, scipy and DuckDB: about 280,000 objects that Python's cycle
collector walks again and again while the job allocates (its first generation is collected every 700
allocations). On the bundled CDNOW, ``clv train`` spent about 0.8 s of its 6.5 s in those collections; with
the first generation collected every :data:`FIRST_GENERATION` allocations it did not. Arrays and frames are
freed by their reference counts, not by the collector, so the job's peak memory does not depend on it.

Once the command is done, the interpreter tears every module down and collects every object once more before
the process ends: 1.2-1.4 s of a CDNOW or 5M-row ``clv train``, after its last output was written.
:func:`exit_now` ends the process instead, once the exit handlers have run (logging, MLflow's, temporary
folders' finalizers) and the standard streams are flushed; mypy ends the same way. Only the ``clv`` command
does either (:func:`pipeline.cli.run`): a program that calls :func:`pipeline.cli.main` keeps its interpreter as it is.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
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


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` the way the interpreter ends it, without its teardown: wait for the threads
    that are not daemons (an executor's workers finish their queued work: MLflow's artifact copies run in one),
    run the exit handlers, flush the standard streams, exit. Where this Python has no such wait, it ends as usual."""
    wait_for_threads = getattr(threading, "_shutdown", None)  # the interpreter's own first step when it ends
    if wait_for_threads is None:
        sys.exit(code)
    wait_for_threads()
    atexit._run_exitfuncs()  # its second
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe takes nothing more
            stream.flush()
    os._exit(code)
