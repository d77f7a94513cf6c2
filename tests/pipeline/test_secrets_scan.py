"""No secret in any byte a run writes: a password in the tracking URI, a ``token=`` in the data's URL and a
secret-looking config key are planted; then every byte of the tracking database, every artifact (the
registered model's files among them), the output folder, the summary, stdout and stderr is scanned (slow).

The store is a real ``mlflow server`` on 127.0.0.1 (a tracking URI can carry a password only over HTTP);
the client sends the URI's credentials as basic auth, which the server ignores.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import clean_env, clv_command

pytestmark = pytest.mark.slow

PASSWORD = "trk-Pl4nted-7f3a"
TOKEN = "tok-Pl4nted-91c2"
KEY = "key-Pl4nted-55d0"
SECRETS = (PASSWORD, TOKEN, KEY)
START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: int, server: subprocess.Popen[bytes]) -> bool:
    """True once /health answers; False if the server exited first (the port was taken)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)  # waiting for a server to bind, not ordering two of our own steps
    raise AssertionError("mlflow server did not answer /health in time")


@contextlib.contextmanager
def _tracking_server(folder: Path) -> Iterator[int]:
    """A real ``mlflow server`` with its SQLite database and artifacts in ``folder``; its port."""
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--workers", "1"]
    store = ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    store += ["--artifacts-destination", str(folder / "artifacts")]
    for attempt in range(START_ATTEMPTS):
        port = _free_port()
        log_path = folder.parent / f"server-{attempt}.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [*command, *store, "--port", str(port)],
                cwd=folder,
                env=clean_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if _healthy(port, server):
                    yield port
                    return
            finally:
                server.terminate()
                server.wait(timeout=60)
        if "address already in use" not in log_path.read_text(errors="replace").lower():
            raise AssertionError(f"mlflow server exited with {server.returncode}: see {log_path}")
    raise AssertionError(f"mlflow server could not bind a free port in {START_ATTEMPTS} attempts")


def _config(transactions: Path) -> str:
    return (
        "data:\n"
        "  source: sql\n"
        f"  query: \"SELECT * FROM read_csv('{transactions}') -- mirror of https://data.example.com/tx.csv"
        f'?token={TOKEN}"\n'
        "engine:\n"
        "  conf:\n"
        f"    spark.hadoop.fs.s3a.secret.key: {KEY}\n"
        "tracking:\n"
        "  tables: full  # every per-customer table stored whole in the run, so the scan reads them all\n"
    )


def _occurrences(roots: list[Path], texts: dict[str, bytes]) -> tuple[int, dict[str, list[str]]]:
    """Bytes scanned, and where each secret was found (file contents and names)."""
    scanned = 0
    found: dict[str, list[str]] = {secret: [] for secret in SECRETS}
    blobs = [(f"<{name}>", data) for name, data in texts.items()]
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            blobs.append((str(path), path.read_bytes()))
    for where, data in blobs:
        scanned += len(data)
        for secret in SECRETS:
            if secret.encode() in data or secret in where:
                found[secret].append(where)
    return scanned, found


def test_no_secret_in_any_byte_the_run_wrote(tmp_path: Path, cdnow_sample: pd.DataFrame) -> None:
    server_folder = tmp_path / "server"
    server_folder.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    transactions = work / "transactions.csv"
    cdnow_sample.assign(timestamp=cdnow_sample["date"].dt.strftime("%Y-%m-%d"))[
        ["customer_id", "timestamp", "amount"]
    ].to_csv(transactions, index=False)
    (work / "secret.yaml").write_text(_config(transactions))
    with _tracking_server(server_folder) as port:
        uri = f"http://clv:{PASSWORD}@127.0.0.1:{port}"
        env = clean_env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
        command = [str(clv_command()), "train", "--config", "secret.yaml", "--output", "out", "--summary", "s.json"]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode()
        listing = subprocess.run(
            [str(clv_command()), "models"], cwd=work, env=env, capture_output=True, timeout=120, check=True
        )
        compare = subprocess.run(
            [str(clv_command()), "compare"], cwd=work, env=env, capture_output=True, timeout=120, check=True
        )
    assert b"registered  clv version 1" in done.stdout
    artifacts = sorted(p.name for p in (server_folder / "artifacts").rglob("*") if p.is_file())
    assert {"MLmodel", "config.yaml", "params.json", "report.html", "scores.parquet"} <= set(artifacts)
    streams = {
        "train stdout": done.stdout,
        "train stderr": done.stderr,
        "models stdout": listing.stdout,
        "compare stdout": compare.stdout,
    }
    scanned, found = _occurrences([server_folder, work / "out", work / "s.json"], streams)
    # the planted config itself is the only file that may hold them: it is the user's, not written by the run
    assert scanned > 1_000_000
    assert found == {secret: [] for secret in SECRETS}, found
    print(f"secrets scan: {scanned:,} bytes in {len(artifacts)} artifacts, the database, outputs and streams")
