"""scripts/spark_cluster.py without Spark: what ``start`` records in its manifest, what ``stop`` keeps and what
``stop --clean`` deletes (only what ``start`` recorded). The daemons are ``sleep`` processes started by a fake
``spark-class``, the master's answers are faked from the state file."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.spark_cluster import cluster_manifest, cluster_script

spark_cluster = cluster_script()
manifest_module = cluster_manifest()
MANIFEST = manifest_module.MANIFEST

FAKE_SPARK_CLASS = """#!/bin/sh
# As the daemons do: Spark's log folder, and in a worker's work folder an executor's unpacked environment.
mkdir -p "$SPARK_LOG_DIR"
while [ $# -gt 0 ]; do
  if [ "$1" = --work-dir ]; then
    mkdir -p "$2/app-1/0/environment" && head -c 1000 /dev/zero > "$2/app-1/0/environment/module.py"
    touch "$2/registered"
  fi
  shift
done
exec sleep 300
"""
CREATED = ["cluster.json", "logs", "master.log", "work", "worker-1", "worker-1.log", "worker-2", "worker-2.log"]


@pytest.fixture
def fake_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Any]]:
    """``start`` with daemons that sleep; whatever is still alive at the end is killed by its recorded PID."""
    launcher = tmp_path / "spark-class"
    launcher.write_text(FAKE_SPARK_CLASS)
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(spark_cluster, "spark_class", lambda: launcher)
    monkeypatch.setattr(spark_cluster, "_master_up", lambda web_url: True)
    started: list[Any] = []

    def registered(web_url: str) -> list[dict[str, Any]]:  # the workers that are up, as the master lists them
        workers = spark_cluster._read_state(started[-1]).workers
        return [{"port": d.port, "state": "ALIVE"} for d in workers if (started[-1] / d.role / "registered").exists()]

    monkeypatch.setattr(spark_cluster, "_registered_workers", registered)

    def start(folder: Path) -> Any:
        started.append(folder.resolve())
        return spark_cluster.start(folder, timeout=30)

    yield start
    for folder in started:
        found = manifest_module.read_manifest(folder) if folder.exists() else None
        for process in found.processes if found else ():
            if manifest_module.alive(process):
                os.kill(process.pid, signal.SIGKILL)


def test_start_records_what_it_creates_and_stop_clean_deletes_only_that(
    tmp_path: Path, fake_start: Callable[[Path], Any], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cluster"
    cluster = fake_start(folder)
    recorded = manifest_module.read_manifest(folder)
    assert recorded.folder_created
    assert list(recorded.paths) == CREATED
    assert [(p.role, p.pid) for p in recorded.processes] == [(d.role, d.pid) for d in cluster.daemons]
    assert all(manifest_module.alive(p) for p in recorded.processes)
    # The user's own files, put into the folder while the cluster runs (one under a folder named like a worker's).
    (folder / "notes.txt").write_text("the user's own file\n")
    (folder / "results" / "work").mkdir(parents=True)
    (folder / "results" / "work" / "thesis.tex").write_text("\\documentclass{article}\n")

    assert spark_cluster.main(["stop", "--folder", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "stopped 3 processes" in err
    assert f"{folder.resolve()} keeps the logs and work folders" in err
    assert "stop --clean deletes them" in err
    assert not any(manifest_module.alive(p) for p in recorded.processes)
    assert not (folder / "cluster.json").exists()
    assert (folder / MANIFEST).exists()  # plain stop keeps the manifest
    assert (folder / "worker-1" / "app-1" / "0" / "environment" / "module.py").exists()
    assert manifest_module.disk_usage(manifest_module.recorded_paths(folder)) >= 2000

    assert spark_cluster.main(["stop", "--clean", "--folder", str(folder)]) == 0
    assert f"removed what start created in {folder.resolve()}" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "results"]
    assert (folder / "results" / "work" / "thesis.tex").exists()

    fresh = tmp_path / "fresh"  # with nothing of the user's in it, the folder that start created goes too
    fake_start(fresh)
    assert spark_cluster.main(["stop", "--clean", "--folder", str(fresh)]) == 0
    assert not fresh.exists()


def test_clean_keeps_a_folder_that_start_did_not_create(tmp_path: Path, fake_start: Callable[[Path], Any]) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    fake_start(folder)
    assert not manifest_module.read_manifest(folder).folder_created
    assert spark_cluster.main(["stop", "--clean", "--folder", str(folder)]) == 0
    assert folder.is_dir()
    assert list(folder.iterdir()) == []


def test_stop_clean_refuses_a_folder_without_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder that start never used, with names like its own (a user's work/, or an older script's leftovers)."""
    folder = tmp_path / "mine"
    (folder / "work" / "important").mkdir(parents=True)
    (folder / "work" / "important" / "thesis.tex").write_text("\\documentclass{article}\n")
    (folder / "logs").mkdir()
    for name in ("master.log", "worker-1.log", "cluster.json"):
        (folder / name).write_text("{}\n")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))

    assert spark_cluster.main(["stop", "--clean", "--folder", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"spark_cluster: error: {folder} has no {MANIFEST}")
    assert "--clean deletes nothing" in err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    with pytest.raises(manifest_module.CleanRefusedError):
        manifest_module.clean(folder)
    assert (folder / "work" / "important" / "thesis.tex").exists()


def test_start_refuses_a_folder_holding_names_it_did_not_create(
    tmp_path: Path, fake_start: Callable[[Path], Any]
) -> None:
    folder = tmp_path / "mine"
    (folder / "work" / "important").mkdir(parents=True)
    (folder / "work" / "important" / "thesis.tex").write_text("\\documentclass{article}\n")
    with pytest.raises(spark_cluster.ClusterError, match=r"work was not created by spark_cluster.py start"):
        fake_start(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["work"]  # no manifest, no daemon, no log
    assert (folder / "work" / "important" / "thesis.tex").exists()


def test_clean_refuses_while_a_recorded_daemon_runs(
    tmp_path: Path, fake_start: Callable[[Path], Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the state file (deleted by a plain stop, or by hand), the manifest's PIDs still say it runs."""
    folder = tmp_path / "cluster"
    cluster = fake_start(folder)
    (folder / "cluster.json").unlink()
    assert spark_cluster.main(["stop", "--clean", "--folder", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "stopped 0 processes" in err
    assert f"master PID {cluster.daemons[0].pid}" in err
    assert "are running" in err
    assert "--clean deletes nothing" in err
    assert (folder / MANIFEST).exists()
    assert (folder / "master.log").exists()
    assert (folder / "worker-1" / "app-1" / "0" / "environment" / "module.py").exists()
    with pytest.raises(spark_cluster.ClusterError, match="is running"):
        fake_start(folder)  # nor does start run a second cluster there


def test_clean_refuses_the_test_process_as_a_recorded_daemon(tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    manifest_module.claim(folder, ["work"], folder_created=True)
    (folder / "work").mkdir()
    me = manifest_module.Process("master", os.getpid(), manifest_module.start_time(os.getpid()))
    manifest_module.record(folder, me)
    with pytest.raises(manifest_module.CleanRefusedError, match=rf"master PID {os.getpid()}"):
        manifest_module.clean(folder)
    assert (folder / "work").is_dir()
    reused = manifest_module.Process("master", os.getpid(), me.started + 1)  # the same PID, another process
    assert not manifest_module.alive(reused)


def test_clean_deletes_a_recorded_link_not_its_target(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("kept\n")
    folder = tmp_path / "cluster"
    folder.mkdir()
    manifest_module.claim(folder, ["logs"], folder_created=True)
    (folder / "logs").symlink_to(outside, target_is_directory=True)
    manifest_module.clean(folder)
    assert not folder.exists()
    assert (outside / "keep.txt").exists()


@pytest.mark.parametrize("name", ["..", "../outside", "/etc", "a/b", ""])
def test_a_manifest_naming_anything_but_an_entry_of_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    (tmp_path / "outside").mkdir()
    (folder / MANIFEST).write_text(json.dumps({"folder_created": True, "paths": [name], "processes": []}))
    with pytest.raises(spark_cluster.ClusterError, match="is not a name in"):
        manifest_module.clean(folder)
    assert (tmp_path / "outside").is_dir()
    assert (folder / MANIFEST).exists()


def test_clean_goes_with_stop_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        spark_cluster.main(["status", "--clean"])
    assert "--clean goes with stop" in capsys.readouterr().err
