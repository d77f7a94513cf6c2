"""The public Python API: what a notebook imports from ``pipeline``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pipeline
from pipeline.config import Config


def test_every_public_name_resolves() -> None:
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name
    with pytest.raises(AttributeError):
        _ = pipeline.no_such_name


def test_importing_the_package_loads_no_engine_or_tracking_library() -> None:
    code = "import sys, pipeline; print(sorted(m for m in ('duckdb', 'mlflow', 'pyspark') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_prepare_data_and_the_workflow_without_mlflow() -> None:
    """The workflow alone, as a notebook runs it: the published CDNOW sample numbers, nothing registered."""
    config = Config(data={"source": "cdnow_sample"})  # type: ignore[arg-type]  # pydantic validates the dict
    prepared, data = pipeline.prepare_data(config)
    assert (prepared.ledger.rows_in, len(prepared.calibration)) == (6_919, 2_357)
    assert data.description.endswith("CDNOW_sample.txt")
    engine = pipeline.open_engine(config.engine)
    result = pipeline.train(config, engine, engine.open(config.resolved().data))
    assert result.version is None
    assert result.run_id == ""
    params = result.calibration_fit.params()
    assert params["r"] == pytest.approx(0.2426, abs=1e-4)
    assert params["alpha"] == pytest.approx(4.4136, abs=1e-4)
    assert set(result.timings) >= {"prepare", "calibration_fit"}
