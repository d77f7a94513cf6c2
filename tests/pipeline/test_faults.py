from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline import faults, stop
from pipeline.errors import InputError, TrackingUnavailableError
from pipeline.outputs import TableWriter, write_tables, write_text
from pipeline.recorder import store


@pytest.fixture
def plan() -> Iterator[None]:
    yield
    faults.install(None)


def test_inert_without_a_plan(tmp_path: Path, plan: None) -> None:
    faults.install(None)
    for _ in range(3):
        faults.write_step("anything")
    assert faults._writes == 0  # not even counted


def test_counts_every_write_and_fails_the_kth(tmp_path: Path, plan: None) -> None:
    trace = tmp_path / "trace.txt"
    faults.install(faults.FaultPlan(3, "raise", trace))
    faults.write_step("one")
    faults.write_step("two")
    with pytest.raises(faults.InjectedFaultError, match=r"injected fault at write 3 \(three\)"):
        faults.write_step("three")
    faults.write_step("four")  # only the kth fails
    assert trace.read_text() == "1\tone\n2\ttwo\n3\tthree\n4\tfour\n"


def test_plan_from_the_environment() -> None:
    code = "from pipeline import faults; p = faults._plan; print(p.at, p.action, p.trace) if p else print(None)"
    env = os.environ | {faults.ENV_AT: "7:sigkill", faults.ENV_TRACE: "t.txt"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["7", "sigkill", "t.txt"]
    env = os.environ | {faults.ENV_AT: "log the model"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["log", "the", "model", "raise", "None"]
    clean = {k: v for k, v in os.environ.items() if k not in (faults.ENV_AT, faults.ENV_TRACE)}
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["None"]


@pytest.mark.parametrize(("at", "action"), [(0, "raise"), (1, "sigint"), (-2, "sigkill")])
def test_bad_plans_are_refused(at: int, action: str) -> None:
    with pytest.raises(ValueError, match=faults.ENV_AT):
        faults.FaultPlan(at, action)


def test_sigkill_and_sigterm_land_at_the_write(tmp_path: Path) -> None:
    code = (
        "import signal, sys; from pipeline import faults; "
        "signal.signal(signal.SIGTERM, lambda *a: (print('term', flush=True), sys.exit(5))); "
        "[(faults.write_step(str(i)), print(i, flush=True)) for i in range(1, 5)]"
    )
    for action, returncode, printed in (("sigkill", -signal.SIGKILL, ["1"]), ("sigterm", 5, ["1", "term"])):
        env = os.environ | {faults.ENV_AT: f"2:{action}"}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert (done.returncode, done.stdout.split()) == (returncode, printed)


def test_a_failed_store_write_is_tracking_unavailable(tracking_store: str, tmp_path: Path, plan: None) -> None:
    trace = tmp_path / "trace.txt"
    faults.install(faults.FaultPlan(3, "raise", trace))
    experiment_id = store.connect("faults")  # write 1: the experiment is created
    with (
        pytest.raises(TrackingUnavailableError, match=r"cannot set tags: injected fault at write 3 \(set tags\)"),
        store.run(experiment_id),  # write 2
    ):
        store.set_tags({"a": "b"})
    steps = ["1\tcreate the experiment", "2\tstart a run", "3\tset tags", "4\tend the run"]
    assert trace.read_text().splitlines() == steps
    store.connect("faults")  # reads are not writes
    assert len(trace.read_text().splitlines()) == 4


def test_sigterm_during_a_store_write_waits_for_it(
    tracking_store: str, tmp_path: Path, plan: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stop, "_state", {"requested": False, "deferred": 0})
    previous = signal.signal(signal.SIGTERM, stop.on_sigterm)
    try:
        experiment_id = store.connect("faults")
        faults.install(faults.FaultPlan(2, "sigterm", None))
        with pytest.raises(stop.Terminated), store.run(experiment_id) as run_id:  # noqa: PT012
            store.log_metrics({"m": 1.0})  # write 2: SIGTERM lands, the metric is still logged
            pytest.fail("the job must stop right after the write")
    finally:
        signal.signal(signal.SIGTERM, previous)
    import mlflow

    run = mlflow.get_run(run_id)
    assert (run.info.status, run.data.metrics) == ("FAILED", {"m": 1.0})


def test_a_failed_table_write_keeps_the_previous_file(tmp_path: Path, plan: None) -> None:
    write_tables(tmp_path, {"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"x": [2]})})
    faults.install(faults.FaultPlan(2, "raise", None))
    with pytest.raises(InputError, match=r"b.parquet: cannot write: injected fault at write 2"):
        write_tables(tmp_path, {"a": pd.DataFrame({"x": [10]}), "b": pd.DataFrame({"x": [20]})})
    assert pd.read_parquet(tmp_path / "a.parquet")["x"].tolist() == [10]
    assert pd.read_parquet(tmp_path / "b.parquet")["x"].tolist() == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_chunked_write_cut_short_publishes_nothing(tmp_path: Path, plan: None, suffix: str) -> None:
    path = tmp_path / f"scores{suffix}"
    with TableWriter(path) as writer:
        writer.write(pd.DataFrame({"x": [1, 2]}))
    before = path.read_bytes()
    faults.install(faults.FaultPlan(3, "raise", None))
    chunks = [pd.DataFrame({"x": [chunk]}) for chunk in range(5)]
    with pytest.raises(InputError, match="injected fault at write 3"), TableWriter(path) as writer:
        list(map(writer.write, chunks))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_stopped_chunked_write_publishes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "scores.parquet"

    def write_then_stop(writer: TableWriter) -> None:
        writer.write(pd.DataFrame({"x": [1]}))
        raise stop.Terminated("stop")

    with pytest.raises(stop.Terminated), TableWriter(path) as writer:
        write_then_stop(writer)
    assert list(tmp_path.iterdir()) == []


def test_text_is_replaced_whole(tmp_path: Path, plan: None) -> None:
    path = write_text(tmp_path / "report.html", "old")
    faults.install(faults.FaultPlan(1, "raise", None))
    with pytest.raises(InputError):
        write_text(path, "new")
    assert path.read_text() == "old"
    faults.install(None)
    assert write_text(path, "new").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_write_named_in_the_plan_fails_once(plan: None) -> None:
    faults.install(faults.FaultPlan("move alias champion", "raise", None))
    faults.write_step("register the model")
    with pytest.raises(faults.InjectedFaultError, match=r"at write 2 \(move alias champion\)"):
        faults.write_step("move alias champion")
    faults.write_step("move alias champion")


def test_a_stopped_table_write_keeps_the_tables_started_before_it(
    tmp_path: Path, plan: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.outputs.workers", lambda: 3)  # the tables are written side by side
    write_tables(tmp_path, {name: pd.DataFrame({"x": [1]}) for name in "abc"})
    faults.install(faults.FaultPlan(3, "raise", None))
    with pytest.raises(InputError, match=r"c.parquet: cannot write: injected fault at write 3"):
        write_tables(tmp_path, {name: pd.DataFrame({"x": [2] * 100_000}) for name in "abc"})
    assert [len(pd.read_parquet(tmp_path / f"{name}.parquet")) for name in "abc"] == [100_000, 100_000, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet", "c.parquet"]
