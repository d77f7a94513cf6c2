"""The two engines behind one interface: the same numbers from prepare, prepare_as_of, fit input and score, and the
same quarantined rows per day (slow)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Config, DataConfig, EngineConfig, FitConfig, PrepareConfig
from pipeline.engines import open_engine
from pipeline.fit import fit_histories
from tests.pipeline.engines.test_duckdb_engine import DAY_CONFIG, DAY_COUNTS, day_feed, zoned_days, zoned_feed
from tests.pipeline.engines.test_spark_prepare import _messy_transactions

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")


def test_prepare_as_of_is_identical_on_both_engines(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "messy.csv"
    _messy_transactions().to_csv(path, index=False)
    data = DataConfig(source="csv", path=path)
    config = PrepareConfig(calibration_end=dt.date(2021, 8, 31), timezone="America/New_York")
    duck_engine, spark_engine = open_engine(EngineConfig()), open_engine(EngineConfig(name="spark"))
    assert (duck_engine.name, spark_engine.name) == ("duckdb", "spark")
    duck = duck_engine.prepare_as_of(duck_engine.open(data), config, dt.date(2021, 10, 31))
    ours = spark_engine.prepare_as_of(spark_engine.open(data), config, dt.date(2021, 10, 31))
    assert ours.ledger == duck.ledger
    assert ours.ledger.quarantined["after_observation_end"] > 0
    for name in ("as_of", "has_amounts", "timestamp_format"):
        assert getattr(ours, name) == getattr(duck, name), name
    pd.testing.assert_frame_equal(ours.customers, duck.customers, check_exact=True)
    written = spark_engine.write_quarantine(ours, tmp_path / "quarantine.parquet")
    assert len(pd.read_parquet(written)) == ours.ledger.rows_quarantined
    duck_engine.close()


def test_fit_input_and_scores_are_identical_on_both_engines(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = DataConfig(source="cdnow_sample")
    config = PrepareConfig(calibration_end=dt.date(1997, 9, 30))
    duck_engine, spark_engine = open_engine(EngineConfig()), open_engine(EngineConfig(name="spark"))
    duck = duck_engine.prepare(duck_engine.open(data), config)
    ours = spark_engine.prepare(spark_engine.open(data), config)
    pd.testing.assert_frame_equal(ours.full, duck.full, check_exact=True)
    for part in ("calibration", "full"):
        from_duck_input = fit_histories(duck_engine.fit_input(duck, part), FitConfig())
        from_spark_input = fit_histories(spark_engine.fit_input(ours, part), FitConfig())
        assert from_spark_input.params() == from_duck_input.params(), part
    model = from_duck_input.bundle(Config().scoring_spec())
    from_duck = duck_engine.score(model, duck, tmp_path / "unused")
    from_spark = spark_engine.score(model, ours, tmp_path / "scores.parquet")
    assert (tmp_path / "scores.parquet" / "_SUCCESS").exists()
    pd.testing.assert_frame_equal(from_spark, from_duck, check_exact=True, check_dtype=False)


def test_the_quarantined_rows_per_day_are_the_same_on_both_engines(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The hand-counted feed of the DuckDB engine's test, counted by Spark from its own reading of the timestamps."""
    data = day_feed(tmp_path)
    duck_engine, spark_engine = open_engine(EngineConfig()), open_engine(EngineConfig(name="spark"))
    duck = duck_engine.quarantined_days(duck_engine.prepare(duck_engine.open(data), DAY_CONFIG))
    ours = spark_engine.prepare(spark_engine.open(data), DAY_CONFIG)
    assert spark_engine.quarantined_days(ours) == duck == DAY_COUNTS
    duck_engine.close()


@pytest.mark.parametrize("timestamp_format", [None, "%d/%m/%Y"])
def test_zoned_timestamps_near_midnight_get_the_same_days_on_both_engines(  # type: ignore[no-untyped-def]
    spark, tmp_path: Path, timestamp_format: str | None
) -> None:
    """TIMESTAMP WITH TIME ZONE at 23:30 and 00:30 in prepare.timezone: Spark reads them in its session zone, and
    counts its quarantined rows on the days its prepare gave the customers who bought at the same instants, the
    days DuckDB gives them."""
    data = zoned_feed(tmp_path, timestamp_format)
    config = DAY_CONFIG.model_copy(update={"observation_end": None})
    duck_engine, spark_engine = open_engine(EngineConfig()), open_engine(EngineConfig(name="spark"))
    duck = duck_engine.prepare(duck_engine.open(data), config)
    ours = spark_engine.prepare(spark_engine.open(data), config)
    assert zoned_days(ours) == zoned_days(duck) == {dt.date(2021, 2, 14): 2, dt.date(2021, 2, 15): 2}
    assert spark_engine.quarantined_days(ours) == duck_engine.quarantined_days(duck) == zoned_days(ours)
    duck_engine.close()
