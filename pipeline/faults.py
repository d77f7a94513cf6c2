"""Deterministic fault injection, for the failure tests: the k-th write fails, or the job is signalled there.

Every call that writes to the MLflow tracking store, its artifact store or the registry
(:mod:`pipeline.recorder.store`), and every chunk written to a local output file (:mod:`pipeline.outputs`),
first calls :func:`write_step`. A test sets a plan, either in the environment of a ``clv`` process
(read once, when this module is imported) or with :func:`install` in a forked one:

- ``CLV_FAULT_AT="<k>:<action>"``: at the k-th write (or the first write named k, e.g. ``move alias
  champion``), ``raise`` an OSError (the store or disk failing:
  exit 3 or 2), send this process ``sigterm`` (it lands during the write), or ``sigkill`` it (the write
  never starts: the state is the one left by the k-1 writes before it);
- ``CLV_FAULT_TRACE=<file>``: append ``<k>\\t<what is written>`` for every write (how the tests count
  the steps of a job).

Without a plan :func:`write_step` returns at once: production pays one comparison per write.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ACTIONS", "ENV_AT", "ENV_TRACE", "FaultPlan", "InjectedFaultError", "install", "write_step"]

ENV_AT = "CLV_FAULT_AT"
ENV_TRACE = "CLV_FAULT_TRACE"
ACTIONS = ("raise", "sigterm", "sigkill")


class InjectedFaultError(OSError):
    """The write that a test asked to fail (an OSError: what a full disk or a lost store raises)."""


@dataclass(frozen=True)
class FaultPlan:
    """Fail at write ``at`` (its 1-based number or its name; None: never) with ``action``; log every write
    to ``trace``."""

    at: int | str | None = None
    action: str = "raise"
    trace: Path | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"{ENV_AT}: action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if isinstance(self.at, int) and self.at < 1:
            raise ValueError(f"{ENV_AT}: the write number starts at 1, not {self.at}")


def _from_env() -> FaultPlan | None:
    at, trace = os.environ.get(ENV_AT), os.environ.get(ENV_TRACE)
    if not at and not trace:
        return None
    where, _, action = (at or "").rpartition(":") if ":" in (at or "") else (at or "", "", "")
    point: int | str | None = int(where) if where.isdigit() else where or None
    return FaultPlan(point, action or "raise", Path(trace) if trace else None)


_plan: FaultPlan | None = _from_env()
_writes = 0


def install(plan: FaultPlan | None) -> None:
    """Set (or clear, with None) the plan for this process and restart the count."""
    global _plan, _writes
    _plan, _writes = plan, 0


def write_step(what: str) -> None:
    """Called before each write: counts it and, when the plan says so, fails it."""
    global _plan, _writes
    if _plan is None:
        return
    _writes += 1
    if _plan.trace is not None:
        with _plan.trace.open("a", encoding="utf-8") as trace:
            trace.write(f"{_writes}\t{what}\n")
    if _writes != _plan.at and what != _plan.at:
        return
    _plan = dataclasses.replace(_plan, at=None) if what == _plan.at else _plan  # a name fails once
    if _plan.action == "sigkill":
        signal.raise_signal(signal.SIGKILL)
    elif _plan.action == "sigterm":
        signal.raise_signal(signal.SIGTERM)  # delivered to this thread before it returns, as a real signal would
    else:
        raise InjectedFaultError(f"injected fault at write {_writes} ({what})")
