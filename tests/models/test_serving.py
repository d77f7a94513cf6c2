"""REST: a real `mlflow models serve` process on 127.0.0.1 answers with the batch CLI's numbers (slow)."""

from __future__ import annotations

import datetime as dt
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
import pytest

from tests.conftest import Registry

pytestmark = pytest.mark.slow

START_ATTEMPTS = 3
MODEL_COLUMNS = [
    "p_alive",
    "churn_risk",
    "risk_tier",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_order_value",
    "clv",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    """The HTTP status and the JSON body, for answers and errors alike."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read())


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


@pytest.fixture(scope="module")
def invocations(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The /invocations URL of one server for this module. A port picked free can be taken before the
    server binds it: the server then exits, and it is started again on another port."""
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    logs = tmp_path_factory.mktemp("serve")
    for attempt in range(START_ATTEMPTS):
        port = _free_port()
        log_path = logs / f"serve-{attempt}.log"
        with log_path.open("wb") as log:
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


def _customers(registry: Registry) -> pd.DataFrame:
    from pipeline.config import Config, DataConfig, EngineConfig
    from pipeline.prepare import prepare_as_of
    from pipeline.sources import connect, open_transactions

    data = open_transactions(connect(EngineConfig()), DataConfig(source="csv", path=registry.transactions))
    customers = prepare_as_of(data.relation, Config().prepare, dt.date(1998, 6, 30)).customers
    return customers[["customer_id", "frequency", "recency", "T", "monetary_value"]].iloc[::47].head(50)


def _split(frame: pd.DataFrame) -> dict[str, object]:
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def _check_numbers(predictions: pd.DataFrame, batch: pd.DataFrame) -> None:
    assert list(predictions.columns) == MODEL_COLUMNS  # every model column, none dropped
    for column in MODEL_COLUMNS:
        if column == "risk_tier":
            assert predictions[column].tolist() == batch[column].tolist()
        else:
            pd.testing.assert_series_equal(
                predictions[column].reset_index(drop=True),
                batch[column].reset_index(drop=True),
                check_names=False,
                rtol=1e-12,
            )


def test_rest_invocations_match_batch_scores(registry: Registry, invocations: str) -> None:
    sample = _customers(registry)
    batch = pd.read_parquet(registry.scores).set_index("customer_id").loc[sample["customer_id"]]
    answers = [_post(invocations, _split(chunk)) for chunk in (sample.iloc[:25], sample.iloc[25:])]
    assert [status for status, _ in answers] == [200, 200]
    rest = pd.concat(pd.DataFrame(body["predictions"]) for _, body in answers).set_index("customer_id")
    assert list(rest.index) == list(sample["customer_id"])
    _check_numbers(rest, batch)


def test_rest_takes_int_ids_and_counts(registry: Registry, invocations: str) -> None:
    """customer_id and frequency as JSON integers: the same numbers; the ids come back as text."""
    sample = _customers(registry)
    batch = pd.read_parquet(registry.scores).set_index("customer_id").loc[sample["customer_id"]]
    as_ints = sample.assign(customer_id=sample["customer_id"].astype(int), frequency=sample["frequency"].astype(int))
    payload = _split(as_ints)
    assert isinstance(payload["dataframe_split"], dict)
    assert all(isinstance(row[0], int) and isinstance(row[1], int) for row in payload["dataframe_split"]["data"])
    status, body = _post(invocations, payload)
    assert status == 200
    rest = pd.DataFrame(body["predictions"])
    assert rest["customer_id"].tolist() == [str(int(i)) for i in sample["customer_id"]]  # "0047" comes back "47"
    _check_numbers(rest.drop(columns=["customer_id"]), batch)


def test_bad_input_is_a_client_error_with_the_contract_message(registry: Registry, invocations: str) -> None:
    sample = _customers(registry).head(3)
    broken = sample.assign(recency=sample["T"] + 1.0)
    status, body = _post(invocations, _split(broken))
    assert status == 400
    assert body == {  # no stack trace, no echo of the input
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "column 'recency' is greater than 'T' for some customers",
        "sqlstate": "KAM00",
        "error_class": "INVALID_PARAMETER_VALUE",
    }
