"""The DuckDB engine's edges: what it writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config.loading import parse_config
from pipeline.engines.duckdb_engine import DuckDBEngine
from tests.feeds import RETAIL_MAPPING, online_retail_lines


def _quarantine(path: Path, written: Path) -> pd.DataFrame:
    raw = {
        "data": {"source": "csv", "path": str(path), "columns": RETAIL_MAPPING},
        "prepare": {"calibration_end": "2011-09-09"},
        "engine": {"threads": 4},
    }
    config = parse_config(raw).resolved()
    engine = DuckDBEngine(config.engine)
    try:
        prepared = engine.prepare(engine.open(config.data), config.prepare)
        return pd.read_parquet(engine.write_quarantine(prepared, written))
    finally:
        engine.close()


def test_the_quarantine_file_is_sorted_by_reason_and_the_same_on_every_run(tmp_path: Path) -> None:
    """Invoice lines with empty ids, repeated lines and cancellations: the quarantined rows come sorted by
    reason, then by the source's columns as text (NULL first), and two runs write the same rows in the same
    order (unsorted, the order of DuckDB's threads changed from run to run)."""
    path = tmp_path / "retail.csv"
    online_retail_lines().lines.to_csv(path, index=False)
    first = _quarantine(path, tmp_path / "first.parquet")
    second = _quarantine(path, tmp_path / "second.parquet")
    assert first["reason"].nunique() >= 2
    assert len(first) > 1_000
    pd.testing.assert_frame_equal(first, second)
    columns = ["reason", *(c for c in first.columns if c != "reason")]
    expected = first.sort_values(columns, na_position="first", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, expected)
    assert list(first.columns)[-1] == "reason"  # the columns keep their place: the source's, then the reason
