"""A Spark standalone cluster on this machine: a master and two workers on 127.0.0.1.

    python scripts/spark_cluster.py start [--folder DIR]   # prints the master URL, spark://127.0.0.1:PORT
    python scripts/spark_cluster.py status [--folder DIR]  # the master's view (/json) of its workers and apps
    python scripts/spark_cluster.py stop [--folder DIR] [--clean]  # stops the processes that start started

The daemons are the pinned pyspark's own (``spark-class org.apache.spark.deploy.master.Master`` and
``...worker.Worker``), each worker with its own executor JVMs and Python workers. ``start`` picks free
ports, waits until both workers are registered with the master (bounded), and records the PIDs it
started in ``DIR/cluster.json``; ``stop`` ends exactly those processes and their descendants (the
executors and their Python workers), by PID, and deletes ``cluster.json``. Logs and the workers' work folders
are under ``DIR`` (default: ``$TMPDIR/clv-spark-cluster``). Each executor unpacks the application's
``--archives`` into its work folder, so they grow by the unpacked environment per executor and application;
``stop`` keeps them (the executors' logs are there) and says how much they hold. ``start`` also records what it
creates in ``DIR`` and the daemons' PIDs in ``DIR/.clv-spark-cluster.json``, which ``stop`` keeps;
``stop --clean`` deletes exactly those paths (scripts/spark_cluster_manifest.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spark_cluster_manifest import (
    CleanRefusedError,
    ClusterError,
    Process,
    claim,
    clean,
    disk_usage,
    record,
    recorded_paths,
    require_manifest,
    start_time,
)

__all__ = [
    "Cluster",
    "ClusterError",
    "Daemon",
    "default_folder",
    "descendants",
    "kill_tree",
    "main",
    "master_state",
    "start",
    "status",
    "stop",
]

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"


@dataclass(frozen=True)
class Daemon:
    """A master or worker JVM that ``start`` launched: its PID, the start time that identifies it (so a
    reused PID is never signalled), its RPC port and its log."""

    role: str
    pid: int
    started: int
    port: int
    log: str


@dataclass(frozen=True)
class Cluster:
    folder: str
    master_url: str
    web_url: str
    daemons: tuple[Daemon, ...]

    @property
    def workers(self) -> tuple[Daemon, ...]:
        return tuple(d for d in self.daemons if d.role.startswith("worker"))


def default_folder() -> Path:
    return Path(tempfile.gettempdir()) / "clv-spark-cluster"


def spark_class() -> Path:
    """``spark-class`` of the installed pyspark (the pinned version)."""
    import pyspark

    launcher = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not launcher.exists():
        raise ClusterError(f"{launcher}: not found (install the spark extra: pip install '.[spark]')")
    return launcher


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _parents() -> dict[int, int]:
    """PID -> parent PID of every process (read from /proc)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            found[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return found


def descendants(pid: int) -> list[int]:
    """The PIDs under ``pid`` (children, grandchildren, ...): a worker's executors and their Python workers."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _alive(daemon: Daemon) -> bool:
    return start_time(daemon.pid) == daemon.started


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def kill_tree(daemon: Daemon, sig: int = signal.SIGKILL) -> list[int]:
    """Signal ``daemon`` and every process under it; returns the PIDs signalled (none if it has ended)."""
    if not _alive(daemon):
        return []
    pids = [daemon.pid, *descendants(daemon.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def master_state(web_url: str) -> dict[str, Any]:
    """The master's JSON status (``/json``): its workers, applications and their state."""
    with urllib.request.urlopen(f"{web_url}/json", timeout=5) as response:
        state: dict[str, Any] = json.load(response)
    return state


def _registered_workers(web_url: str) -> list[dict[str, Any]]:
    try:
        workers: list[dict[str, Any]] = master_state(web_url)["workers"]
    except (OSError, ValueError, KeyError):
        return []
    return [w for w in workers if w.get("state") == "ALIVE"]


def _read_state(folder: Path) -> Cluster | None:
    path = folder / STATE_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        daemons = tuple(Daemon(**d) for d in raw["daemons"])
        return Cluster(raw["folder"], raw["master_url"], raw["web_url"], daemons)
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"{path}: not a cluster state file ({exc})") from None


def _write_state(cluster: Cluster) -> None:
    path = Path(cluster.folder) / STATE_FILE
    path.write_text(json.dumps(asdict(cluster), indent=2))


def _launch(role: str, arguments: list[str], folder: Path, env: dict[str, str], port: int) -> Daemon:
    log = folder / f"{role}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(spark_class()), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            start_new_session=True,  # not in the caller's process group: a Ctrl-C there does not reach it
        )
    started = start_time(process.pid)
    if started is None:
        raise ClusterError(f"{role} ended at once; see {log}")
    record(folder, Process(role, process.pid, started))
    return Daemon(role, process.pid, started, port, str(log))


def _created(workers: int) -> list[str]:
    """The names that :func:`start` creates in its folder: the state file, Spark's log and worker folders
    (``SPARK_LOG_DIR``, ``SPARK_WORKER_DIR``), the daemons' logs and the workers' work folders."""
    names = [STATE_FILE, "logs", "work", "master.log"]
    for index in range(1, workers + 1):
        names += [f"worker-{index}", f"worker-{index}.log"]
    return names


