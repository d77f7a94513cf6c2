"""The spark-submit recipe of docs/spark-cluster.md, run as written against a Spark standalone cluster
(a master and two workers on 127.0.0.1, scripts/spark_cluster.py): the DuckDB job's numbers, executors in
separate processes, the registered model through spark_udf on the executors, a worker lost during prepare,
and an unreachable master (slow)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import clean_env
from tests.spark_cluster import (
    cluster_script,
    environment,
    job_folder,
    recipe,
    recipe_env,
    recipe_file,
    run_recipe,
)

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")

spark_cluster = cluster_script()
COMPARED = ("data", "parameters", "log_likelihood", "metrics", "checks", "promoted")
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


@contextlib.contextmanager
def _running(cluster: Any) -> Iterator[Any]:
    """Yield the started cluster; stop it afterwards and check that nothing it started is left."""
    started = [*cluster.daemons]
    try:
        yield cluster
    finally:
        stopped = spark_cluster.stop(Path(cluster.folder))
        assert {d.pid for d in started if spark_cluster._alive(d)} == set()
        assert [pid for pid in stopped if Path(f"/proc/{pid}").exists() and _is_ours(pid, cluster.folder)] == []
        for work in Path(cluster.folder).glob("worker-*/app-*"):  # each executor unpacked the environment (885 MB)
            shutil.rmtree(work, ignore_errors=True)


def _is_ours(pid: int, folder: str) -> bool:
    """Whether a live process runs from the cluster's folder (a daemon, an executor or its Python workers)."""
    try:
        cwd = str(Path(f"/proc/{pid}/cwd").resolve())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return cwd.startswith(folder) and stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with _running(spark_cluster.start(tmp_path_factory.mktemp("cluster"))) as started:
        yield started


@pytest.fixture(scope="module")
def packed() -> Path:
    """clv-env/ and clv-env.tar.gz from the page's `environment` block (cached across runs)."""
    return environment()


@pytest.fixture(scope="module")
def duckdb_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The default CDNOW job on DuckDB, the numbers every cluster run must give."""
    folder = tmp_path_factory.mktemp("duckdb")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "clv"), "train", "--output", "out", "--summary", "out/summary.json"],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return folder, json.loads((folder / "out" / "summary.json").read_text())


@pytest.fixture(scope="module")
def cluster_job(
    cluster: Any, packed: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The page's `submit` block, once, in a fresh folder."""
    folder = job_folder(tmp_path_factory.mktemp("submit"), packed)
    return folder, run_recipe("submit", folder, timeout=1200, SPARK_MASTER_URL=cluster.master_url)


def _assert_same_numbers(folder: Path, duckdb_job: tuple[Path, dict[str, Any]]) -> None:
    duck_folder, duck = duckdb_job
    ours = json.loads((folder / "out" / "summary.json").read_text())
    for key in COMPARED:
        assert ours[key] == duck[key], key
    assert ours["data"]["rows_in"] == 69_659
    assert (folder / "out" / "scores.parquet" / "_SUCCESS").exists()  # written by the executors
    scores = pd.read_parquet(folder / "out" / "scores.parquet").sort_values("customer_id", ignore_index=True)
    duck_scores = pd.read_parquet(duck_folder / "out" / "scores.parquet")
    assert len(scores) == 23_570
    pd.testing.assert_frame_equal(scores, duck_scores[scores.columns], check_exact=True)


def _application(cluster: Any, name: str) -> dict[str, Any]:
    state = spark_cluster.master_state(cluster.web_url)
    apps = [a for a in state["completedapps"] + state["activeapps"] if a["name"] == name]
    assert len(apps) == 1, apps
    application: dict[str, Any] = apps[0]
    return application


def _executor_logs(cluster: Any, app_id: str) -> dict[str, list[Path]]:
    """Worker -> the stderr files of the executors it launched for ``app_id`` (its work folder)."""
    return {
        worker.role: sorted(Path(cluster.folder, worker.role).glob(f"{app_id}/*/stderr")) for worker in cluster.workers
    }


def test_submitted_job_equals_the_duckdb_job(
    cluster_job: tuple[Path, subprocess.CompletedProcess[str]], duckdb_job: tuple[Path, dict[str, Any]]
) -> None:
    folder, done = cluster_job
    assert done.returncode == 0, done.stderr[-5000:]
    assert "registered  clv version 1, alias 'champion' moved" in done.stdout
    _assert_same_numbers(folder, duckdb_job)


