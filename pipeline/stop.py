"""Stopping on SIGTERM: the CLI's signal handler and the checkpoints that honour it.

The handler raises :class:`Terminated` at once, except inside a :func:`deferred` section (the start or
the end of an MLflow run), where it only records the request and the next :func:`checkpoint` raises it:
a run is never left RUNNING because the signal landed between MLflow creating it and the code that
ends it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

MESSAGE = (
    "terminated by SIGTERM; an unfinished run is marked FAILED, and the champion alias is unchanged unless the "
    "stop came while it was being moved (the last step)"
)


class Terminated(BaseException):
    """SIGTERM: the run in progress ends FAILED and nothing after it (registration, alias) happens.

    A BaseException, so that library code catching ``Exception`` cannot swallow it.
    """

    exit_code = 143


_state = {"requested": False, "deferred": 0}


def requested() -> bool:
    """Whether SIGTERM has arrived."""
    return bool(_state["requested"])


def checkpoint() -> None:
    """Raise Terminated at a safe point if SIGTERM arrived (even if a library swallowed the first raise)."""
    if _state["requested"]:
        raise Terminated(MESSAGE)


def on_sigterm(signum: int, frame: object) -> None:
    """The SIGTERM handler: raise at once, or at the next checkpoint inside a deferred section."""
    _state["requested"] = True
    if not _state["deferred"]:
        raise Terminated(MESSAGE)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section that SIGTERM must not cut in two; the stop waits for the next :func:`checkpoint`."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
