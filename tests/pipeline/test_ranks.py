"""Ranks and orders: scipy's average ranks and numpy's stable order, whichever way they are found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from pipeline.ranks import _grouped_ranks, _nearly_sorted, average_ranks, ranking


def test_ranks_are_scipy_average_ranks() -> None:
    values = np.array([3.0, 1.0, 3.0, 0.0, 0.0, 0.0, 2.5, 3.0])
    np.testing.assert_array_equal(ranking(values).ranks, rankdata(values))
    np.testing.assert_array_equal(ranking(values).order, np.argsort(-values, kind="stable"))
    assert ranking(values).order.dtype == np.int32  # half the memory of argsort's int64, the same rows


def _arrays(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Arrays that take each path of the sorts: mostly distinct floats with runs of ties (short runs, a
    long run of zeros, 0.0 beside -0.0), tie-heavy floats, counts, negative and wide-spread whole numbers,
    integers, NaN, and the smallest sizes."""
    spend = rng.gamma(0.6, 40.0, n)
    spend[rng.random(n) < 0.15] = 0.0
    signed_zeros = spend.copy()
    signed_zeros[rng.random(n) < 0.05] = -0.0
    short_runs = np.round(rng.gamma(2.0, 50.0, n), 2)  # about 85% distinct, many runs of 2-3
    with_nan = spend.copy()
    with_nan[rng.random(n) < 0.01] = np.nan
    return {
        "spend": spend,
        "signed_zeros": signed_zeros,
        "short_runs": short_runs,
        "tie_heavy": np.round(rng.gamma(2.0, 1.0, n), 1),
        "counts": rng.poisson(1.2, n).astype(float),
        "negative_whole": rng.integers(-50, 50, n).astype(float),
        "wide_whole": rng.integers(0, 10 * n, n).astype(float),
        "integers": rng.integers(0, 40, n),
        "with_nan": with_nan,
        "constant": np.full(n, 3.5),
        "empty": np.zeros(0),
        "one": np.array([2.0]),
        "two_tied": np.array([1.0, 1.0]),
    }


def test_the_fast_sorts_give_the_stable_order_and_scipys_ranks() -> None:
    """numpy's quicksort with the ties put back in row order equals the stable sort; average ranks by
    counting or by the unstable sort equal scipy's (and, with NaN, the ranking's, which puts NaN lowest)."""
    rng = np.random.default_rng(11)
    for n in (300_000, 5_000):
        for name, values in _arrays(rng, n).items():
            ranked = ranking(values)
            np.testing.assert_array_equal(ranked.order, np.argsort(-values, kind="stable"), err_msg=name)
            ranks = average_ranks(values)
            assert ranks.values is values or np.array_equal(ranks.values, values, equal_nan=True)
            if name == "with_nan":
                np.testing.assert_array_equal(ranks.ranks, ranked.ranks)
                continue
            np.testing.assert_array_equal(ranked.ranks, rankdata(values), err_msg=name)
            np.testing.assert_array_equal(ranks.ranks, rankdata(values), err_msg=name)


def test_the_tied_positions_corrected_a_part_at_a_time_give_scipys_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mostly distinct values (each row n - s, then the tied positions corrected) and tie-heavy ones (each
    run's mean repeated): both ways, with the tied positions taken a few at a time, are scipy's ranks."""
    import pipeline.ranks as ranks

    monkeypatch.setattr(ranks, "_PART", 7)
    rng = np.random.default_rng(12)
    for name, values in _arrays(rng, 5_000).items():
        if name == "with_nan":
            continue
        np.testing.assert_array_equal(ranking(values).ranks, rankdata(values), err_msg=name)
        np.testing.assert_array_equal(average_ranks(values).ranks, rankdata(values), err_msg=name)


@pytest.mark.parametrize("kind", ["distinct", "zeros"])
def test_a_ranking_works_in_little_more_memory_than_it_keeps(kind: str) -> None:
    """A ranking keeps its ranks and order (12 bytes a row); building it takes at most four arrays of floats
    (32 bytes a row) at any moment, measured by tracemalloc (numpy reports its arrays to it): the ranks
    of every run at once took 55 bytes a row on mostly distinct values."""
    import tracemalloc

    n = 400_000
    rng = np.random.default_rng(13)
    values = rng.gamma(0.6, 40.0, n)
    if kind == "zeros":
        values[rng.random(n) < 0.7] = 0.0
    tracemalloc.start()
    try:
        ranked = ranking(values)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(ranked.ranks, rankdata(values))
    assert peak < 32 * n


def _groups(rng: np.random.Generator, n: int, distinct: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows in ``distinct`` groups, as history codes number them: first rows, and each row's group."""
    codes = rng.integers(0, distinct, n)
    _, first, codes = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first)  # groups numbered in order of first occurrence
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return first[order].astype(np.int64), renumber[codes].astype(np.int64)


