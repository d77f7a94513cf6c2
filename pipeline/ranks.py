"""Ranks and orders of the holdout's arrays, as the ranking metrics need them (:mod:`pipeline.metrics`).

Every function here gives ``scipy.stats.rankdata``'s average ranks and ``argsort(-values, kind="stable")``'s
order exactly (tested); what differs is the work. Ranks of a whole-number array are counted. Ranks of an array
that is a function of groups of rows (the purchase model's predictions and the purchase baselines are functions
of the customer's history) come from the distinct values of the groups: at 10M customers, 3.1M distinct
histories were sorted instead of 10M customers (0.7 s instead of 2.0 s each). An array that a ranking's order nearly
sorts (the baselines that are one rate times different durations) is sorted along it. Other arrays take numpy's
sorts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

__all__ = ["Groups", "Ranking", "Ranks", "average_ranks", "ranking"]

Groups = tuple[NDArray[np.int64], NDArray[np.integer[Any]]]
"""Groups of rows: the row number of each group's first row, and each row's group (int64 or int32)
(:func:`models.histories.history_codes`)."""


@dataclass(frozen=True)
class Ranks:
    """One array and its average ranks: what Spearman needs of it (see :func:`average_ranks`)."""

    values: np.ndarray
    ranks: np.ndarray
    """Average ranks, 1 for the lowest (``scipy.stats.rankdata(values)``)."""


@dataclass(frozen=True)
class Ranking(Ranks):
    """One array sorted once: what the ranking metrics need of it (see :func:`ranking`)."""

    order: np.ndarray
    """Row numbers from the highest value to the lowest (ties keep their order: a stable sort)."""


_TIE_SAMPLE = 4096


def _descending(values: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers from the highest value to the lowest, ties in row order (``argsort(-values,
    kind="stable")``, as int32 below 2^31 rows), and which neighbours in that order tie (:func:`_ties`).

    numpy's stable sort of floats is a merge sort; on mostly distinct floats its default sort (a SIMD
    quicksort) takes half the time. So such floats are sorted with it, and the rows of each run of equal
    values are put back in row order (:func:`_rows_in_order_within_ties`): the order of the stable sort,
    exactly (tested). Where ties are common (a spaced sample of 4,096 values is under 3/4 distinct: counts,
    zeros) the quicksort is no faster and the runs are long, so those take the stable sort, as do arrays
    with NaN (which equals nothing, so its runs cannot be found) and other dtypes. ``start``: another
    array's order of the rows, which may nearly sort ``values`` (:func:`_nearly_sorted`); then ``values`` is
    stable-sorted along it (tie-heavy or not), and its runs of ties put in row order. The path chosen changes
    the time, never the order.
    """
    n = len(values)
    narrow = np.int32 if n < 2**31 else np.int64  # half the memory of argsort's int64, the same rows
    if values.dtype.kind != "f":
        # integers and booleans: negating wraps (unsigned, the smallest integer) or fails (booleans); the stable
        # ascending order of the reversed rows, read backwards, is the stable descending order
        order = (n - 1 - np.argsort(values[::-1], kind="stable"))[::-1].astype(narrow)
        return order, _ties(values[order])
    if n >= 2**31 or np.isnan(values).any():
        order = np.argsort(-values, kind="stable").astype(narrow, copy=False)
        return order, _ties(values[order])
    if start is not None and _nearly_sorted(values, start):
        # numpy's stable sort finds the runs of a nearly sorted array: 0.04 s at 10M rows, against 1.4 s
        ordered = values[start]
        np.negative(ordered, out=ordered)
        order = start[np.argsort(ordered, kind="stable")].astype(narrow, copy=False)
        np.take(values, cast("NDArray[np.intp]", order), out=ordered)  # in place of the negated values
    elif _tie_heavy(values):
        order = np.argsort(-values, kind="stable").astype(narrow, copy=False)
        return order, _ties(values[order])
    else:
        # ascending, read backwards: a descending order but for the ties, which are put in row order below
        # (no negated copy of the values while the sort runs)
        order = np.argsort(values)[::-1].astype(narrow)
        ordered = values[order]
    same = _ties(ordered)
    del ordered
    _rows_in_order_within_ties(order, same)
    return order, same


