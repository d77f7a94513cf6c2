"""What ``scripts/spark_cluster.py start`` created in its folder, and ``stop --clean``, which deletes exactly that.

Before it launches anything, ``start`` records in ``DIR/.clv-spark-cluster.json`` (the manifest) the names it
is about to create in ``DIR``, and whether it created ``DIR`` itself; then each daemon it launches, by PID and
start time. It refuses to start if one of those names is already in ``DIR`` without being recorded there (the
user's file, or a folder of an older version of the script). ``stop`` keeps the manifest. :func:`clean` deletes
the recorded paths and the manifest, then ``DIR`` if ``start`` created it and nothing else is left. It deletes
nothing where there is no manifest, nor while a recorded daemon is alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

__all__ = [
    "MANIFEST",
    "CleanRefusedError",
    "ClusterError",
    "Manifest",
    "Process",
    "alive",
    "claim",
    "clean",
    "disk_usage",
    "read_manifest",
    "record",
    "recorded_paths",
    "require_manifest",
    "start_time",
]

MANIFEST = ".clv-spark-cluster.json"


class ClusterError(RuntimeError):
    """The cluster could not be started, or its state is not readable."""


class CleanRefusedError(ClusterError):
    """``stop --clean`` deletes nothing: the folder has no manifest, or a recorded daemon is alive."""


@dataclass(frozen=True)
class Process:
    """A daemon that ``start`` launched: its PID and the start time that identifies it (a reused PID is not it)."""

    role: str
    pid: int
    started: int


@dataclass(frozen=True)
class Manifest:
    folder_created: bool
    paths: tuple[str, ...]
    """Names in the folder (never a path below it, never the manifest itself)."""
    processes: tuple[Process, ...] = ()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has ended
        return None
    return int(fields[19])


def alive(process: Process) -> bool:
    return start_time(process.pid) == process.started


def _is_name(name: str) -> bool:
    """Whether ``name`` is a plain entry of the folder (no separator, not ``.``/``..``, not the manifest)."""
    separators = {os.sep, os.altsep or os.sep, "\0"}
    return name not in {"", ".", "..", MANIFEST} and not any(s in name for s in separators)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest; None if it has none."""
    path = folder / MANIFEST
    if not _exists(path):
        return None
    try:
        raw = json.loads(path.read_text())
        processes = tuple(Process(**p) for p in raw["processes"])
        manifest = Manifest(bool(raw["folder_created"]), tuple(str(p) for p in raw["paths"]), processes)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"{path}: not a spark_cluster.py manifest ({exc})") from None
    bad = [name for name in manifest.paths if not _is_name(name)]
    if bad:
        raise ClusterError(f"{path}: {bad[0]!r} is not a name in {folder}")
    return manifest


def _write(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2))


def _listing(processes: Iterable[Process]) -> str:
    return ", ".join(f"{p.role} PID {p.pid}" for p in processes)


def claim(folder: Path, names: Sequence[str], folder_created: bool) -> Manifest:
    """Record that ``start`` is about to create ``names`` in ``folder`` (added to what an earlier ``start`` there
    recorded). Refuses if a recorded daemon is alive, or if one of ``names`` is in the folder but not recorded."""
    old = read_manifest(folder)
    running = [p for p in old.processes if alive(p)] if old else []
    if running:
        raise ClusterError(f"a cluster started in {folder} is running ({_listing(running)}): stop it first")
    recorded = set(old.paths) if old else set()
    foreign = [name for name in names if name not in recorded and _exists(folder / name)]
    if foreign:
        raise ClusterError(
            f"{folder / foreign[0]} was not created by spark_cluster.py start (not in {folder / MANIFEST}): "
            "move it, or use another --folder"
        )
    manifest = Manifest(old.folder_created if old else folder_created, tuple(sorted(recorded | set(names))))
    _write(folder, manifest)
    return manifest


def record(folder: Path, process: Process) -> None:
    """Add a daemon that ``start`` launched to the folder's manifest."""
    manifest = require_manifest(folder)
    _write(folder, replace(manifest, processes=(*manifest.processes, process)))


def require_manifest(folder: Path) -> Manifest:
    """The folder's manifest; :class:`CleanRefusedError` if it has none."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise CleanRefusedError(
            f"{folder} has no {MANIFEST}, so spark_cluster.py start did not create anything there: "
            "--clean deletes nothing"
        )
    return manifest


def recorded_paths(folder: Path) -> list[Path]:
    """The recorded paths that are in ``folder`` now (none without a manifest)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return []
    return [folder / name for name in manifest.paths if _exists(folder / name)]


def disk_usage(paths: Sequence[Path]) -> int:
    """Bytes in the files under ``paths`` (links not followed)."""
    total = 0
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            files = [Path(root, name) for root, _, names in os.walk(path) for name in names]
        else:
            files = [path]
        for file in files:
            with contextlib.suppress(OSError):
                total += file.lstat().st_size
    return total


def clean(folder: Path) -> int:
    """Delete what ``start`` recorded in ``folder``'s manifest (the state file, logs, work folders with each
    executor's unpacked ``--archives``), then the manifest, then ``folder`` if ``start`` created it and it is
    empty; returns the bytes freed. Refuses (:class:`CleanRefusedError`) without a manifest, and while a
    recorded daemon is alive."""
    manifest = require_manifest(folder)
    running = [p for p in manifest.processes if alive(p)]
    if running:
        raise CleanRefusedError(
            f"processes that spark_cluster.py start started in {folder} are running ({_listing(running)}): "
            "--clean deletes nothing"
        )
    paths = [folder / name for name in manifest.paths if _exists(folder / name)]
    freed = disk_usage(paths)
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()  # a file, or a link (not what it points to)
    (folder / MANIFEST).unlink()
    if manifest.folder_created:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty
    return freed
