"""The `clv` console script as a user runs it: exit codes and one-line errors (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLV = Path(sys.executable).parent / "clv"


def _clv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    return subprocess.run(
        [str(CLV), *args], cwd=cwd, env=base | (env or {}), capture_output=True, text=True, timeout=300
    )


def _assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("clv: error:")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_unknown_config_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("prepare:\n  calibration_ends: 1997-09-30\n")
    done = _clv("train", "--config", str(config), cwd=tmp_path)
    _assert_one_line_error(done, 2, "c.yaml", "prepare.calibration_ends", "unknown key")
    assert not (tmp_path / "mlflow.db").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    _assert_one_line_error(_clv("train", "--config", "nope.yaml", cwd=tmp_path), 2, "nope.yaml", "not found")


def test_missing_input_column(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text("customer_id,day,amount\na,2020-01-01,3\n")
    config = tmp_path / "c.yaml"
    config.write_text("data: {source: csv, path: tx.csv}\nprepare: {calibration_end: 2020-01-01}\n")
    done = _clv("train", "--config", str(config), cwd=tmp_path)
    _assert_one_line_error(done, 2, "tx.csv", "missing required column 'timestamp'")


def test_no_repeat_customer(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(
        "customer_id,timestamp,amount\na,2020-01-01,3\nb,2020-01-05,4\nc,2020-02-05,4\n"
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: {source: csv, path: tx.csv}\n"
        "prepare: {calibration_end: 2020-01-31, observation_end: 2020-02-28}\n"
    )
    done = _clv("train", "--config", str(config), cwd=tmp_path)
    _assert_one_line_error(done, 2, "no customer has a repeat purchase")


def test_unreachable_tracking_store_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = _clv("train", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"sqlite:///{blocker}/mlflow.db"})
    _assert_one_line_error(done, 3, "MLflow tracking store", "cannot open the experiment")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help(tmp_path: Path, args: list[str]) -> None:
    done = _clv(*args, cwd=tmp_path)
    assert done.returncode == 0
    assert "usage: clv" in done.stdout


def test_prepare_alone_writes_tables(tmp_path: Path) -> None:
    done = _clv("prepare", "--output", "prep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "69,659 rows in, 69,659 used, 0 quarantined" in done.stdout
    import json

    import pandas as pd

    ledger = json.loads((tmp_path / "prep" / "ledger.json").read_text())
    assert ledger["reconciled"] is True
    assert len(pd.read_parquet(tmp_path / "prep" / "calibration.parquet")) == 23_570
    assert len(pd.read_parquet(tmp_path / "prep" / "quarantine.parquet")) == 0
    assert not (tmp_path / "mlflow.db").exists()
