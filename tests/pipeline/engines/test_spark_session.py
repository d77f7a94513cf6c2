"""The Spark edge's wait for a standalone master: a master that does not answer is exit 3 with one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.engines.spark_session import MASTER_TIMEOUT, wait_for_master
from pipeline.errors import ConfigError, EngineUnavailableError
from tests.conftest import clean_env


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_listening_master_is_reachable() -> None:
    with socket.socket() as master:
        master.bind(("127.0.0.1", 0))
        master.listen()
        port = master.getsockname()[1]
        wait_for_master(f"spark://127.0.0.1:{port}", timeout=5)
        wait_for_master(f"spark://127.0.0.1:{_closed_port()},127.0.0.1:{port}", timeout=5)  # one of two (HA)


def test_no_master_is_engine_unavailable() -> None:
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(EngineUnavailableError) as raised:
        wait_for_master(f"spark://127.0.0.1:{port}", timeout=0.5)
    assert time.monotonic() - started >= 0.5  # it waited the whole timeout before giving up
    assert raised.value.exit_code == 3
    assert str(raised.value) == (
        f"Spark master spark://127.0.0.1:{port} is unreachable (no answer within 0.5 s): start the cluster "
        "or check --master / engine.master"
    )
    assert MASTER_TIMEOUT == 10


@pytest.mark.parametrize("master", ["local[2]", "local[*]", "yarn", "k8s://https://k8s.example:443", ""])
def test_other_masters_are_not_probed(master: str) -> None:
    wait_for_master(master, timeout=0)


@pytest.mark.parametrize("master", ["spark://127.0.0.1", "spark://:7077", "spark://host:port"])
def test_a_malformed_standalone_url_is_a_config_error(master: str) -> None:
    with pytest.raises(ConfigError, match="expected spark://host:port"):
        wait_for_master(master, timeout=0)


@pytest.mark.slow
def test_clv_train_without_a_master_one_line_exit_3(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")
    port = _closed_port()
    (tmp_path / "spark.yaml").write_text(f"engine: {{name: spark, master: 'spark://127.0.0.1:{port}'}}\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "clv"), "train", "--config", "spark.yaml", "--output", "out"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"clv: error: Spark master spark://127.0.0.1:{port} is unreachable (no answer within 10 s): start the "
        "cluster or check --master / engine.master"
    ]
