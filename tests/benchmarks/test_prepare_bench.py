"""The prepare benchmark runs end to end at a small size and finds both engines' outputs equal."""

from __future__ import annotations

from pathlib import Path

from benchmarks import prepare_bench


def test_small_run_is_equal_to_lifetimes(tmp_path: Path) -> None:
    rows = prepare_bench.benchmark([20_000], lifetimes_max=20_000, folder=tmp_path)
    assert rows[0]["equal"] is True
    # 20,000 rows drawn over 2,000 customer ids: almost every id occurs.
    assert 1_900 < int(str(rows[0]["customers"])) <= 2_000
    assert "| 20,000 |" in prepare_bench.markdown(rows)
