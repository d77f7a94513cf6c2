"""A kill at every write of ``clv train``: for each write k (to the tracking store, the artifact store, the
registry or an output file) and for SIGKILL and SIGTERM, start from a store with a champion, stop the job
at write k (:mod:`pipeline.faults`: deterministic, no timing) and check the invariants:

- every registered version loads (as MLflow serves it) and scores finite numbers: no version without its
  artifacts;
- the champion alias is unchanged, or points to the new version, and only once the job reached the alias move;
- after SIGTERM the run is FAILED (FINISHED only when the signal landed while the run was being ended, or
  after); after SIGKILL it is RUNNING (once started, until ended) and ``clv compare`` says so;
- every output file present is complete (Parquet that reads, the report whole);
- a rerun succeeds and its version becomes the champion.

The jobs run as children forked from one process that imported the CLI once (``tests/forks.py``), in two
workers, each with its own store restored from its own snapshot before every case (slow).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.forks import Done, Forks

pytestmark = pytest.mark.slow

SAMPLE = "data: {source: cdnow_sample}\n"
TRAIN = ("train", "--config", "sample.yaml", "--output", "out")
WORKERS = 2
CLAIMED_STEPS = (
    "start a run",
    "log the config",
    "log the model",
    "register the model",
    "move alias champion",
    "end the run",
    "write scores.parquet",
    "write report.html",
)


@dataclass
class Worker:
    """A fork server and a store (with version 1 as champion) that each case starts from."""

    forks: Forks
    work: Path
    snapshot: Path

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.work / 'mlflow.db'}"

    def env(self) -> dict[str, str | None]:
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_REGISTRY_URI": None}

    def restore(self) -> None:
        shutil.rmtree(self.work)
        shutil.copytree(self.snapshot, self.work)

    def train(self, fault: tuple[int | None, str, Path | None] | None = None) -> Done:
        return self.forks.clv(*TRAIN, cwd=self.work, env=self.env(), fault=fault)

    def state(self, load: bool = True) -> dict[str, object]:
        """The registry (every version loaded and scored when ``load``) and the runs' statuses."""
        state: dict[str, object] = self.forks.call("tests.store_checks:store_state", self.uri, load, cwd=self.work)
        return state


@dataclass(frozen=True)
class Reference:
    """The writes of an undisturbed ``clv train`` from the snapshot, in order."""

    steps: list[str]

    def index(self, name: str) -> int:
        """The 1-based number of the (only) write called ``name``."""
        (found,) = [k for k, step in enumerate(self.steps, 1) if step == name]
        return found


def _worker(root: Path, number: int) -> Worker:
    (root / f"forks-{number}").mkdir()
    forks = Forks(root / f"forks-{number}")
    work = root / f"work-{number}"
    work.mkdir()
    (work / "sample.yaml").write_text(SAMPLE)
    worker = Worker(forks, work, root / f"snapshot-{number}")
    first = forks.clv("train", "--config", "sample.yaml", cwd=work, env=worker.env())
    assert first.returncode == 0, first.stderr
    shutil.copytree(work, worker.snapshot)
    return worker


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    root = tmp_path_factory.mktemp("kill-points")
    with ThreadPoolExecutor(WORKERS) as pool:
        found = list(pool.map(lambda n: _worker(root, n), range(WORKERS)))
    yield found
    for worker in found:
        worker.forks.close()


@pytest.fixture(scope="module")
def reference(workers: list[Worker]) -> Reference:
    worker = workers[0]
    trace = worker.work.parent / "reference-trace.txt"
    done = worker.train((None, "raise", trace))
    assert done.returncode == 0, done.stderr
    worker.restore()
    steps = [line.split("\t", 1)[1] for line in trace.read_text().splitlines()]
    assert steps[0] == "start a run"
    return Reference(steps)


def _outputs_complete(out: Path) -> list[str]:
    """Problems with the output folder: a file under its final name that is not whole."""
    problems = []
    for path in sorted(out.glob("*")) if out.exists() else []:
        if path.name.startswith("."):
            continue  # a temporary file left by SIGKILL: never read
        if path.suffix == ".parquet":
            try:
                pq.read_table(path)
            except Exception as exc:
                problems.append(f"{path.name} does not read: {exc}")
        elif path.suffix == ".html" and not path.read_text(encoding="utf-8").rstrip().endswith("</html>"):
            problems.append(f"{path.name} is cut short")
    return problems


