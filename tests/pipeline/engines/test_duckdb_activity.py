"""The challenger's activity table on DuckDB: cleaned as prepare cleans, one row per customer and day, nothing
after ``up_to``; an event feed is refused; the Spark engine refuses with a ChallengerError."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from models.challenger import ChallengerError
from pipeline.config import DataConfig, EngineConfig, PrepareConfig
from pipeline.engines import open_engine
from pipeline.errors import InputError

ROWS = """customer_id,timestamp,amount
a,2021-01-04 09:00:00,10.5
a,2021-01-04 18:30:00,4.25
a,2021-02-01 12:00:00,20.0
b,2021-01-10 08:00:00,7.0
,2021-01-11 08:00:00,99.0
b,not a time,5.0
b,2021-03-02 00:00:00,1000.0
c,2021-03-05 10:00:00,3.0
"""


def _activity(tmp_path: Path, text: str, up_to: dt.date) -> pd.DataFrame:
    path = tmp_path / "tx.csv"
    path.write_text(text, encoding="utf-8")
    engine = open_engine(EngineConfig())
    try:
        source = engine.open(DataConfig(source="csv", path=path))
        return engine.activity(source, PrepareConfig(calibration_end=dt.date(2021, 2, 1)), up_to)
    finally:
        engine.close()


def test_one_row_per_customer_and_day_up_to_the_date(tmp_path: Path) -> None:
    table = _activity(tmp_path, ROWS, dt.date(2021, 3, 1))
    assert table.columns.tolist() == ["customer_id", "date", "purchases", "revenue"]
    assert table["customer_id"].tolist() == ["a", "a", "b"]
    assert table["date"].tolist() == [
        pd.Timestamp("2021-01-04"),
        pd.Timestamp("2021-02-01"),
        pd.Timestamp("2021-01-10"),
    ]
    assert table["purchases"].tolist() == [1, 1, 1]  # the two purchases of 2021-01-04 merge into one
    assert table["revenue"].tolist() == [14.75, 20.0, 7.0]  # quarantined rows (no id, no time) are left out
    later = _activity(tmp_path, ROWS, dt.date(2021, 3, 5))
    assert later["revenue"].sum() == pytest.approx(14.75 + 20.0 + 7.0 + 1000.0 + 3.0)


def test_an_event_feed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("customer_id,timestamp\na,2021-01-04\nb,2021-02-04\n", encoding="utf-8")
    engine = open_engine(EngineConfig())
    data = DataConfig.model_validate({"source": "csv", "path": str(path), "columns": {"amount": None}})
    with pytest.raises(InputError, match="the challenger needs amounts, and this feed has none"):
        engine.activity(engine.open(data), PrepareConfig(calibration_end=dt.date(2021, 1, 31)), dt.date(2021, 3, 1))
    engine.close()


def test_the_spark_engine_refuses_with_a_challenger_error() -> None:
    pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")
    from pipeline.engines import Source
    from pipeline.engines.spark_engine import SparkEngine

    engine = SparkEngine(EngineConfig(name="spark"))  # no session is started: the refusal comes first
    with pytest.raises(ChallengerError, match="the Spark engine does not build the challenger's activity table yet"):
        engine.activity(Source("x", "y", None), PrepareConfig(), dt.date(2021, 3, 1))
