"""What a tracking store holds, read through MLflow's own client: the invariants the failure tests check.

Run these in a fresh process (``tests.forks.Forks.call``): a store that a test replaces on disk must not
be read through a connection cached before.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

__all__ = ["EXAMPLE", "registry_state", "run_statuses", "store_state"]

EXAMPLE = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "frequency": [2.0, 0.0, 7.0],
        "recency": [30.0, 0.0, 50.0],
        "T": [38.0, 20.0, 52.0],
        "monetary_value": [20.0, 0.0, 41.5],
    }
)


def _version_scores(version: int) -> list[float]:
    """Load ``models:/clv/<version>`` as MLflow serves it and score three customers: its CLVs."""
    scores = mlflow.pyfunc.load_model(f"models:/clv/{version}").predict(EXAMPLE)
    column = next(c for c in scores.columns if c.startswith("clv"))
    return [float(v) for v in scores[column]]


def registry_state(uri: str, load: bool = True, name: str = "clv", alias: str = "champion") -> dict[str, Any]:
    """Every version (loaded and scored, when ``load``), the alias and each version's run."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    scored = {}
    for version in versions if load else []:
        try:
            values = _version_scores(version)
            scored[str(version)] = "ok" if all(math.isfinite(v) for v in values) else f"not finite: {values}"
        except Exception as exc:  # the invariant under test: report it, do not crash the check
            scored[str(version)] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    champion = None
    try:
        champion = int(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # no registered model or no alias yet
        champion = None
    runs = {str(v): client.get_model_version(name, str(v)).run_id for v in versions}
    return {"versions": versions, "scored": scored, "champion": champion, "version_runs": runs}


def run_statuses(database: str) -> list[list[str]]:
    """(run id, status) of the top-level runs, oldest first, read from the SQLite file itself."""
    query = (
        "SELECT run_uuid, status FROM runs WHERE run_uuid NOT IN "
        "(SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId') ORDER BY start_time"
    )
    with sqlite3.connect(Path(database)) as db:
        return [[str(a), str(b)] for a, b in db.execute(query)]


def store_state(uri: str, load: bool = True) -> dict[str, Any]:
    """:func:`registry_state` and, under ``runs``, :func:`run_statuses` of a SQLite store (one process)."""
    return registry_state(uri, load) | {"runs": run_statuses(uri.removeprefix("sqlite:///"))}