def _tie_heavy(values: np.ndarray) -> bool:
    """Whether a spaced sample of :data:`_TIE_SAMPLE` values is under 3/4 distinct."""
    sample = values[:: max(1, len(values) // _TIE_SAMPLE)]
    return len(np.unique(sample)) < 0.75 * len(sample)


_PREFIX = 4096
"""Positions of another order :func:`_nearly_sorted` checks."""


def _nearly_sorted(values: np.ndarray, order: np.ndarray) -> bool:
    """Whether ``values`` rarely rises along the first positions of ``order`` (at most 1 in 100)."""
    if len(order) != len(values):
        return False
    ordered = values[order[:_PREFIX]]
    return int(np.count_nonzero(ordered[1:] > ordered[:-1])) <= len(ordered) // 100


def _tied_runs(same: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions (of ``n``) that tie with a neighbour (``same[i]``: position i + 1 ties with position i), and
    which of them start a run."""
    tied = np.zeros(n, dtype=bool)
    tied[1:] = same
    tied[:-1] |= same
    positions = np.flatnonzero(tied)
    del tied
    first = np.ones(len(positions), dtype=bool)
    first[1:] = ~same[positions[1:] - 1]
    return positions, first


def _rows_in_order_within_ties(order: np.ndarray, same: np.ndarray) -> None:
    """Put the rows of each run of ties (``same[i]``: position i + 1 ties with position i) in row order, in
    place, by one integer sort of (run, row) keys of the tied positions alone: the runs stay where they are."""
    n = len(order)
    if not same.any():
        return
    positions, first = _tied_runs(same, n)
    run = np.cumsum(first, dtype=np.int64)
    del first
    run *= n
    keys = run + order[positions]
    keys.sort()
    keys -= run
    order[positions] = keys


def ranking(values: np.ndarray, like: Ranking | None = None) -> Ranking:
    """Sort ``values`` once (highest first, stable) and derive the average ranks from that order: the
    ranks equal ``scipy.stats.rankdata``'s exactly (tie groups get the mean of integer ranks). ``like``: a
    ranking of another array whose order may nearly sort ``values`` (one rate over different durations):
    then ``values`` is sorted along it (:func:`_descending`)."""
    values = np.asarray(values)
    order, same = _descending(values, like.order if like is not None else None)
    return Ranking(values, _ranks_from_top(order, same), order)


def _ties(ordered: np.ndarray) -> np.ndarray:
    """``same[i]``: sorted position i + 1 holds the value of position i."""
    same: np.ndarray = ordered[1:] == ordered[:-1]
    return same


def _ranks_from_top(order: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Average ranks (1 for the lowest) from rows ``order`` taken highest value first, ``same`` marking the ties
    between neighbours in that order (:func:`_ties`): whatever the order within a run of ties, its rows share
    the run's mean rank.

    Positions s..e-1 from the top hold ascending ranks n-e+1..n-s, whose mean is (2n - s - e + 1) / 2 (for a
    run of one, n - s): exact integers over 2, so the same floats whichever way they are spread. With few
    runs (counts, many zeros) each run's mean is spread over its positions; with many (mostly distinct values)
    every row gets n - s and only the tied positions are corrected. Either way the ranks are written
    :data:`_PART` positions at a time: the working memory besides the ranks is a part's, not the rows' length
    (at 10M customers 0.08 GB less per ranking, and 0.25 GB less before that)."""
    n = len(order)
    ranks = np.empty(n)
    tied_pairs = int(np.count_nonzero(same))
    if tied_pairs >= n // 2:  # few runs: their bounds are short arrays
        starts = np.flatnonzero(~same) + 1
        starts = np.concatenate([[0], starts])
        means = (2 * n - 2 * starts - np.diff(starts, append=n) + 1) / 2.0
        del starts
        run = -1  # the run of the position before the part
        for part in range(0, n, _PART):
            stop = min(part + _PART, n)
            new_run = np.ones(stop - part, dtype=bool)  # position i starts a run
            np.logical_not(same[max(part - 1, 0) : stop - 1], out=new_run[1 if part == 0 else 0 :])
            runs = np.cumsum(new_run, dtype=np.int64)
            runs += run
            ranks[order[part:stop]] = means[runs]
            run = int(runs[-1])
        return ranks
    for part in range(0, n, _PART):
        stop = min(part + _PART, n)
        ranks[order[part:stop]] = np.arange(n - part, n - stop, -1, dtype=np.float64)
    if tied_pairs:
        _tied_means(ranks, order, same)
    return ranks


def _tied_means(ranks: np.ndarray, order: np.ndarray, same: np.ndarray) -> None:
    """Give the rows of each run of ties (``same[i]``: position i + 1 ties with position i) their run's mean
    rank, from the tied positions alone, a part at a time."""
    n = len(order)
    positions, first = _tied_runs(same, n)
    run = np.cumsum(first)
    run -= 1
    starts = positions[first]
    del first
    means = (2 * n - 2 * starts - np.bincount(run) + 1) / 2.0
    for part in range(0, len(positions), _PART):
        rows = slice(part, part + _PART)
        ranks[order[positions[rows]]] = means[run[rows]]


_PART = 1 << 18
"""Positions ranked, or tied positions corrected, at a time (their temporaries, not the rows')."""


def _counted_ranks(values: np.ndarray) -> np.ndarray | None:
    """Average ranks of whole numbers spanning at most ``len(values)`` by counting them (no sort), or None
    for other values. A value with ``b`` values below it and ``c`` equal to it has ranks b+1..b+c, mean
    (2b + c + 1) / 2: the same integer over 2 as :func:`ranking` computes, so the same float."""
    n = len(values)
    if n == 0 or values.dtype.kind not in "fiu":
        return None
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):  # NaN makes both NaN
        return None
    # the span as Python numbers: no overflow at the integers' extremes; unsigned values past int64's range are
    # not counted (they would wrap in the int64 copy below)
    if float(high) - float(low) >= n or (values.dtype.kind == "u" and int(high) > np.iinfo(np.int64).max):
        return None
    whole = values.astype(np.int64)
    if not np.array_equal(whole, values):  # fractions
        return None
    whole -= int(whole.min())
    counts = np.bincount(whole)
    below = np.cumsum(counts) - counts
    return ((2 * below + counts + 1) / 2.0)[whole]


def average_ranks(values: np.ndarray, groups: Groups | None = None) -> Ranks:
    """The average ranks of ``values`` (``scipy.stats.rankdata``'s, exactly), without the stable order a
    :class:`Ranking` keeps: whole numbers (counts) are counted; values equal within each of ``groups`` are
    ranked by their groups (:func:`_grouped_ranks`); other floats take numpy's fast unstable sort, since the
    mean rank of a run of ties does not depend on the order within it. Arrays with NaN take :func:`ranking`,
    whose ranks put NaN lowest."""
    values = np.asarray(values)
    counted = _counted_ranks(values)
    if counted is not None:
        return Ranks(values, counted)
    grouped = _grouped_ranks(values, groups) if groups is not None else None
    if grouped is not None:
        return Ranks(values, grouped)
    if values.dtype.kind != "f" or len(values) >= 2**31 or np.isnan(values).any():
        whole = ranking(values)
        return Ranks(whole.values, whole.ranks)
    # ascending, read backwards: highest first (a run of ties in any order has the same mean rank), as int32
    # (half the memory while the ranks are built); no negated copy of the values while the sort runs
    order = np.argsort(values)[::-1].astype(np.int32)  # fewer than 2^31 rows here
    return Ranks(values, _ranks_from_top(order, _ties(values[order])))


def _grouped_ranks(values: np.ndarray, groups: Groups) -> np.ndarray | None:
    """Average ranks of ``values`` from one value per group, or None when ``values`` is not equal within each
    group (or has NaN, or the groups are as many as the rows). A value with ``b`` rows below it and ``c``
    equal to it (summed over the groups that share it) has the mean rank (2b + c + 1) / 2: the same integer
    over 2 as :func:`ranking` computes, so the same float."""
    rows, codes = groups
    if values.dtype.kind != "f" or len(codes) != len(values) or len(rows) >= len(values):
        return None
    distinct = values[rows]
    if np.isnan(distinct).any() or not np.array_equal(distinct[codes], values):
        return None
    counts = np.bincount(codes, minlength=len(rows))
    order = np.argsort(distinct)
    ordered = distinct[order]
    starts = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    del ordered
    run_counts = np.add.reduceat(counts[order], np.flatnonzero(starts))  # rows per distinct value, ascending
    below = np.cumsum(run_counts) - run_counts
    means = (2 * below + run_counts + 1) / 2.0
    by_group = np.empty(len(rows))
    by_group[order] = means[np.cumsum(starts) - 1]
    return by_group[codes]
