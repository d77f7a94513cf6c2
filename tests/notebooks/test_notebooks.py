"""The notebooks in notebooks/: stored without outputs, and they run top to bottom on the bundled data.

Execution uses nbclient with the ``python3`` kernelspec, which ipykernel installs into the venv
(``.venv/share/jupyter/kernels/python3``, started with the interpreter running the tests). Each
notebook runs in a temporary working directory and creates its own MLflow store in a temporary
folder, so nothing lands in the repository.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = (
    "01_explore_transactions.ipynb",
    "02_fit_and_validate.ipynb",
    "03_score_from_registry.ipynb",
    "04_act_on_scores.ipynb",
    "05_subscription_business.ipynb",
)
CELL_TIMEOUT = 300  # seconds per cell
KERNEL = "python3"
# What an MLflow run writes by default into its working directory: none of it may appear in the repo.
REPO_ARTIFACTS = ("mlflow.db", "mlartifacts", "mlruns", "output")


def _read(name: str) -> nbformat.NotebookNode:
    notebook: nbformat.NotebookNode = nbformat.read(  # type: ignore[no-untyped-call]  # nbformat is unannotated
        NOTEBOOK_DIR / name, as_version=nbformat.NO_CONVERT
    )
    return notebook


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _snapshot(folder: Path, names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: (folder / name).stat().st_mtime if (folder / name).exists() else None for name in names}


def _execute(notebook: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(cwd)}},
    )
    return client.execute()


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working directory and an environment without any outside MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend (rendered with Agg)
    return tmp_path


def test_every_notebook_is_listed() -> None:
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_without_outputs(name: str) -> None:
    notebook = _read(name)
    nbformat.validate(notebook)
    for index, cell in enumerate(_code_cells(notebook)):
        assert cell.outputs == [], f"{name}: code cell {index} has stored outputs"
        assert cell.execution_count is None, f"{name}: code cell {index} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_set_up(name: str) -> None:
    notebook = _read(name)
    assert notebook.metadata.kernelspec.name == KERNEL
    assert notebook.cells[0].cell_type == "markdown", f"{name}: should open with a markdown cell saying what it is"
    first_code = _code_cells(notebook)[0].source
    assert 'os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"' in first_code
    sources = "\n".join(cell.source for cell in _code_cells(notebook))
    if "mlflow" in sources:
        # Any tracking store is a fresh one in a temporary folder, set before anything touches MLflow.
        assert "tempfile.mkdtemp(" in first_code
        assert 'os.environ["MLFLOW_TRACKING_URI"]' in first_code


@pytest.mark.slow
def test_kernel_is_the_venv_interpreter(kernel_env: Path) -> None:
    """The ``python3`` kernelspec starts the interpreter (and so the venv) that runs the tests."""
    cell = nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")  # type: ignore[no-untyped-call]  # unannotated
    notebook = nbformat.v4.new_notebook(cells=[cell])  # type: ignore[no-untyped-call]
    executed = _execute(notebook, kernel_env)
    printed = executed.cells[0].outputs[0].text.strip()
    assert Path(printed).resolve() == Path(sys.prefix).resolve()


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name: str, kernel_env: Path) -> None:
    before = _snapshot(REPO, REPO_ARTIFACTS)
    notebooks_before = sorted(os.listdir(NOTEBOOK_DIR))
    notebook = _read(name)

    started = time.perf_counter()
    executed = _execute(notebook, kernel_env)  # raises CellExecutionError on the first failing cell
    print(f"{name}: executed in {time.perf_counter() - started:.1f} s")

    outputs = [output for cell in _code_cells(executed) for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]
    assert images, f"{name}: no figure was rendered"
    assert _snapshot(REPO, REPO_ARTIFACTS) == before, "a notebook wrote MLflow files into the repository"
    assert sorted(os.listdir(NOTEBOOK_DIR)) == notebooks_before
    assert not {"mlflow.db", "mlartifacts", "mlruns"} & set(os.listdir(kernel_env)), "MLflow store in the cwd"
