"""The DuckDB engine's edges: what it writes, and its count of the quarantined rows per day."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import DataConfig, EngineConfig, PrepareConfig
from pipeline.config.loading import parse_config
from pipeline.engines import duckdb_engine
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.engines.prepared import PreparedData
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


# The quarantined rows per day: a feed with rows quarantined on known days (in America/New_York) and without a
# readable timestamp, counted by hand.
DAY_ZONE = "America/New_York"
DAY_CONFIG = PrepareConfig(
    calibration_end=dt.date(2021, 2, 1),
    observation_end=dt.date(2021, 3, 31),
    timezone=DAY_ZONE,
    duplicates="quarantine",
)
DAY_FEED = [
    *[("a", "2021-01-01", "10"), ("a", "2021-03-01", "20"), ("b", "2021-01-05", "5"), ("b", "2021-01-20", "7")],
    ("b", "2021-01-20", "7"),  # duplicate, 2021-01-20
    ("", "2021-01-10", "3"),  # missing_customer_id, 2021-01-10
    ("", "2021-01-10 18:00", "4"),  # missing_customer_id, 2021-01-10
    ("c", "2021-02-14", "abc"),  # invalid_amount, 2021-02-14
    ("", "2021-02-15T04:30:00Z", "1"),  # missing_customer_id, 23:30 on 2021-02-14 in New York
    ("f", "1890-01-01", "5"),  # timestamp_out_of_range, 1890-01-01
    ("", "2021-04-20", "5"),  # missing_customer_id (before after_observation_end), 2021-04-20
    ("e", "2021-04-15", "5"),  # after_observation_end: not counted
    ("d", "not a date", "1"),  # invalid_timestamp: no day
    ("d", "", "2"),  # missing_timestamp: no day
    ("", "bad", "1"),  # missing_customer_id without a readable timestamp: no day
]
DAY_COUNTS: dict[dt.date | None, int] = {
    dt.date(2021, 1, 10): 2,
    dt.date(2021, 1, 20): 1,
    dt.date(2021, 2, 14): 2,
    dt.date(1890, 1, 1): 1,
    dt.date(2021, 4, 20): 1,
    None: 3,
}


def day_feed(folder: Path) -> DataConfig:
    """:data:`DAY_FEED` as a CSV file in ``folder``."""
    path = folder / "days.csv"
    pd.DataFrame(DAY_FEED, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    return DataConfig(source="csv", path=path)


def test_the_quarantined_rows_per_day_are_the_hand_count(tmp_path: Path) -> None:
    """Every reason but after_observation_end, each row on the day of its timestamp as prepare read it (an offset
    converted to prepare.timezone), whatever its reason; rows without a readable timestamp under None."""
    engine = DuckDBEngine(EngineConfig())
    try:
        prepared = engine.prepare(engine.open(day_feed(tmp_path)), DAY_CONFIG)
        days = engine.quarantined_days(prepared)
        assert days == DAY_COUNTS
        ledger = prepared.ledger
        assert ledger.quarantined["after_observation_end"] == 1
        assert sum(days.values()) == ledger.rows_quarantined - 1 == 10
        with pytest.raises(TypeError, match="not prepared by the DuckDB engine"):
            engine.quarantined_days(dataclasses.replace(prepared, quarantine_days=None))
    finally:
        engine.close()


def test_a_quarantined_day_outside_pythons_dates_is_counted_on_the_nearest(tmp_path: Path) -> None:
    """A year 0 (out of range) and a year 12000 (no id) came back as text ('0001-06-01 (BC)', '12000-01-01'), and
    the monitor's comparison of days stopped with a TypeError."""
    path = tmp_path / "far.csv"
    rows = [*DAY_FEED[:4], ("g", "0000-06-01", "5"), ("", "12000-01-01", "5")]
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    engine = DuckDBEngine(EngineConfig())
    try:
        prepared = engine.prepare(engine.open(DataConfig(source="csv", path=path)), DAY_CONFIG)
        assert prepared.ledger.quarantined == {"timestamp_out_of_range": 1, "missing_customer_id": 1}
        assert engine.quarantined_days(prepared) == {dt.date(1, 1, 1): 1, dt.date(9999, 12, 31): 1}
    finally:
        engine.close()