def start(
    folder: Path | None = None, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = 180
) -> Cluster:
    """Start a master and ``workers`` workers on 127.0.0.1 and wait until every worker is registered."""
    folder = (folder or default_folder()).resolve()
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    running = _read_state(folder)
    if running is not None and any(_alive(d) for d in running.daemons):
        raise ClusterError(f"a cluster from {folder} is running ({running.master_url}): stop it first")
    claim(folder, _created(workers), created)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(folder / "logs"),
        "SPARK_WORKER_DIR": str(folder / "work"),
    }
    master_port, web_port = free_port(), free_port()
    master_url, web_url = f"spark://{HOST}:{master_port}", f"http://{HOST}:{web_port}"
    cluster = Cluster(str(folder), master_url, web_url, ())
    try:
        arguments = ["--host", HOST, "--port", str(master_port), "--webui-port", str(web_port)]
        master = _launch("master", [MASTER_CLASS, *arguments], folder, env, master_port)
        cluster = Cluster(str(folder), master_url, web_url, (master,))
        _write_state(cluster)
        if not _wait(lambda: _alive(master) and _master_up(web_url), timeout):
            raise ClusterError(f"the master did not come up within {timeout:.0f} s; see {master.log}")
        for index in range(1, workers + 1):
            port = free_port()
            work = folder / f"worker-{index}"
            arguments = ["--host", HOST, "--port", str(port), "--webui-port", str(free_port())]
            arguments += ["--cores", str(cores), "--memory", memory, "--work-dir", str(work), master_url]
            worker = _launch(f"worker-{index}", [WORKER_CLASS, *arguments], folder, env, port)
            cluster = Cluster(str(folder), master_url, web_url, (*cluster.daemons, worker))
            _write_state(cluster)
        ports = {d.port for d in cluster.workers}
        if not _wait(lambda: {w["port"] for w in _registered_workers(web_url)} >= ports, timeout):
            raise ClusterError(f"{workers} workers did not register within {timeout:.0f} s; see {folder}")
    except BaseException:
        stop(folder)
        raise
    return cluster


def _master_up(web_url: str) -> bool:
    try:
        return master_state(web_url).get("status") == "ALIVE"
    except (OSError, ValueError):
        return False


def stop(folder: Path | None = None, timeout: float = 30) -> list[int]:
    """Stop the processes that :func:`start` started from ``folder`` and everything under them; returns their PIDs.

    Workers first (each stops its executors), then the master: SIGTERM, then SIGKILL for whatever is
    left after ``timeout`` seconds. PIDs that were reused by another process are left alone. The logs and
    work folders stay, and so does the manifest (``stop --clean`` deletes what it records).
    """
    folder = (folder or default_folder()).resolve()
    cluster = _read_state(folder)
    if cluster is None:
        return []
    ordered = [*cluster.workers, *[d for d in cluster.daemons if d.role == "master"]]
    tree: dict[int, int] = {}  # PID -> start time, of the processes alive now
    for daemon in ordered:
        if _alive(daemon):
            for pid in [daemon.pid, *descendants(daemon.pid)]:
                started = start_time(pid)
                if started is not None:
                    tree[pid] = started
    for daemon in ordered:
        kill_tree(daemon, signal.SIGTERM)

    def ended() -> bool:
        return all(start_time(pid) != started for pid, started in tree.items())

    if not _wait(ended, timeout):
        for pid, started in tree.items():
            if start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _wait(ended, timeout)
    (folder / STATE_FILE).unlink(missing_ok=True)
    return sorted(tree)


def status(folder: Path | None = None) -> dict[str, Any]:
    """Which recorded daemons are alive, and the master's view of its workers and applications."""
    folder = (folder or default_folder()).resolve()
    cluster = _read_state(folder)
    if cluster is None:
        return {"running": False}
    found: dict[str, Any] = {
        "running": any(_alive(d) for d in cluster.daemons),
        "master_url": cluster.master_url,
        "web_url": cluster.web_url,
        "daemons": {d.role: {"pid": d.pid, "alive": _alive(d)} for d in cluster.daemons},
    }
    with contextlib.suppress(OSError, ValueError):
        state = master_state(cluster.web_url)
        found["workers"] = [{k: w[k] for k in ("id", "state", "cores", "coresused")} for w in state["workers"]]
        found["applications"] = [{k: a[k] for k in ("id", "name", "state", "cores")} for a in state["activeapps"]]
    return found


def _report_files(folder: Path, remove: bool) -> None:
    if remove:
        freed = clean(folder)
        print(f"spark_cluster: removed what start created in {folder} ({freed / 1e6:,.0f} MB)", file=sys.stderr)
        return
    left = disk_usage(recorded_paths(folder))
    if left:
        print(
            f"spark_cluster: {folder} keeps the logs and work folders ({left / 1e6:,.0f} MB, with each executor's "
            "unpacked environment); stop --clean deletes them",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--folder", type=Path, default=None, help="state, logs and work folders")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores of each worker")
    parser.add_argument("--memory", default="1g", help="memory of each worker for its executors")
    parser.add_argument("--clean", action="store_true", help="stop: also delete what start created in the folder")
    args = parser.parse_args(argv)
    if args.clean and args.command != "stop":
        parser.error("--clean goes with stop")
    try:
        if args.command == "start":
            cluster = start(args.folder, args.workers, args.cores, args.memory)
            print(cluster.master_url)
            pids = ", ".join(f"{d.role} {d.pid}" for d in cluster.daemons)
            print(f"spark_cluster: {pids}; web UI {cluster.web_url}", file=sys.stderr)
        elif args.command == "stop":
            folder = (args.folder or default_folder()).resolve()
            if args.clean:
                require_manifest(folder)  # refuses before stopping anything
            stopped = stop(folder)
            print(f"spark_cluster: stopped {len(stopped)} processes", file=sys.stderr)
            _report_files(folder, args.clean)
        else:
            print(json.dumps(status(args.folder), indent=2))
    except CleanRefusedError as exc:
        print(f"spark_cluster: error: {exc}", file=sys.stderr)
        return 2
    except ClusterError as exc:
        print(f"spark_cluster: error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
