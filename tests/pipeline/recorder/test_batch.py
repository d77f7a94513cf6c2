"""Metrics, tags and files of a run in one write each, in a real (SQLite) MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipeline import faults
from pipeline.recorder import batch

TABLE = pd.DataFrame({"customer_id": ["a", "b"], "clv": [1.5, 2.25]})
PNG = b"\x89PNG\r\n\x1a\n not a real image, bytes as given"


@pytest.fixture
def trace(tracking_store: str, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "trace.txt"
    faults.install(faults.FaultPlan(None, "raise", path))
    yield path
    faults.install(None)


def _steps(trace: Path) -> list[str]:
    return [line.split("\t", 1)[1] for line in trace.read_text().splitlines()]


def test_metrics_and_tags_are_one_write_and_tags_are_masked(trace: Path) -> None:
    with mlflow.start_run() as run:
        batch.log_batch({"m": 1, "n": 2.5}, {"t": 7, "url": "postgresql://user:hunter2@db/x"})
        batch.log_batch({}, {})  # nothing to write: no write
    data = mlflow.MlflowClient().get_run(run.info.run_id).data
    assert data.metrics == {"m": 1.0, "n": 2.5}
    assert data.tags["t"] == "7"
    assert "hunter2" not in data.tags["url"]
    assert _steps(trace) == ["log metrics and tags"]


def test_many_metrics_are_split_by_mlflow_and_all_kept(trace: Path) -> None:
    metrics = {f"m{i}": float(i) for i in range(1500)}  # above MLflow's 1,000 metrics per request
    with mlflow.start_run() as run:
        batch.log_batch(metrics, {})
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.metrics == metrics
    assert _steps(trace) == ["log metrics and tags"]


def test_files_are_one_write_under_their_artifact_paths(trace: Path) -> None:
    files: dict[str, batch.ArtifactContent] = {
        "tables/scores.csv": TABLE,
        "tables/scores.sample.parquet": TABLE,
        "plots/x.png": PNG,
    }
    with mlflow.start_run() as run:
        batch.log_files(files)
        batch.log_files({})
    client = mlflow.MlflowClient()
    listed = sorted(a.path for folder in ("tables", "plots") for a in client.list_artifacts(run.info.run_id, folder))
    assert listed == ["plots/x.png", "tables/scores.csv", "tables/scores.sample.parquet"]
    folder = Path(client.download_artifacts(run.info.run_id, ""))
    pd.testing.assert_frame_equal(pd.read_csv(folder / "tables" / "scores.csv"), TABLE)
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "tables" / "scores.sample.parquet"), TABLE)
    assert (folder / "plots" / "x.png").read_bytes() == PNG
    assert _steps(trace) == ["log tables/scores.csv and 2 more"]