def test_ranks_by_group_are_scipys_ranks() -> None:
    """Values equal within groups are ranked from one value per group: scipy's ranks, exactly, with values shared
    by several groups, 0.0 beside -0.0, long runs and few groups; values that differ within a group, or with NaN,
    take the sorts, with the same ranks."""
    rng = np.random.default_rng(21)
    for n, distinct in ((200_000, 30_000), (200_000, 50), (5_000, 4_000)):
        rows, codes = _groups(rng, n, distinct)
        per_group = {
            "rates": rng.gamma(1.0, 2.0, len(rows)),
            "shared": np.round(rng.gamma(2.0, 1.0, len(rows)), 1),  # groups with equal values
            "signed_zeros": np.where(rng.random(len(rows)) < 0.5, 0.0, -0.0) * (rng.random(len(rows)) < 0.7),
            "fractions": rng.integers(0, 3, len(rows)) / 3.0,
        }
        for name, values in per_group.items():
            spread = values[codes]
            assert _grouped_ranks(spread, (rows, codes)) is not None, name  # ranked by group
            ranks = average_ranks(spread, (rows, codes))
            assert ranks.values is spread
            np.testing.assert_array_equal(ranks.ranks, rankdata(spread), err_msg=name)
        noisy = per_group["rates"][codes] + rng.random(n) * 1e-9  # not equal within its groups
        assert _grouped_ranks(noisy, (rows, codes)) is None
        np.testing.assert_array_equal(average_ranks(noisy, (rows, codes)).ranks, rankdata(noisy))
        with_nan = per_group["rates"][codes]
        with_nan[codes == codes[0]] = np.nan
        np.testing.assert_array_equal(average_ranks(with_nan, (rows, codes)).ranks, ranking(with_nan).ranks)


def test_a_ranking_along_another_order_is_the_stable_order() -> None:
    """One rate times two durations ties differently (rounding): sorted along the first one's order, the second
    gets the stable order and scipy's ranks; so do arrays the other order does not sort, or with NaN."""
    rng = np.random.default_rng(22)
    n = 300_000
    rate = np.round(rng.gamma(0.8, 30.0, n), 2) / (rng.integers(1, 400, n) + 1 / 7)
    rate[rng.random(n) < 0.3] = 0.0
    first = rate * 17.25
    for name, values in {
        "same_rate": rate * 25.857142857142858,
        "unrelated": rng.gamma(1.0, 1.0, n),
        "reversed": -first,
        "with_nan": np.where(rng.random(n) < 0.01, np.nan, rate * 3.0),
        "signed_zeros": np.where(first == 0.0, -0.0, first),
    }.items():
        like = ranking(first)
        # with NaN nearly sorted too, but taken by the stable sort: NaN equals nothing, so its runs cannot be found
        assert _nearly_sorted(values, like.order) == (name in ("same_rate", "signed_zeros", "with_nan")), name
        ranked = ranking(values, like=like)
        np.testing.assert_array_equal(ranked.order, np.argsort(-values, kind="stable"), err_msg=name)
        if name != "with_nan":
            np.testing.assert_array_equal(ranked.ranks, rankdata(values), err_msg=name)
    assert ranking(rate[:10], like=ranking(first)).order.tolist() == np.argsort(-rate[:10], kind="stable").tolist()


def test_integers_at_their_extremes_and_booleans_are_ranked_as_scipy_ranks_them() -> None:
    """Integers are not negated to sort them (unsigned values and the smallest integer wrapped), their span is
    not taken in their own type (it overflowed at int64's extremes), and booleans are ranked (they raised)."""
    cases: list[np.ndarray] = [
        np.array([0, 1, 2, 200], dtype=np.uint8),
        np.array([-128, 127, 0, 127], dtype=np.int8),
        np.array([-(2**63), 2**63 - 1, 0, -(2**63)], dtype=np.int64),
        np.array([-(2**62), 2**62, 0]),
        np.array([2**64 - 1, 0, 2**64 - 1, 5], dtype=np.uint64),
        np.array([True, False, True, False]),
        np.array([], dtype=np.int64),
    ]
    for values in cases:
        expected_order = sorted(range(len(values)), key=lambda i: (-int(values[i]), i))
        ranked = ranking(values)
        assert ranked.order.tolist() == expected_order, values
        np.testing.assert_array_equal(ranked.ranks, rankdata(values), err_msg=str(values))
        np.testing.assert_array_equal(average_ranks(values).ranks, rankdata(values), err_msg=str(values))