def test_quarantined_days_outside_pythons_dates_in_several_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The buckets' counts are merged by reason: a quarantined row's day before the year 1 (text from DuckDB) and
    one in 1890 in another bucket stopped prepare with a TypeError when the counts kept quarantined rows' days."""
    from pipeline.engines import duckdb_prepare

    path = tmp_path / "far.csv"
    far = [("a0", "1890-01-01", "5"), ("zz", "0000-06-01", "5"), ("zy", "12000-01-01", "5"), ("a1", "2021-04-15", "5")]
    rows = [*DAY_FEED[:4], *[(f"m{k}", "2021-01-03", "5") for k in range(20)], *far]
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", 8)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", 8)
    engine = DuckDBEngine(EngineConfig())
    try:
        prepared = engine.prepare(engine.open(DataConfig(source="csv", path=path)), DAY_CONFIG)
        assert prepared.ledger.quarantined == {"timestamp_out_of_range": 2, "after_observation_end": 2}
        assert prepared.ledger.rows_used == 24
        assert (prepared.first_date, prepared.last_date) == (dt.date(2021, 1, 1), dt.date(2021, 3, 1))
    finally:
        engine.close()


# Zoned timestamps near midnight: customers who buy only at 23:30 on 2021-02-14 or 00:30 on 2021-02-15 in
# prepare.timezone (their first purchase is the day prepare gave them), and rows quarantined at those instants.
LATE, EARLY = pd.Timestamp("2021-02-14 23:30", tz=DAY_ZONE), pd.Timestamp("2021-02-15 00:30", tz=DAY_ZONE)
ZONED_FEED = [
    *[("a", pd.Timestamp(day, tz=DAY_ZONE), 10.0) for day in ("2021-01-02 12:00", "2021-02-10 12:00")],
    *[("b", pd.Timestamp(day, tz=DAY_ZONE), 10.0) for day in ("2021-01-05 12:00", "2021-03-01 12:00")],
    ("late", LATE, 5.0),
    ("early", EARLY, 5.0),
    (None, LATE, 1.0),  # missing_customer_id
    ("x", LATE, float("nan")),  # invalid_amount
    (None, EARLY, 1.0),
    (None, EARLY, 2.0),
]


def zoned_feed(folder: Path, timestamp_format: str | None = None) -> DataConfig:
    """:data:`ZONED_FEED` as Parquet in ``folder``, its timestamps TIMESTAMP WITH TIME ZONE (microseconds, UTC:
    Spark cannot read nanoseconds); ``timestamp_format`` configured as well (prepare does not use it on a
    timestamp column)."""
    frame = pd.DataFrame(ZONED_FEED, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    path = folder / "zoned.parquet"
    frame.to_parquet(path)
    return DataConfig(source="parquet", path=path, timestamp_format=timestamp_format)


def zoned_days(prepared: PreparedData) -> dict[dt.date | None, int]:
    """What the zoned feed's quarantined rows count per day: 2 rows at LATE, 2 at EARLY, on the days prepare gave
    the customers who bought at those instants."""
    first = dict(zip(prepared.full["customer_id"], prepared.full["first_purchase"].dt.date, strict=True))
    return {first["late"]: 2, first["early"]: 2}


@pytest.mark.parametrize("timestamp_format", [None, "%d/%m/%Y"])
def test_zoned_timestamps_near_midnight_keep_the_day_prepare_gave_them(
    tmp_path: Path, timestamp_format: str | None
) -> None:
    """The days in prepare.timezone, not in UTC (both instants are on 2021-02-15 there). With a format configured
    for a timestamp column, the rows are dated all the same (reading back the quarantine's text with that format
    put every one of them under None before the engine counted them)."""
    engine = DuckDBEngine(EngineConfig())
    try:
        config = DAY_CONFIG.model_copy(update={"observation_end": None})
        prepared = engine.prepare(engine.open(zoned_feed(tmp_path, timestamp_format)), config)
        assert zoned_days(prepared) == {dt.date(2021, 2, 14): 2, dt.date(2021, 2, 15): 2}
        assert engine.quarantined_days(prepared) == zoned_days(prepared)
    finally:
        engine.close()
