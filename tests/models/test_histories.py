from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.feed import prepared_feed
from models.histories import history_codes, in_chunks, per_history, unique_histories


def test_unique_histories_counts() -> None:
    rows = unique_histories([0, 0, 1, 1], [0, 0, 2, 3], [5, 5, 5, 5])
    assert rows.to_dict("records") == [
        {"frequency": 0.0, "recency": 0.0, "T": 5.0, "weight": 2},
        {"frequency": 1.0, "recency": 2.0, "T": 5.0, "weight": 1},
        {"frequency": 1.0, "recency": 3.0, "T": 5.0, "weight": 1},
    ]


# The packed integer key must group exactly as the three-column groupby / MultiIndex.factorize it replaced.


def _groupby_histories(f: np.ndarray, r: np.ndarray, t: np.ndarray) -> pd.DataFrame:
    """The previous implementation of unique_histories."""
    frame = pd.DataFrame({"frequency": f, "recency": r, "T": t})
    return frame.groupby(["frequency", "recency", "T"], sort=True).size().rename("weight").reset_index()


def _multiindex_codes(f: np.ndarray, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous implementation of the scoring's distinct-history step."""
    codes = pd.MultiIndex.from_arrays([f, r, t]).factorize()[0]
    first = np.full(codes.max() + 1, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first, codes


def _assert_same(f: np.ndarray, r: np.ndarray, t: np.ndarray) -> None:
    pd.testing.assert_frame_equal(unique_histories(f, r, t), _groupby_histories(f, r, t))
    first, codes = history_codes(f, r, t)
    old_first, old_codes = _multiindex_codes(f, r, t)
    np.testing.assert_array_equal(codes, old_codes)
    np.testing.assert_array_equal(first, old_first)


def test_packed_key_groups_cdnow_as_before(cdnow_sample_summary: pd.DataFrame) -> None:
    f, r, t = (cdnow_sample_summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    _assert_same(f, r, t)
    assert len(unique_histories(f, r, t)) == 1_016
    assert unique_histories(f, r, t)["weight"].sum() == 2_357


def test_packed_key_groups_the_generated_feed_as_before(tmp_path: Path) -> None:
    prepared = prepared_feed(200_000, tmp_path)
    for frame in (prepared.calibration, prepared.full):
        f, r, t = (frame[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
        _assert_same(f, r, t)
    assert len(prepared.full) == 20_074


def test_packed_key_on_shuffled_random_histories() -> None:
    rng = np.random.default_rng(3)
    f = rng.integers(0, 30, 50_000).astype(float)
    r = np.round(rng.uniform(0, 50, 50_000), 1)
    t = r + rng.integers(0, 5, 50_000)
    _assert_same(f, r, t)


def test_unique_histories_leaves_out_missing_values_as_groupby_does() -> None:
    f = np.array([0.0, np.nan, 1.0, 0.0])
    r = np.array([0.0, 1.0, 1.0, 0.0])
    t = np.array([3.0, 3.0, 3.0, 3.0])
    pd.testing.assert_frame_equal(unique_histories(f, r, t), _groupby_histories(f, r, t))


def test_history_codes_of_nothing() -> None:
    first, codes = history_codes(np.zeros(0), np.zeros(0), np.zeros(0))
    assert len(first) == 0
    assert len(codes) == 0
    assert len(unique_histories([], [], [])) == 0


def test_per_history_equals_the_call_on_every_row(cdnow_sample_summary: pd.DataFrame) -> None:
    from models import purchase
    from models.bgnbd import BetaGeoParams

    params = BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259)
    f, r, t = (cdnow_sample_summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    shared = per_history(lambda *c: purchase.p_alive(params, *c), f, r, t)
    np.testing.assert_array_equal(shared, purchase.p_alive(params, f, r, t))


def test_in_chunks_on_threads_equals_one_call(
    cdnow_sample_summary: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import histories, purchase
    from models.bgnbd import BetaGeoParams

    params = BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259)
    f, r, t = (cdnow_sample_summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))

    def both(*c: np.ndarray) -> dict[str, np.ndarray]:
        return {"p_alive": purchase.p_alive(params, *c), "expected": purchase.expected_purchases(params, 39.0, *c)}

    whole = both(f, r, t)
    monkeypatch.setattr(histories, "PARALLEL_ROWS", 100)
    monkeypatch.setattr(histories, "workers", lambda: 2)
    chunked = in_chunks(both, f, r, t)
    for key, values in whole.items():
        np.testing.assert_array_equal(chunked[key], values)
    monkeypatch.setattr(histories, "CHUNK_ROWS", 37)  # parts capped: 64 of them, the same numbers
    chunked = in_chunks(both, f, r, t)
    for key, values in whole.items():
        np.testing.assert_array_equal(chunked[key], values)
    np.testing.assert_array_equal(per_history(lambda *c: purchase.p_alive(params, *c), f, r, t), whole["p_alive"])


def test_in_chunks_joins_one_name_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunks of a name are let go as it is joined: at most the outputs and one name's chunks (their
    rows once more) at any moment, not every name twice (tracemalloc, which numpy reports its arrays to)."""
    import tracemalloc

    from models import histories

    monkeypatch.setattr(histories, "PARALLEL_ROWS", 1_000)
    monkeypatch.setattr(histories, "workers", lambda: 2)
    x = np.linspace(0.0, 1.0, 200_000)
    names = [f"n{i}" for i in range(5)]

    def five(c: np.ndarray) -> dict[str, np.ndarray]:
        return {name: c + i for i, name in enumerate(names)}

    tracemalloc.start()
    try:
        joined = in_chunks(five, x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for i, name in enumerate(names):
        np.testing.assert_array_equal(joined[name], x + i)
    outputs = 5 * x.nbytes
    assert peak < outputs + 1.5 * x.nbytes  # every name's chunks beside the outputs: twice the outputs


def test_once_per_distinct_equals_the_call_on_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated rows, NaN, -0.0 beside 0.0: the same numbers as the call on all rows; scalars, grids and a few
    rows take the plain call."""
    from models import histories
    from models.histories import once_per_distinct

    monkeypatch.setattr(histories, "DISTINCT_ROWS", 4)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 5, 500).astype(float)
    z = rng.integers(0, 7, 500) / 9.0
    x[::37], z[::41] = np.nan, -0.0
    calls: list[int] = []

    def term(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        calls.append(np.size(a))
        return np.asarray(np.exp(a) * np.sin(b + 1) + b, dtype=np.float64)

    np.testing.assert_array_equal(once_per_distinct(term, x, z), term(x, z))
    assert calls[0] < 50  # the distinct rows only
    grid = np.ones((3, 4))
    np.testing.assert_array_equal(once_per_distinct(term, grid, grid), term(grid, grid))
    np.testing.assert_array_equal(once_per_distinct(term, np.asarray(1.0), np.asarray(2.0)), term(1.0, 2.0))
