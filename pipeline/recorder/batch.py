"""Many entries of the active run in one write: metrics and tags in one ``log_batch`` call, files in one
``log_artifacts`` call.

A stage of ``clv train`` records a dozen metrics, tags, tables and plots. Written one by one they were 48
writes to the store for the CDNOW sample, each its own SQLite transaction, or its own request to a tracking
server; batched per stage they are about half as many. Each call is one :mod:`pipeline.faults` step, like
every other write in :mod:`pipeline.recorder.store`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from pipeline.recorder.store import store_errors, write_table
from pipeline.secrets import mask_text

__all__ = ["ArtifactContent", "log_batch", "log_files"]

ArtifactContent = bytes | pd.DataFrame
"""A file's bytes (a rendered PNG), or a table written as CSV or Parquet by its name's suffix."""


def log_batch(metrics: Mapping[str, float], tags: Mapping[str, object]) -> None:
    """``metrics`` (at step 0) and ``tags`` (values as text, credentials masked) in one write."""
    if not metrics and not tags:
        return
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("log_batch needs an active run")
    now = int(time.time() * 1000)
    with store_errors("log metrics and tags"):
        MlflowClient().log_batch(
            active.info.run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
            tags=[RunTag(key, mask_text(str(value))) for key, value in tags.items()],
        )


def log_files(files: Mapping[str, ArtifactContent]) -> None:
    """Each entry under its artifact path (``tables/holdout.sample.parquet``, ``plots/x.png``), in one write."""
    if not files:
        return
    first, *others = files
    action = f"log {first}" + (f" and {len(others)} more" if others else "")
    with tempfile.TemporaryDirectory(prefix=".clv-artifacts-") as folder, store_errors(action):
        for artifact_path, content in files.items():
            local = Path(folder) / artifact_path
            local.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                local.write_bytes(content)
            else:
                write_table(content, local)
        mlflow.log_artifacts(folder)
