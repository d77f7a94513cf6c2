"""The prepare ledger's counts per quarantine reason from a bucket's table of rows per day (see
:mod:`pipeline.engines.duckdb_prepare`), and merged over the buckets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.engines.duckdb_summary import BIGINT_MAX
from pipeline.engines.prepared import ReasonCounts
from pipeline.engines.rules import SCALE
from pipeline.errors import InputError

__all__ = ["merged_counts", "reason_counts"]


def reason_counts(counts: list[tuple[Any, ...]], source: str, overflowed: Callable[[], object]) -> ReasonCounts:
    """Rows, first and last day, and returns per quarantine reason, from the rows of
    :func:`~pipeline.engines.duckdb_summary.counts_sql`; InputError on a day whose sum overflowed, naming the
    customer ``overflowed()`` gives (:func:`~pipeline.engines.duckdb_summary.overflow_sql`)."""
    if any(overflow for *_, overflow in counts):
        raise InputError(
            f"{source}: customer {overflowed()!r} has more than {BIGINT_MAX / SCALE:.3g} in purchases or returns "
            "on one day; set prepare.max_amount to quarantine such amounts"
        )
    return {reason: (int(n), first, last, int(r or 0)) for reason, n, first, last, r, _ in counts}


def merged_counts(counts: ReasonCounts, more: ReasonCounts) -> ReasonCounts:
    """The counts of two buckets together."""
    merged = dict(counts)
    for reason, (n, first, last, returns) in more.items():
        if reason not in merged:
            merged[reason] = (n, first, last, returns)
            continue
        n0, first0, last0, returns0 = merged[reason]
        firsts = [d for d in (first0, first) if d is not None]
        lasts = [d for d in (last0, last) if d is not None]
        merged[reason] = (n0 + n, min(firsts, default=None), max(lasts, default=None), returns0 + returns)
    return merged
