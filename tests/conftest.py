"""Shared fixtures: the bundled CDNOW data and an isolated MLflow store per test; the suite's order and its
spread over two cores (:mod:`tests.scheduling`)."""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import pandas as pd
import pytest

from tests.scheduling import pytest_collection_modifyitems as pytest_collection_modifyitems
from tests.scheduling import pytest_xdist_make_scheduler as pytest_xdist_make_scheduler

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

    summary: pd.DataFrame = calibration_and_holdout_data(  # lifetimes has no type hints
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


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """One local Spark session (2 cores, 2 shuffle partitions) for every Spark test of the run."""
    pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")
    from pipeline.config import EngineConfig
    from pipeline.engines.spark_session import session

    os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers use this venv's interpreter
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    conf = {"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1"}
    spark = session(EngineConfig(name="spark", master="local[2]", shuffle_partitions=2, conf=conf))
    yield spark
    spark.stop()


@pytest.fixture
def tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite MLflow store in a temporary folder, used as the working directory."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return uri


@dataclass(frozen=True)
class Registry:
    """A store with one registered, promoted model trained on the CDNOW 1/10 sample (as `clv`)."""

    folder: Path
    uri: str
    transactions: Path
    scores: Path

    def env(self) -> dict[str, str]:
        base = clean_env()
        # `mlflow models serve` runs `uvicorn` from PATH: the venv's bin folder must be on it.
        path = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        return base | {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}


def clean_env() -> dict[str, str]:
    """This process's environment without the store URIs that MLflow exports when tests set them."""
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}


def clv_command() -> Path:
    return Path(sys.executable).parent / "clv"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, cdnow_sample: pd.DataFrame) -> Registry:
    """Train and register once per test session, in a subprocess with its own SQLite store."""
    folder = tmp_path_factory.mktemp("registry")
    (folder / "sample.yaml").write_text("data: {source: cdnow_sample}\n")
    transactions = folder / "transactions.csv"
    cdnow_sample.assign(timestamp=cdnow_sample["date"].dt.strftime("%Y-%m-%d"))[
        ["customer_id", "timestamp", "amount"]
    ].to_csv(transactions, index=False)
    found = Registry(folder, f"sqlite:///{folder / 'mlflow.db'}", transactions, folder / "out" / "scores.parquet")
    done = subprocess.run(
        [str(clv_command()), "train", "--config", "sample.yaml", "--output", "out"],
        cwd=folder,
        env=found.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return found
