"""REST: a real `mlflow models serve` process on 127.0.0.1 answers with the batch CLI's numbers (slow)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import Registry

pytestmark = pytest.mark.slow

MAX_REQUESTS = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, payload: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        result: dict[str, object] = json.loads(response.read())
    return result


def _wait_until_up(port: int, server: subprocess.Popen[bytes], deadline_s: float = 180) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow models serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise AssertionError("mlflow models serve did not answer /ping in time")


def test_rest_invocations_match_batch_scores(registry: Registry, tmp_path: Path) -> None:
    import datetime as dt

    from pipeline.config import Config, DataConfig, EngineConfig
    from pipeline.prepare import prepare_as_of
    from pipeline.sources import connect, open_transactions

    data = open_transactions(connect(EngineConfig()), DataConfig(source="csv", path=registry.transactions))
    customers = prepare_as_of(data.relation, Config().prepare, dt.date(1998, 6, 30)).customers
    sample = customers[["customer_id", "frequency", "recency", "T", "monetary_value"]].iloc[::47].head(50)
    batch = pd.read_parquet(registry.scores).set_index("customer_id").loc[sample["customer_id"]]

    port = _free_port()
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            str(mlflow_cli),
            "models",
            "serve",
            "-m",
            "models:/clv@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--workers",
            "1",
        ],
        cwd=registry.folder,
        env=registry.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(port, server)
        url = f"http://127.0.0.1:{port}/invocations"
        answers = []
        for chunk in (sample.iloc[:25], sample.iloc[25:]):  # bounded: two scoring requests
            answers.append(_post(url, {"dataframe_split": json.loads(chunk.to_json(orient="split", index=False))}))
        assert len(answers) <= MAX_REQUESTS
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    rest = pd.concat(pd.DataFrame(a["predictions"]) for a in answers).set_index("customer_id")
    assert list(rest.index) == list(sample["customer_id"])
    for column in rest.columns:
        if column == "risk_tier":
            assert rest[column].tolist() == batch[column].tolist()
        else:
            pd.testing.assert_series_equal(rest[column], batch[column], check_names=False, rtol=1e-12)
