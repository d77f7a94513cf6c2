"""scripts/spark_cluster.py without Spark: what ``stop`` keeps and what ``stop --clean`` deletes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.spark_cluster import cluster_script

spark_cluster = cluster_script()


GONE = 1 << 22  # above the default pid_max: no live process has this PID, as for a cluster that has ended


def _stopped_cluster_folder(folder: Path) -> Path:
    """A folder as a two-worker cluster leaves it: state, daemons' logs, work folders with an unpacked archive."""
    folder.mkdir()
    daemons = [
        {"role": role, "pid": GONE, "started": 1, "port": 7077 + n, "log": str(folder / f"{role}.log")}
        for n, role in enumerate(("master", "worker-1", "worker-2"))
    ]
    state = {"folder": str(folder), "master_url": "spark://127.0.0.1:7077", "web_url": "http://127.0.0.1:8080"}
    (folder / "cluster.json").write_text(json.dumps(state | {"daemons": daemons}))
    for daemon in daemons:
        Path(daemon["log"]).write_text("log\n")
    for worker in ("worker-1", "worker-2"):
        executor = folder / worker / "app-20261205-0000" / "0"
        (executor / "environment" / "lib").mkdir(parents=True)
        (executor / "environment" / "lib" / "module.py").write_bytes(b"x" * 1000)
        (executor / "stderr").write_text("executor log\n")
    (folder / "logs").mkdir()
    (folder / "work").mkdir()
    return folder


def test_stop_keeps_the_work_folders_and_says_how_much_they_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _stopped_cluster_folder(tmp_path / "cluster")
    assert spark_cluster.main(["stop", "--folder", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "stopped 0 processes" in err
    assert f"{folder} keeps the logs and work folders" in err
    assert "stop --clean deletes them" in err
    assert (folder / "worker-1" / "app-20261205-0000" / "0" / "stderr").exists()
    assert not (folder / "cluster.json").exists()


def test_stop_clean_deletes_only_what_start_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _stopped_cluster_folder(tmp_path / "cluster")
    (folder / "notes.txt").write_text("the user's own file\n")
    (folder / "worker-notes").mkdir()
    files = spark_cluster.cluster_files(folder)
    assert [p.name for p in files] == [
        "logs",
        "master.log",
        "work",
        "worker-1",
        "worker-1.log",
        "worker-2",
        "worker-2.log",
    ]
    assert spark_cluster.disk_usage(files) >= 2000

    assert spark_cluster.main(["stop", "--clean", "--folder", str(folder)]) == 0
    assert f"removed the logs and work folders in {folder}" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "worker-notes"]

    (folder / "notes.txt").unlink()
    (folder / "worker-notes").rmdir()
    (folder / "worker-3").mkdir()
    assert spark_cluster.remove_files(folder) == 0  # no state file left: found by name; the empty folder goes too
    assert not folder.exists()


def test_clean_refuses_a_running_cluster(tmp_path: Path) -> None:
    folder = _stopped_cluster_folder(tmp_path / "cluster")
    state = json.loads((folder / "cluster.json").read_text())
    state["daemons"][0] |= {"pid": os.getpid(), "started": spark_cluster._start_time(os.getpid())}  # alive
    (folder / "cluster.json").write_text(json.dumps(state))
    with pytest.raises(spark_cluster.ClusterError, match="is running"):
        spark_cluster.remove_files(folder)
    assert (folder / "worker-1").exists()


def test_clean_goes_with_stop_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        spark_cluster.main(["status", "--clean"])
    assert "--clean goes with stop" in capsys.readouterr().err