def _expected_run_status(signal: str, k: int, ref: Reference) -> str | None:
    """The status of the killed job's run (None: it never started)."""
    end = ref.index("end the run")
    if signal == "sigkill":
        return None if k == 1 else "RUNNING" if k <= end else "FINISHED"
    return "FAILED" if k < end else "FINISHED"  # SIGTERM lands during write k, which completes


def _check_case(worker: Worker, ref: Reference, signal: str, k: int) -> list[str]:
    """Run one case; the broken invariants, as text (empty when all hold)."""
    worker.restore()
    trace = worker.work / "trace.txt"
    done = worker.train((k, signal, trace))
    problems = []
    expected_code = -9 if signal == "sigkill" else 143
    if done.returncode != expected_code:
        problems.append(f"exit {done.returncode}, expected {expected_code}: {done.stderr[-500:]}")
    if signal == "sigterm":
        errors = [line for line in done.stderr.splitlines() if line.startswith("clv: error:")]
        if len(errors) != 1 or "terminated by SIGTERM" not in errors[0] or "Traceback" in done.stderr:
            problems.append(f"stderr is not one error line: {done.stderr[-500:]}")
    written = [line.split("\t", 1)[1] for line in trace.read_text().splitlines()]
    ends_run = signal == "sigterm" and k < ref.index("end the run")  # the stop ends the run FAILED: one more write
    expected = ref.steps[:k] + (["end the run"] if ends_run else [])
    if written != expected:
        problems.append(f"writes differ from the reference: {written[-3:]} vs {expected[-3:]}")
    state = worker.state()
    if any(result != "ok" for result in state["scored"].values()):  # type: ignore[attr-defined]
        problems.append(f"a version does not load and score: {state['scored']}")
    registered = k > ref.index("register the model") or (signal == "sigterm" and k == ref.index("register the model"))
    if state["versions"] != ([1, 2] if registered else [1]):
        problems.append(f"versions {state['versions']}, expected {[1, 2] if registered else [1]}")
    moved = k > ref.index("move alias champion") or (signal == "sigterm" and k == ref.index("move alias champion"))
    if state["champion"] != (2 if moved else 1):
        problems.append(f"champion {state['champion']}, expected {2 if moved else 1}")
    runs = state["runs"]
    status = _expected_run_status(signal, k, ref)
    new_runs = [s for _, s in runs[1:]]  # type: ignore[index]
    if new_runs != ([status] if status else []):
        problems.append(f"new run statuses {new_runs}, expected {status}")
    if status == "RUNNING":
        compare = worker.forks.clv("compare", cwd=worker.work, env=worker.env())
        line = compare.stdout.splitlines()[1] if compare.returncode == 0 else compare.stderr
        if not line.startswith(runs[-1][0][:8]) or "RUNNING" not in line:  # type: ignore[index]
            problems.append(f"clv compare does not report the run RUNNING: {line}")
    problems += _outputs_complete(worker.work / "out")
    rerun = worker.train()
    after = worker.state(load=False)
    if rerun.returncode != 0 or after["champion"] != max(after["versions"]):  # type: ignore[call-overload]
        problems.append(f"rerun exit {rerun.returncode}, champion {after['champion']} of {after['versions']}")
    return [f"{signal} at write {k} ({ref.steps[k - 1]}): {p}" for p in problems]


@pytest.mark.parametrize("signal", ["sigkill", "sigterm"])
def test_a_stop_at_every_write_keeps_the_registry_consistent(
    workers: list[Worker], reference: Reference, signal: str
) -> None:
    steps = range(1, len(reference.steps) + 1)
    # the run's logging (batched per stage), the model, its registration, the alias and the outputs
    assert len(steps) >= 20
    assert set(CLAIMED_STEPS) <= set(reference.steps), reference.steps

    def run_share(worker_number: int) -> list[str]:
        worker = workers[worker_number]
        return [p for k in steps[worker_number::WORKERS] for p in _check_case(worker, reference, signal, k)]

    with ThreadPoolExecutor(WORKERS) as pool:
        problems = [p for share in pool.map(run_share, range(WORKERS)) for p in share]
    print(f"{signal}: {len(steps)} writes stopped at, {len(problems)} broken invariants")
    assert not problems, "\n".join(problems)
