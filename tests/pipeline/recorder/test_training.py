"""What the training recorder stores of the per-customer tables, in a real (SQLite) MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config
from pipeline.engines import Source
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.recorder.training import TrainingRecorder

SOURCE = Source("test feed", "fingerprint", None)


def _tables(rows: int) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    scores = pd.DataFrame({"customer_id": [f"c{i}" for i in range(rows)], "clv": np.arange(rows, dtype=float)})
    small = pd.DataFrame({"customers_with_cac": [rows]})
    return scores, {"at_risk_valuable": scores.head(rows // 2), "cac_summary": small}


def _record(output: Path | None, tables: str) -> tuple[set[str], dict[str, str]]:
    config = Config.model_validate({"tracking": {"tables": tables, "table_sample_rows": 3}})
    recorder = TrainingRecorder(DuckDBEngine(config.engine), output)
    scores, others = _tables(10)
    with mlflow.start_run() as run:
        recorder.start(config, "", SOURCE)
        recorder.scored(scores, others, {})
    client = mlflow.MlflowClient()
    stored = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    tags = client.get_run(run.info.run_id).data.tags
    return stored, tags


@pytest.mark.usefixtures("tracking_store")
def test_without_output_the_run_stores_the_whole_tables() -> None:
    stored, tags = _record(None, "auto")
    assert stored == {"tables/scores.parquet", "tables/at_risk_valuable.parquet", "tables/cac_summary.parquet"}
    assert "tables.scores" not in tags


@pytest.mark.usefixtures("tracking_store")
def test_with_output_the_run_stores_a_sample_and_points_to_the_file(tmp_path: Path) -> None:
    stored, tags = _record(tmp_path / "out", "auto")
    assert stored == {
        "tables/scores.sample.parquet",
        "tables/at_risk_valuable.sample.parquet",
        "tables/cac_summary.parquet",  # small tables stay whole
    }
    assert tags["tables.scores"] == str(tmp_path / "out" / "scores.parquet")
    assert tags["tables.scores.rows"] == "10"
    assert tags["tables.at_risk_valuable.rows"] == "5"
    run = mlflow.last_active_run()
    assert run is not None
    sample = pd.read_parquet(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="tables/scores.sample.parquet")
    )
    assert sample["clv"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.usefixtures("tracking_store")
def test_tables_none_and_full_with_output(tmp_path: Path) -> None:
    stored, tags = _record(tmp_path / "out", "none")
    assert stored == {"tables/cac_summary.parquet"}
    assert tags["tables.scores"] == str(tmp_path / "out" / "scores.parquet")
    stored, _ = _record(tmp_path / "out", "full")
    assert stored == {"tables/scores.parquet", "tables/at_risk_valuable.parquet", "tables/cac_summary.parquet"}


def test_table_storage_does_not_change_the_config_hash() -> None:
    from pipeline.config import config_hash, parse_config

    assert config_hash(parse_config({"tracking": {"tables": "none", "table_sample_rows": 5}})) == config_hash(Config())
