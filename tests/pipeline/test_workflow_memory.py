"""The training job's memory cuts give the tables of the previous code path, exactly, on CDNOW and the generated feed.

The cuts: DuckDB's allocator is flushed after prepare (:func:`pipeline.engines.duckdb_source.release_memory`),
the holdout table shares the calibration frame's columns instead of copying them, the scores are kept column by
column (no 2-D copy to build or check them) and the value segments are chosen by number, then named. The previous
path is rebuilt here: prepare without the flush, the holdout from a deep copy of the calibration frame, the value
segments as one fixed-width name per customer, the at-risk list from a copy of the scores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import business
from pipeline.config import Config, parse_config
from pipeline.engines import open_engine
from pipeline.engines.duckdb_prepare import prepare
from pipeline.engines.duckdb_source import connect, open_transactions, release_memory
from pipeline.validate import holdout_predictions
from pipeline.workflow import TrainResult, period_length, train


def _previous_value_segment(scores: pd.DataFrame) -> pd.Series:
    """The previous value_segment: np.select on the segment names (one fixed-width name per customer)."""
    rank = scores["clv"].rank(pct=True, method="first")
    labels = np.select(
        [rank > lower for _, lower in business.SEGMENTS],
        [name for name, _ in business.SEGMENTS],
        default="bottom 50%",
    )
    return pd.Series(labels, index=scores.index, name="value_segment")


def _train(raw: dict[str, object]) -> tuple[Config, TrainResult]:
    config = parse_config({**raw, "validate": {"criteria": []}}).resolved()
    engine = open_engine(config.engine)
    result = train(config, engine, engine.open(config.data))
    assert result.scores is not None
    return config, result


def _assert_same_as_the_previous_path(raw: dict[str, object]) -> None:
    config, result = _train(raw)
    prepared = result.prepared
    # prepare without the allocator flush: the same frames
    data = open_transactions(connect(config.engine), config.data)
    before = prepare(data.relation, config.prepare, data.timestamp_format)
    pd.testing.assert_frame_equal(prepared.calibration, before.calibration, check_exact=True)
    pd.testing.assert_frame_equal(prepared.full, before.full, check_exact=True)
    # the holdout from a deep copy of the calibration frame (as before): the same table, the frame untouched
    calibration_model = result.calibration_fit.bundle(config.scoring_spec())
    copied, _ = holdout_predictions(calibration_model, before.calibration.copy(deep=True), period_length(config))
    pd.testing.assert_frame_equal(result.validation.holdout, copied, check_exact=True)
    pd.testing.assert_frame_equal(prepared.calibration, before.calibration, check_exact=True)
    # the scores, column by column, and the value segments by name
    scores = result.scores
    assert scores is not None
    consolidated = pd.DataFrame({c: scores[c].to_numpy() for c in scores.columns}, index=scores.index)
    consolidated["value_segment"] = _previous_value_segment(consolidated)
    pd.testing.assert_frame_equal(scores, consolidated, check_exact=True)
    at_risk = business.at_risk_valuable(
        consolidated.copy(deep=True), config.business.at_risk_clv_quantile, config.business.at_risk_churn_risk
    )
    pd.testing.assert_frame_equal(result.tables["at_risk_valuable"], at_risk, check_exact=True)
    segments = business.segment_table(consolidated.copy(deep=True))
    pd.testing.assert_frame_equal(business.segment_table(scores), segments, check_exact=True)


def test_the_job_gives_the_previous_tables_on_cdnow() -> None:
    _assert_same_as_the_previous_path({"data": {"source": "cdnow_master"}})


def test_the_job_gives_the_previous_tables_on_the_generated_feed(tmp_path: Path) -> None:
    from benchmarks.feed import CALIBRATION_END, OBSERVATION_END, generate

    path = tmp_path / "feed.parquet"
    generate(path, 200_000)
    _assert_same_as_the_previous_path(
        {
            "data": {"source": "parquet", "path": str(path)},
            "prepare": {
                "period": "day",
                "time_unit": "week",
                "calibration_end": str(CALIBRATION_END),
                "observation_end": str(OBSERVATION_END),
            },
        }
    )


@pytest.mark.parametrize("ties", [False, True])
def test_value_segments_by_number_equal_the_names_chosen_per_customer(ties: bool) -> None:
    clv = np.random.default_rng(7).gamma(0.7, 40.0, 50_001)
    if ties:
        clv[::3] = clv[1]  # ranks broken by order ("first")
    scores = pd.DataFrame({"clv": clv})
    pd.testing.assert_series_equal(business.value_segment(scores), _previous_value_segment(scores), check_exact=True)


def test_release_memory_puts_the_allocator_setting_back() -> None:
    con = connect(Config().engine)
    setting = "SELECT current_setting('allocator_bulk_deallocation_flush_threshold')"
    before = con.execute(setting).fetchall()
    release_memory(con.sql)
    assert con.execute(setting).fetchall() == before


def test_frames_set_aside_on_disk_give_the_same_result_on_cdnow(tmp_path: Path) -> None:
    """With a scratch folder (as ``clv train`` passes), the calibration summary and the holdout table are mapped
    from disk before production (here from one row on, not 2M): the same frames, scores and tables."""
    from pipeline.mapped import _memory

    raw = {"data": {"source": "cdnow_master"}, "validate": {"criteria": []}}
    config = parse_config({**raw, "engine": {"set_aside_customers": 1}}).resolved()
    engine = open_engine(config.engine)
    kept = train(config, engine, engine.open(config.data))
    aside = train(config, engine, engine.open(config.data), scratch=tmp_path)
    assert "set_aside" in aside.timings
    assert "set_aside" not in kept.timings
    for never in ({"set_aside_customers": None}, {}):  # null, and the default bound of 2M customers
        other = parse_config({**raw, "engine": never}).resolved()
        assert "set_aside" not in train(other, engine, engine.open(other.data), scratch=tmp_path).timings
    assert aside.warnings == kept.warnings
    assert list(tmp_path.iterdir()) == []  # the files are unlinked once mapped
    maps = Path("/proc/self/maps").read_text()
    assert maps.count("clv-frame-") >= 2  # both frames are views of their (deleted) files
    assert aside.prepared.calibration is not kept.prepared.calibration
    pd.testing.assert_frame_equal(aside.prepared.calibration, kept.prepared.calibration, check_exact=True)
    pd.testing.assert_frame_equal(aside.prepared.full, kept.prepared.full, check_exact=True)
    pd.testing.assert_frame_equal(aside.validation.holdout, kept.validation.holdout, check_exact=True)
    for column in ("customer_id", "frequency", "recency", "T", "monetary_value"):  # written once, shared
        assert _memory(aside.validation.holdout[column]) == _memory(aside.prepared.calibration[column]), column
    assert aside.validation.metrics == kept.validation.metrics
    assert aside.scores is not None
    assert kept.scores is not None
    pd.testing.assert_frame_equal(aside.scores, kept.scores, check_exact=True)
    assert aside.tables.keys() == kept.tables.keys()
    for name, table in kept.tables.items():
        pd.testing.assert_frame_equal(aside.tables[name], table, check_exact=True)


def test_the_frames_set_aside_leave_the_jobs_memory_before_scoring() -> None:
    """After setting aside, nothing in the job keeps the original calibration summary or holdout table: they
    are gone (by reference count, without the cyclic collector) by the time the customers are scored."""
    import gc
    import weakref
    from typing import Any

    from pipeline.engines import Source
    from pipeline.engines.prepared import PreparedData
    from pipeline.fit import FittedModels
    from pipeline.observer import NullObserver
    from pipeline.validate import Validation

    class Watcher(NullObserver):
        def __init__(self) -> None:
            self.refs: dict[str, weakref.ref[pd.DataFrame]] = {}
            self.alive_at_scoring: list[str] = []

        def prepared(self, data: Source, prepared: PreparedData) -> None:
            self.refs["calibration"] = weakref.ref(prepared.calibration)

        def calibrated(self, fitted: FittedModels, validation: Validation, *rest: Any) -> None:
            self.refs["holdout"] = weakref.ref(validation.holdout)

        def scored(self, scores: pd.DataFrame, tables: dict[str, pd.DataFrame], metrics: dict[str, float]) -> None:
            self.alive_at_scoring = [name for name, ref in self.refs.items() if ref() is not None]

    raw = {"data": {"source": "cdnow_master"}, "validate": {"criteria": []}, "engine": {"set_aside_customers": 1}}
    config = parse_config(raw).resolved()
    engine = open_engine(config.engine)
    watcher = Watcher()
    enabled = gc.isenabled()
    gc.disable()
    try:
        result = train(config, engine, engine.open(config.data), observer=watcher, scratch=Path(tempfile.gettempdir()))
    finally:
        if enabled:
            gc.enable()
    assert "set_aside" in result.timings
    assert sorted(watcher.refs) == ["calibration", "holdout"]
    assert watcher.alive_at_scoring == []
