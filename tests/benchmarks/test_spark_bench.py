"""The Spark benchmark runs end to end at a small size and finds Spark's numbers equal to DuckDB's (slow)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pandas as pd
import pytest

from benchmarks import spark_bench

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")


def test_small_run_is_equal_to_duckdb(tmp_path: Path) -> None:
    results = spark_bench.benchmark(20_000, [2], folder=tmp_path)
    assert [r["engine"] for r in results] == ["DuckDB", "Spark local[2], 2 partitions"]
    assert results[1]["equal"] is True  # DuckDB's own row is the reference: its "equal" is True by definition
    spark_out = tmp_path / "spark_2"
    assert spark_bench.outputs_equal(tmp_path / "duckdb", spark_out)
    full = pd.read_parquet(spark_out / "full.parquet")  # the comparison can fail: one value off by 1e-9
    full.loc[0, "recency"] = cast(float, full.loc[0, "recency"]) + 1e-9  # pandas types a cell as any scalar
    full.to_parquet(spark_out / "full.parquet")
    assert not spark_bench.outputs_equal(tmp_path / "duckdb", spark_out)
    assert results[0]["customers"] == results[1]["customers"]
    assert float(str(results[1]["peak_mb"])) > float(str(results[0]["peak_mb"]))  # the JVM is counted
    assert "| 20,000 |" in spark_bench.markdown(results)
