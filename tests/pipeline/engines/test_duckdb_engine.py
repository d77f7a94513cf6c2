"""The DuckDB engine's edges: what it writes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.loading import parse_config
from pipeline.engines import duckdb_engine
from pipeline.engines.duckdb_engine import DuckDBEngine
from tests.feeds import RETAIL_MAPPING, online_retail_lines


def _written(
    data: Mapping[str, object], calibration_end: str, written: Path, threads: int | None = None
) -> pd.DataFrame:
    """Prepare ``data`` with the DuckDB engine and read back the quarantine file it writes at ``written``."""
    raw = {"data": data, "prepare": {"calibration_end": calibration_end}, "engine": {"threads": threads}}
    config = parse_config(raw).resolved()
    engine = DuckDBEngine(config.engine)
    try:
        prepared = engine.prepare(engine.open(config.data), config.prepare)
        return pd.read_parquet(engine.write_quarantine(prepared, written))
    finally:
        engine.close()


def _quarantine(path: Path, written: Path) -> pd.DataFrame:
    return _written({"source": "csv", "path": str(path), "columns": RETAIL_MAPPING}, "2011-09-09", written, threads=4)


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


def _small_feed(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["cust", "when", "amount", "Reason"])
    frame.to_csv(path, index=False)


def _small(path: Path, written: Path) -> pd.DataFrame:
    data = {"source": "csv", "path": str(path), "columns": {"customer_id": "cust", "timestamp": "when"}}
    return _written(data, "2021-02-01", written)


GOOD = [("a", "2021-01-01", "1", "x"), ("a", "2021-03-01", "2", "x"), ("b", "2021-01-05", "3", "x")]
GOOD += [("b", "2021-01-20", "4", "x"), ("b", "2021-03-03", "5", "x")]


def test_a_source_column_named_reason_in_another_case_is_kept_apart(tmp_path: Path) -> None:
    """SQL names ignore case: a source column ``Reason`` is written as ``source_Reason``, and the rows are sorted
    by the quarantine's own reason (the source's column came first in the sort, as ``reason_1`` in the file)."""
    path = tmp_path / "feed.csv"
    _small_feed(path, [*GOOD, ("", "2021-01-01", "1", "b"), ("", "2021-04-01", "3", "c"), ("c", "bad", "5", "zz")])
    written = _small(path, tmp_path / "quarantine.parquet")
    assert list(written.columns) == ["cust", "when", "amount", "source_Reason", "reason"]
    assert list(written["reason"]) == ["invalid_timestamp", "missing_customer_id", "missing_customer_id"]
    assert list(written["source_Reason"]) == ["zz", "b", "c"]


def test_no_quarantined_rows_write_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    _small_feed(path, GOOD)
    written = _small(path, tmp_path / "quarantine.parquet")
    assert written.empty
    assert list(written.columns) == ["cust", "when", "amount", "source_Reason", "reason"]


def test_above_the_bound_the_quarantine_is_written_as_it_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past :data:`SORTED_QUARANTINE_ROWS` rows the file is not sorted (a sort of a quarantine as large as the
    feed would double the write), and holds the same rows."""
    path = tmp_path / "feed.csv"
    bad = [("", f"2021-01-{day:02d}", str(day), "x") for day in range(1, 29)] + [("c", "bad", "5", "zz")]
    _small_feed(path, [*GOOD, *bad])
    sorted_rows = _small(path, tmp_path / "sorted.parquet")
    monkeypatch.setattr(duckdb_engine, "SORTED_QUARANTINE_ROWS", 3)
    streamed = _small(path, tmp_path / "streamed.parquet")
    assert len(streamed) == len(sorted_rows) == 29
    key = list(sorted_rows.columns)
    pd.testing.assert_frame_equal(
        streamed.sort_values(key, na_position="first").reset_index(drop=True),
        sorted_rows.sort_values(key, na_position="first").reset_index(drop=True),
    )
