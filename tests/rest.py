"""A real `mlflow models serve` on 127.0.0.1 for the REST tests, and a JSON client for it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    """The HTTP status and the JSON body, for answers and errors alike."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read())


def split(frame: pd.DataFrame) -> dict[str, object]:
    """A frame as MLflow's ``dataframe_split`` JSON payload (types as pandas writes them: ints stay ints;
    floats with every digit, as pandas' default 10 decimals would change the answers at 1e-11)."""
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False, double_precision=15))}


def predictions(body: dict[str, object]) -> pd.DataFrame:
    """An answer's ``predictions`` as a frame: the model's output, as MLflow writes a frame (a list of records)."""
    records = body["predictions"]
    assert isinstance(records, list)
    return pd.DataFrame(records)


def _up(port: int, server: subprocess.Popen[bytes], deadline_s: float = 180) -> bool:
    """True once /ping answers while our process runs; False if it exited first (e.g. the port was taken)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.status == 200 and server.poll() is None:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise AssertionError("mlflow models serve did not answer /ping in time")


@contextlib.contextmanager
def serve(model_uri: str, folder: Path, env: dict[str, str], logs: Path) -> Iterator[str]:
    """The /invocations URL of one server for ``model_uri``. A port picked free can be taken before the
    server binds it: the server then exits, and it is started again on another port."""
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    for attempt in range(START_ATTEMPTS):
        port = _free_port()
        log_path = logs / f"serve-{attempt}.log"
        with log_path.open("wb") as log:
            command = [str(mlflow_cli), "models", "serve", "-m", model_uri, "--env-manager", "local"]
            server = subprocess.Popen(
                [*command, "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if _up(port, server):
                    yield f"http://127.0.0.1:{port}/invocations"
                    assert server.poll() is None, "the server stopped while the tests ran"
                    return
            finally:
                server.terminate()
                server.wait(timeout=30)
        if "address already in use" not in log_path.read_text(errors="replace").lower():
            raise AssertionError(f"mlflow models serve exited with {server.returncode}: see {log_path}")
    raise AssertionError(f"mlflow models serve could not bind a free port in {START_ATTEMPTS} attempts")