def test_executors_are_separate_processes_on_both_workers(
    cluster: Any, cluster_job: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    """Each worker launched its own executor JVM for the job (its log in the worker's work folder), each
    unpacked the archive, and both ran tasks."""
    assert cluster_job[1].returncode == 0
    application = _application(cluster, "clv-cdnow")
    assert application["state"] == "FINISHED"
    assert application["cores"] == 2
    logs = _executor_logs(cluster, application["id"])
    assert [len(files) for files in logs.values()] == [1, 1], logs
    executors = {files[0].parent.name for files in logs.values()}
    assert len(executors) == 2  # two executor ids
    for files in logs.values():
        text = files[0].read_text(errors="replace")
        assert "Finished task" in text
        environment = files[0].parent / "environment"
        assert (environment / "bin" / "python").exists()  # the unpacked archive
        # without what only the driver uses (the page's list): the job ran without it on the executors
        site = next(environment.glob("lib/python3*/site-packages"))
        assert (site / "pandas").is_dir()
        assert not [name for name in ("numba", "pymc", "matplotlib", "pip") if (site / name).exists()]


def test_registered_model_scores_on_the_executors(
    cluster: Any,
    cluster_job: tuple[Path, subprocess.CompletedProcess[str]],
    duckdb_job: tuple[Path, dict[str, Any]],
) -> None:
    """The page's `udf` block: models:/clv@champion through spark_udf on the cluster, the batch numbers."""
    from pipeline.config import Config, DataConfig, EngineConfig
    from pipeline.engines import open_engine

    folder, done = cluster_job
    assert done.returncode == 0
    engine = open_engine(EngineConfig())
    data = engine.open(DataConfig(source="cdnow_master"))
    customers = engine.prepare_as_of(data, Config().prepare, dt.date(1998, 6, 30)).customers
    columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    customers[columns].to_parquet(folder / "customers.parquet")
    (folder / "clv_udf.py").write_text(recipe_file("clv_udf.py"), encoding="utf-8")

    scored = run_recipe("udf", folder, timeout=900, SPARK_MASTER_URL=cluster.master_url)
    assert scored.returncode == 0, scored.stderr[-5000:]
    application = _application(cluster, "clv-udf")
    assert [len(files) for files in _executor_logs(cluster, application["id"]).values()] == [1, 1]
    udf = pd.read_parquet(folder / "udf-scores.parquet").set_index("customer_id")
    batch = pd.read_parquet(duckdb_job[0] / "out" / "scores.parquet").set_index("customer_id")
    assert len(udf) == len(batch) == 23_570
    udf = udf.loc[batch.index]
    for column in MODEL_COLUMNS:
        if column == "risk_tier":
            assert udf[column].tolist() == batch[column].tolist()
        else:
            pd.testing.assert_series_equal(udf[column], batch[column], check_names=False, rtol=1e-12)


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_worker_lost_during_prepare_gives_the_same_numbers(
    packed: Path, duckdb_job: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Kill the first worker and its executor once that executor runs prepare's tasks: Spark reschedules
    them on the other worker and the job ends with the DuckDB job's numbers."""
    with _running(spark_cluster.start(tmp_path / "cluster")) as own:
        folder = job_folder(tmp_path / "job", packed)
        job = subprocess.Popen(
            ["bash", "-eu", "-o", "pipefail", "-c", recipe("submit")],
            cwd=folder,
            env=recipe_env(SPARK_MASTER_URL=own.master_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: spark-submit's JVM and the driver go with it
        )
        victim, survivor = own.workers
        try:

            def victim_runs_tasks() -> bool:
                assert job.poll() is None, "the job ended before the worker could be killed"
                return any("Running task" in log.read_text(errors="replace") for log in _victim_logs())

            def _victim_logs() -> list[Path]:
                return sorted(Path(own.folder, victim.role).glob("app-*/*/stderr"))

            _wait_for(victim_runs_tasks, 600, "the first worker's executor to run a task")
            killed = spark_cluster.kill_tree(victim)
            assert len(killed) >= 2  # the worker JVM and its executor JVM (and any Python workers)
            stdout, stderr = job.communicate(timeout=1200)
            (folder / "job-stdout.txt").write_text(stdout)
            (folder / "job-stderr.txt").write_text(stderr)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.communicate()
        assert job.returncode == 0, stderr[-5000:]
        assert "registered  clv version 1, alias 'champion' moved" in stdout
        # The driver saw the loss (its scheduler logs it at ERROR) and went on with the other worker.
        lost = r"ERROR TaskSchedulerImpl: Lost executor \d+ on 127\.0\.0\.1: worker lost"
        assert re.search(lost, stderr), stderr[-5000:]
        _assert_same_numbers(folder, duckdb_job)
        # The prepare stage's work did finish on the survivor, after the loss.
        survivor_logs = sorted(Path(own.folder, survivor.role).glob("app-*/*/stderr"))
        assert len(survivor_logs) == 1
        assert "Finished task" in survivor_logs[0].read_text(errors="replace")
        assert not spark_cluster._alive(victim)


def test_unreachable_master_one_line_exit_3(packed: Path, tmp_path: Path) -> None:
    """The `submit` block against a port where no master listens: one line, exit 3, no traceback."""
    folder = job_folder(tmp_path, packed)
    master = f"spark://127.0.0.1:{spark_cluster.free_port()}"
    done = run_recipe("submit", folder, timeout=300, SPARK_MASTER_URL=master)
    assert done.returncode == 3, done.stdout[-5000:] + done.stderr[-5000:]
    # spark-submit passes the Python driver's stderr on to its own stdout; its own WARN lines go to stderr.
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if "error" in line.lower() or "exception" in line.lower()]
    assert errors == [
        f"clv: error: Spark master {master} is unreachable (no answer within 10 s): start the cluster "
        "or check --master / engine.master"
    ]
    assert "Traceback" not in output
    assert "at org.apache" not in output  # no Java stack trace either
    assert not (folder / "out" / "summary.json").exists()
