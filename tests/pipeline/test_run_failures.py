"""Failure injection against real processes and a real SQLite store: the registry is never left
with a version without artifacts, the champion never moves on failure, and a rerun succeeds (slow)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import clean_env, clv_command

pytestmark = pytest.mark.slow
SAMPLE = "data: {source: cdnow_sample}\n"


def _env(uri: str, **extra: str) -> dict[str, str]:
    base = clean_env()
    return base | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"} | extra


def _train(folder: Path, uri: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(clv_command()), "train", *args],
        cwd=folder,
        env=_env(uri, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _store_with_champion(folder: Path) -> str:
    (folder / "sample.yaml").write_text(SAMPLE)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    done = _train(folder, uri, "--config", "sample.yaml")
    assert done.returncode == 0, done.stderr
    return uri


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _assert_registry(uri: str, versions: list[int], champion: int) -> None:
    client = _client(uri)
    found = sorted(int(v.version) for v in client.search_model_versions("name='clv'"))
    assert found == versions
    assert int(client.get_model_version_by_alias("clv", "champion").version) == champion
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for version in versions:  # every registered version still has its artifacts and loads
        assert mlflow.pyfunc.load_model(f"models:/clv/{version}") is not None


def _one_error_line(stderr: str, *fragments: str) -> None:
    errors = [line for line in stderr.strip().splitlines() if line.startswith("clv: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_unreachable_tracking_server_exits_3(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    started = time.monotonic()
    done = _train(tmp_path, f"http://127.0.0.1:{port}", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    assert done.returncode == 3
    _one_error_line(done.stderr, f"MLflow tracking store http://127.0.0.1:{port}: cannot open the experiment")
    assert time.monotonic() - started < 60


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the job as another user")
def test_read_only_store_exits_3_and_keeps_the_champion() -> None:
    folder = Path(tempfile.mkdtemp(prefix="clv-ro-"))
    folder.chmod(0o755)
    uri = _store_with_champion(folder)
    home = Path(tempfile.mkdtemp(prefix="clv-home-"))
    home.chmod(0o777)
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(clv_command()),
            "train",
            "--config",
            "sample.yaml",
        ],
        cwd=folder,
        env=_env(uri, HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 3, done.stderr
    _one_error_line(done.stderr, "MLflow tracking store", "cannot")
    _assert_registry(uri, [1], champion=1)


def test_unwritable_artifact_location_exits_3(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("clv", artifact_location=(blocker / "artifacts").as_uri())
    (tmp_path / "sample.yaml").write_text(SAMPLE)
    done = _train(tmp_path, uri, "--config", "sample.yaml")
    assert done.returncode == 3, done.stderr
    _one_error_line(done.stderr, "cannot log")
    assert _client(uri).search_registered_models() == []


def _run_status(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "mlflow.db") as db:
        return [row[0] for row in db.execute("SELECT status FROM runs ORDER BY start_time")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_mid_run_leaves_the_registry_intact_and_a_rerun_succeeds(tmp_path: Path, sig: signal.Signals) -> None:
    uri = _store_with_champion(tmp_path)
    job = subprocess.Popen(
        [str(clv_command()), "train"],
        cwd=tmp_path,
        env=_env(uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _run_status(tmp_path).count("RUNNING") == 0:  # the second run has started: kill it mid-way
        assert time.monotonic() < deadline
        assert job.poll() is None
        time.sleep(0.05)
    job.send_signal(sig)
    _, stderr = job.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert job.returncode == 143, stderr
        _one_error_line(stderr, "terminated by SIGTERM")
        assert _run_status(tmp_path)[-1] == "FAILED"
    else:
        assert job.returncode == -signal.SIGKILL
    _assert_registry(uri, [1], champion=1)
    rerun = _train(tmp_path, uri)
    assert rerun.returncode == 0, rerun.stderr
    _assert_registry(uri, [1, 2], champion=2)


def test_two_trainings_at_once_on_one_sqlite_store(tmp_path: Path) -> None:
    uri = _store_with_champion(tmp_path)
    jobs = [
        subprocess.Popen(
            [str(clv_command()), "train", "--config", "sample.yaml"],
            cwd=tmp_path,
            env=_env(uri),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(job.wait(timeout=600), job.communicate()[1]) for job in jobs]
    codes = [code for code, _ in results]
    assert all(code in (0, 3) for code in codes), results
    assert 0 in codes
    for code, stderr in results:
        if code == 3:
            _one_error_line(stderr, "MLflow tracking store")
    versions = [1, *range(2, 2 + codes.count(0))]
    client = _client(uri)
    assert sorted(int(v.version) for v in client.search_model_versions("name='clv'")) == versions
    assert int(client.get_model_version_by_alias("clv", "champion").version) in versions[1:]
    assert stat.S_ISREG((tmp_path / "mlflow.db").stat().st_mode)
    listing = subprocess.run(
        [str(clv_command()), "models"], cwd=tmp_path, env=_env(uri), capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
