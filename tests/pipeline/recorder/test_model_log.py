"""Logging the model in a real (SQLite) MLflow store: its pinned requirements, checked without the module scan."""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import importlib_metadata
import mlflow
import pytest
from mlflow.utils import requirements_utils

from pipeline.recorder import model_log
from pipeline.recorder import store as tracking
from tests.pipeline.recorder.test_store import EXAMPLE, MODEL


class _Scans:
    """Stands in for ``packages_distributions`` and counts its calls (MLflow swallows what its check raises)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, list[str]]:
        self.calls += 1
        return {}


def test_a_model_is_logged_without_scanning_every_distribution(
    tracking_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(importlib_metadata, "packages_distributions", scans := _Scans())
    with tracking.run(tracking.connect("model-log")):
        uri = model_log.log_model(MODEL, EXAMPLE, "data: {source: cdnow_sample}\n")
    assert scans.calls == 0
    requirements = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
    assert requirements == [f"{name}=={importlib.metadata.version(name)}" for name in model_log.MODEL_REQUIREMENTS]
    assert requirements_utils._MODULES_TO_PACKAGES is None  # MLflow builds its own map when it needs one


def test_a_map_mlflow_built_is_left_as_it_is(tracking_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    built = {"numpy": ["numpy"]}
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", built)
    with tracking.run(tracking.connect("model-log")):
        model_log.log_model(MODEL, EXAMPLE, "data: {source: cdnow_sample}\n")
    assert requirements_utils._MODULES_TO_PACKAGES is built


def test_the_versions_are_still_checked(
    tracking_store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(importlib_metadata, "packages_distributions", scans := _Scans())
    monkeypatch.setattr(model_log, "_pinned_requirements", lambda extra=(): ["numpy==0.0.1", "pandas"])
    monkeypatch.setattr(logging.getLogger("mlflow"), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="mlflow"), tracking.run(tracking.connect("model-log")):
        model_log.log_model(MODEL, EXAMPLE, "data: {source: cdnow_sample}\n")
    assert f"numpy (current: {importlib.metadata.version('numpy')}, required: numpy==0.0.1)" in caplog.text
    assert scans.calls == 0
