"""The train benchmark runs the whole clv train on a small generated feed and reads back its measurements (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.feed import generate
from benchmarks.train_bench import prepare_floor, run_train

pytestmark = pytest.mark.slow

STAGES = {"prepare", "calibration_fit", "champion", "production_fit", "score", "business"}


def test_small_run_reports_every_stage(tmp_path: Path) -> None:
    feed = tmp_path / "feed.parquet"
    generate(feed, 30_000)
    result = run_train(feed)
    assert result["exit"] == 0  # the feed's population is fitted and the gate (no criteria) passes
    stages, cpu = result["stages"], result["stages_cpu"]
    assert isinstance(stages, dict)
    assert isinstance(cpu, dict)
    assert set(stages) == STAGES
    assert set(cpu) == STAGES | {"imports", "total"}
    memory = result["stages_rss_mb"]  # at each stage's end (and the job's): [RSS now, peak so far]
    assert isinstance(memory, dict)
    assert set(memory) == STAGES | {"end"}
    assert all(len(values) == 2 for values in memory.values())
    assert float(str(result["cpu_s"])) >= float(cpu["total"])
    assert float(str(result["peak_rss_mb"])) > 100
    # with --output the run keeps samples of the per-customer tables, not the tables
    assert float(str(result["run_artifacts_mb"])) < float(str(result["output_mb"])) + 5
    timed = prepare_floor(feed)
    assert set(timed) == {"floor", "prepare"}  # the floor, and the prepare stage alone, in turns
    for measured in timed.values():
        assert set(measured) == {"seconds", "cpu_s", "runs"}
        runs = measured["runs"]
        assert isinstance(runs, list)
        assert len(runs) == 3
        assert min(runs) - 0.01 <= float(str(measured["seconds"])) <= max(runs) + 0.01  # the median, rounded runs
