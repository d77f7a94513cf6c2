"""The house rules of the code, checked: small single-purpose modules, one MLflow module, layers kept apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "models")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MLFLOW_MODULES = {
    "pipeline/recorder/batch.py",
    "pipeline/recorder/listing.py",
    "pipeline/recorder/model_log.py",
    "pipeline/recorder/store.py",
    "models/pyfunc.py",
    "models/serving.py",
    "models/subscription_model.py",
    "models/subscription_serving.py",
    "models/opportunity_model.py",
    "models/opportunity_serving.py",
}
"""Only the recorder's store (and its model log) writes to MLflow; the model's pyfunc flavour and its serving are
MLflow's interface."""


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def test_functions_are_short() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_only_the_store_imports_mlflow() -> None:
    found = {
        str(p.relative_to(ROOT))
        for p in _modules()
        if any(name == "mlflow" or name.startswith("mlflow.") for name in _imports(p))
    }
    assert found <= MLFLOW_MODULES, sorted(found - MLFLOW_MODULES)


def test_models_never_import_the_pipeline() -> None:
    found = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "models").rglob("*.py")
        if any(name == "pipeline" or name.startswith("pipeline.") for name in _imports(p))
    ]
    assert not found


def test_no_grab_bag_modules() -> None:
    names = {p.stem for p in _modules()}
    assert not names & {"utils", "helpers", "misc", "common"}


def _imported(modules: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has imported after importing ``modules``."""
    code = f"import sys; import {modules}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return [name for name in done.stdout.strip().split(",") if name]


def test_scoring_and_serving_never_import_the_training_stack() -> None:
    """scikit-learn, skops and matplotlib are imported where used (validation, the challenger, figures):
    `clv score`, `clv promote` and a BTYD model's serving code never pay for them (about 1 s a process), and
    `clv train` imports scikit-learn only when it validates and skops only for a challenger."""
    scoring = "pipeline.cli, pipeline.commands.score, pipeline.commands.registry, models.pyfunc, models.serving"
    assert _imported(scoring, ("sklearn", "skops", "matplotlib")) == []
    assert _imported("pipeline.commands.train, models.challenger, models.blend", ("sklearn", "skops")) == []
