"""The Spark benchmark runs end to end at a small size and finds Spark's numbers equal to DuckDB's (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import spark_bench

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")


def test_small_run_is_equal_to_duckdb(tmp_path: Path) -> None:
    results = spark_bench.benchmark(20_000, [2], folder=tmp_path)
    assert [r["engine"] for r in results] == ["DuckDB", "Spark local[2], 2 partitions"]
    assert all(r["equal"] is True for r in results)
    assert results[0]["customers"] == results[1]["customers"]
    assert float(str(results[1]["peak_mb"])) > float(str(results[0]["peak_mb"]))  # the JVM is counted
    assert "| 20,000 |" in spark_bench.markdown(results)
