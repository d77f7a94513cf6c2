"""Shared fixtures: the bundled CDNOW data and an isolated MLflow store per test."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _read_cdnow(name: str, names: list[str], skiprows: int) -> pd.DataFrame:
    resource = importlib.resources.files("lifetimes") / "datasets" / name
    with importlib.resources.as_file(resource) as path:
        frame = pd.read_csv(path, sep=r"\s+", header=None, skiprows=skiprows, names=names, dtype=str)
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    frame["amount"] = frame["amount"].astype(float)
    return frame


@pytest.fixture(scope="session")
def cdnow_master() -> pd.DataFrame:
    return _read_cdnow("CDNOW_master.txt", ["customer_id", "date", "cds", "amount"], skiprows=1)


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    return _read_cdnow("CDNOW_sample.txt", ["master_id", "customer_id", "date", "cds", "amount"], skiprows=0)


@pytest.fixture(scope="session")
def cdnow_sample_summary(cdnow_sample: pd.DataFrame) -> pd.DataFrame:
    """The paper's 39-week calibration summary of the 1/10 sample, computed by lifetimes."""
    from lifetimes.utils import calibration_and_holdout_data

    summary = calibration_and_holdout_data(
        cdnow_sample,
        "customer_id",
        "date",
        "1997-09-30",
        "1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="amount",
    )
    return summary.rename(columns=lambda c: c.removesuffix("_cal"))


@pytest.fixture
def tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite MLflow store in a temporary folder, used as the working directory."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return uri
