"""Prepare errors on a feed as the other business types' tests expect them: the non-contractual job's line, and
the one line ``clv train`` prints for it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Config
from pipeline.engines import open_engine
from pipeline.errors import InputError

__all__ = ["clv_train_failure", "non_contractual_error"]


def non_contractual_error(config: Config) -> str:
    """The InputError of the non-contractual job's DuckDB prepare on ``config``'s feed."""
    engine = open_engine(config.engine)
    try:
        with pytest.raises(InputError) as error:
            engine.prepare(engine.open(config.data), config.prepare)
    finally:
        engine.close()
    return str(error.value)


def clv_train_failure(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rows: list[tuple[str, str, float]],
    timestamp: str,
    job: str,
) -> tuple[int, list[str]]:
    """``clv train --config job.yaml`` run in ``folder`` with its own SQLite store, on ``rows`` (customer_id, the
    ``timestamp`` column, amount) written as f.csv and a job reading it with ``job``'s other sections: the exit
    code and the lines on stderr."""
    from pipeline.cli import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    pd.DataFrame(rows, columns=["customer_id", timestamp, "amount"]).to_csv(folder / "f.csv", index=False)
    (folder / "job.yaml").write_text(
        f"data: {{source: csv, path: f.csv, columns: {{timestamp: {timestamp}}}}}\n{job}", encoding="utf-8"
    )
    code = main(["train", "--config", "job.yaml"])
    return code, capsys.readouterr().err.splitlines()
