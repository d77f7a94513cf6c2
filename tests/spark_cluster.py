"""Helpers for the cluster tests: the recipe read from docs/spark-cluster.md, the packed environment
(built once per content of the package and kept in a cache folder), and the job folders."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO, clean_env

__all__ = [
    "DOCS",
    "cluster_manifest",
    "cluster_script",
    "environment",
    "job_folder",
    "recipe",
    "recipe_env",
    "recipe_file",
    "run_recipe",
]

DOCS = REPO / "docs" / "spark-cluster.md"
SOURCES = ("pyproject.toml", "constraints.txt", "README.md", "pipeline", "models")


def _block(kind: str, name: str) -> str:
    """The fenced block between ``<!-- KIND: NAME -->`` and ``<!-- /recipe -->`` on the docs page."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {kind}: {re.escape(name)} -->\n```\w*\n(.*?)```\n<!-- /recipe -->", text, re.DOTALL)
    assert found is not None, f"{DOCS}: no '{kind}: {name}' block"
    return found.group(1)


def recipe(name: str) -> str:
    """The shell commands of the recipe block ``name``, as the page shows them."""
    return _block("recipe", name)


def recipe_file(name: str) -> str:
    """The content of the file ``name`` that the page shows (cluster.yaml, clv_udf.py)."""
    return _block("recipe-file", name)


def _script(name: str, path: Path) -> ModuleType:
    """A module of scripts/, imported once as ``name`` (scripts/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def cluster_manifest() -> ModuleType:
    """scripts/spark_cluster_manifest.py: what ``start`` records and ``stop --clean`` deletes."""
    # Under its own name: scripts/spark_cluster.py imports it as a sibling module.
    return _script("spark_cluster_manifest", REPO / "scripts" / "spark_cluster_manifest.py")


def cluster_script() -> ModuleType:
    """scripts/spark_cluster.py, imported (with the manifest module it imports)."""
    cluster_manifest()
    return _script("spark_cluster_script", REPO / "scripts" / "spark_cluster.py")


def _source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        else:
            files.append(path)
    return files


def _digest() -> str:
    digest = hashlib.sha256()
    digest.update(recipe("environment").encode())
    for path in _source_files():
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def recipe_env(**extra: str) -> dict[str, str]:
    """The environment a user's shell would have: no venv, no PYSPARK_* settings from the test process."""
    base = clean_env()
    for key in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV", "PYTHONPATH", "SPARK_HOME"):
        base.pop(key, None)
    return base | {"MLFLOW_DISABLE_TELEMETRY": "true"} | extra


def run_recipe(name: str, cwd: Path, timeout: float, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run the recipe block ``name`` with bash (stop at the first failing command) in ``cwd``."""
    return subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", recipe(name)],
        cwd=cwd,
        env=recipe_env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def environment() -> Path:
    """A folder with ``clv-env/`` and ``clv-env.tar.gz`` built by the page's ``environment`` block from a
    copy of this checkout; kept in ``$CLV_SPARK_ENV_CACHE`` (default ``$TMPDIR/clv-spark-env``) under a
    hash of the block and the package's files, so that a rerun with the same code reuses it."""
    cache = Path(os.environ.get("CLV_SPARK_ENV_CACHE", Path(tempfile.gettempdir()) / "clv-spark-env"))
    cache.mkdir(parents=True, exist_ok=True)
    folder = cache / _digest()
    done = folder / ".built"
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, whichever test run asks first
        if done.exists():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for path in _source_files():
            target = folder / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        built = run_recipe("environment", folder, timeout=1800)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        done.touch()
    return folder


def job_folder(folder: Path, env: Path) -> Path:
    """A folder as the page's step 3 expects it: ``clv-env/``, ``clv-env.tar.gz``, ``cluster.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clv-env").symlink_to(env / "clv-env", target_is_directory=True)
    (folder / "clv-env.tar.gz").symlink_to(env / "clv-env.tar.gz")
    (folder / "cluster.yaml").write_text(recipe_file("cluster.yaml"), encoding="utf-8")
    return folder
