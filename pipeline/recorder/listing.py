"""Reading runs and registered versions back for ``clv compare`` and ``clv models`` (read only)."""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.errors import InputError
from pipeline.recorder import store

__all__ = ["model_versions", "recent_runs"]


def recent_runs(experiment: str, limit: int) -> list[dict[str, Any]]:
    """The latest runs of ``experiment``, newest first, with tags, key metrics and rerun detection."""
    store.use_store()
    with store.store_errors(f"read experiment {experiment}", writes=False):
        found = mlflow.get_experiment_by_name(experiment)
        if found is None:
            raise InputError(f"no experiment named {experiment!r} in {store.tracking_uri()}")
        runs = MlflowClient().search_runs(
            [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit
        )
    rows = [
        {
            "run_id": run.info.run_id,
            "start_time": run.info.start_time,
            "status": run.info.status,
            "version": run.data.tags.get("registered_version", ""),
            "gate": run.data.tags.get("gate.passed", ""),
            "data_fingerprint": run.data.tags.get("data.fingerprint", ""),
            "config_hash": run.data.tags.get("config.hash", ""),
            "metrics": run.data.metrics,
        }
        for run in runs
    ]
    for index, row in enumerate(rows):
        same = [
            older
            for older in rows[index + 1 :]
            if row["data_fingerprint"]
            and older["data_fingerprint"] == row["data_fingerprint"]
            and older["config_hash"] == row["config_hash"]
        ]
        row["rerun_of"] = same[-1]["run_id"] if same else ""
    return rows


def model_versions(name: str) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first, with its aliases, gate tags and key run metrics."""
    store.use_store()
    client = MlflowClient()
    with store.store_errors(f"list versions of {name}", writes=False):
        versions = client.search_model_versions(f"name='{name}'")
        if not versions:
            return []
        aliases: dict[str, list[str]] = {}
        for alias, number in client.get_registered_model(name).aliases.items():
            aliases.setdefault(str(number), []).append(alias)
        rows = []
        for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append(
                {
                    "version": int(version.version),
                    "aliases": sorted(aliases.get(str(version.version), [])),
                    "gate_passed": version.tags.get("gate.passed") == "true",
                    "run_id": version.run_id,
                    "data_fingerprint": version.tags.get("data.fingerprint", ""),
                    "metrics": metrics,
                }
            )
    return rows
