"""The whole job at scale: ``clv train`` on the generated feed (:mod:`benchmarks.feed`), one fresh process per size.

For each size it writes the feed (once, cached in ``--data-dir``), then runs ``python -m pipeline.cli train``
in a new process with its own MLflow store (sqlite in a temporary folder) and ``--output``, with
``validate.criteria: []`` so the whole path (prepare, both fits, validation, scoring, business views,
MLflow logging, ``--output``) runs. It reports:

- wall seconds of the process (start-up and imports included);
- CPU seconds (user + system of the process and its children, from ``wait4``) and CPU use = CPU / wall;
- peak RSS: ``ru_maxrss`` of the process, and the sampled peak of the process tree (psutil, every 0.1 s);
- the job's own per-stage wall seconds (``stage_seconds`` in the ``--summary`` JSON);
- at each stage's end, the process's RSS and its peak so far (which stage sets the peak);
- the prepare-floor ratio: the prepare stage over the bare two-aggregation floor (DuckDB reads the feed and
  computes per customer-day then per customer aggregates, Arrow out), the median of three fresh processes; the
  job's prepare is one run, so the prepare stage is also timed alone (the job's config, engine and
  ``engine.prepare``) in three fresh processes, each after a floor run, and the two medians compared;
- the machine's load average before and after, because the machine is shared.

    python -m benchmarks.train_bench --sizes 1000000 10000000 50000000 --json results.json [--order time]

The feed's rows are ordered by customer; ``--order time`` runs on the same rows ordered by timestamp
(``feed-<rows>-time.parquet``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = ["run_train"]

CONFIG = """\
data:
  source: parquet
  path: {path}
prepare:
  period: day
  time_unit: week
  calibration_end: 2022-12-31
  observation_end: 2023-06-30
validate:
  criteria: []
tracking:
  experiment: train-bench
  model_name: train-bench
{extra}"""

FLOOR_SQL = """
SELECT customer_id, count(*) AS days, min(day) AS first, max(day) AS last, sum(amount) AS amount
FROM (SELECT customer_id, CAST(timestamp AS DATE) AS day, sum(amount) AS amount
      FROM read_parquet('{path}') GROUP BY customer_id, day)
GROUP BY customer_id
"""


def _tree_peak_mb(pid: int, stop: list[bool], out: list[float]) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop[0]:
        total = 0
        try:
            for process in [root, *root.children(recursive=True)]:
                total += process.memory_info().rss
        except psutil.Error:
            pass
        out[0] = max(out[0], total / 2**20)
        time.sleep(0.1)


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, float, float, float, str]:
    """Run ``command``; (returncode, wall s, CPU s, ru_maxrss MB, sampled tree peak MB, stderr tail)."""
    import threading

    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        stop, peak = [False], [0.0]
        sampler = threading.Thread(target=_tree_peak_mb, args=(process.pid, stop, peak), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        stop[0] = True
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = "\n".join(err.read().strip().splitlines()[-3:])
    return process.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, peak[0], tail


def _train_child(argv: list[str], cpu_file: Path) -> NoReturn:
    """``clv train`` in this process, as the ``clv`` command runs it (:func:`pipeline.cli.run`: the cycle collector
    run less often, the process ended without the interpreter's teardown, where the checkout has them), with each
    stage's CPU seconds (process-wide, all threads) written to ``cpu_file``: the job times its stages in wall
    seconds, which a loaded machine stretches."""
    started_cpu = time.process_time()
    import contextlib
    from collections.abc import Iterator

    ending: Callable[[int], NoReturn] = sys.exit
    with contextlib.suppress(ImportError):  # a checkout from before they were made ends as Python does
        from pipeline.interpreter import exit_now, fewer_collections

        fewer_collections()
        ending = exit_now
    from pipeline import cli, workflow

    timed = workflow._timed
    cpu: dict[str, float] = {"imports": time.process_time() - started_cpu}
    memory: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def timed_cpu(timings: dict[str, float], stage: str) -> Iterator[None]:
        start = time.process_time()
        try:
            with timed(timings, stage):
                yield
        finally:
            cpu[stage] = time.process_time() - start
            memory[stage] = _memory_mb()

    workflow._timed = timed_cpu
    try:
        code = cli.main(argv)
    finally:
        cpu["total"] = time.process_time()
        memory["end"] = _memory_mb()
        cpu_file.write_text(json.dumps({"cpu": cpu, "memory": memory}))
    ending(code)


def _memory_mb() -> list[float]:
    """[RSS now, peak RSS so far] of this process, in MB: at the end of a stage, which stage set the peak."""
    import psutil

    from benchmarks.process import peak_mb

    now = psutil.Process().memory_info().rss / 2**20
    return [round(now), round(peak_mb())]


def _floor_child(path: str) -> None:
    import duckdb

    start, cpu = time.perf_counter(), time.process_time()
    con = duckdb.connect()
    con.sql(FLOOR_SQL.format(path=path)).to_arrow_table()
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}))


FLOOR_RUNS = 3
"""The floor and the prepare stage alone are timed this many times each, in fresh processes taking turns, and
their medians taken: on this shared machine one run of the floor at 5M rows took from 0.78 to 1.35 s, and a
ratio of one run of each moved with them."""


def _prepare_child(path: str, extra_config: str) -> None:
    """The prepare stage alone, as ``clv train`` runs it: the benchmark's config resolved, its engine opened
    on the feed, ``engine.prepare`` timed (the cycle collector run less often, as :func:`pipeline.cli.run` does,
    and the C allocator's heaps capped and freed memory kept, as :func:`pipeline.cli.main` does)."""
    import contextlib

    with contextlib.suppress(ImportError):  # a checkout from before it was made runs with Python's defaults
        from pipeline.interpreter import fewer_collections

        fewer_collections()
    with contextlib.suppress(ImportError):
        from pipeline.allocator import keep_freed_memory, limit_heaps

        limit_heaps()
        keep_freed_memory()
    from pipeline.config import load_config
    from pipeline.engines import open_engine

    with tempfile.TemporaryDirectory(prefix="train-bench-prepare-") as tmp:
        os.chdir(tmp)  # as the job runs: DuckDB's default spill folder is relative to it
        file = Path(tmp) / "config.yaml"
        file.write_text(CONFIG.format(path=path, extra=extra_config))
        config = load_config(file).resolved()
        engine = open_engine(config.engine)
        data = engine.open(config.data)
        start, cpu = time.perf_counter(), time.process_time()
        engine.prepare(data, config.prepare)
        print(json.dumps({"seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}))


def _child(argv: list[str], code: Path | None = None) -> dict[str, float]:
    """The last JSON line of this script run as a child with ``argv`` (with ``code``'s ``pipeline``)."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PYTHONPATH"] = str(code or Path(__file__).resolve().parents[1])
    command = [sys.executable, str(Path(__file__).resolve()), *argv]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _medians(runs: list[dict[str, float]]) -> dict[str, float | list[float]]:
    return {
        "seconds": statistics.median(run["seconds"] for run in runs),
        "cpu_s": statistics.median(run["cpu_s"] for run in runs),
        "runs": [round(run["seconds"], 2) for run in runs],
    }


def prepare_floor(
    path: Path, extra_config: str = "", code: Path | None = None
) -> dict[str, dict[str, float | list[float]]]:
    """Wall and CPU seconds of the bare two-aggregation floor on ``path`` (``floor``) and of the prepare stage
    alone (``prepare``, with ``extra_config`` and ``code`` as the job has them): the medians of
    :data:`FLOOR_RUNS` fresh processes each, a floor run then a prepare run, and each run's wall seconds."""
    floors, prepares = [], []
    for _ in range(FLOOR_RUNS):
        floors.append(_child(["--floor", str(path)]))
        prepares.append(_child(["--prepare-alone", str(path.resolve()), f"--extra-config={extra_config}"], code))
    return {"floor": _medians(floors), "prepare": _medians(prepares)}


def run_train(feed: Path, extra_config: str = "", code: Path | None = None) -> dict[str, object]:
    """One ``clv train`` on ``feed`` in a fresh process; its measurements and stage seconds.

    ``code``: the checkout whose ``pipeline`` runs (default: this one), to time a before and an after in one session.
    """
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        folder = Path(tmp)
        (folder / "config.yaml").write_text(CONFIG.format(path=feed, extra=extra_config))
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        env["PYTHONPATH"] = str(code or Path(__file__).resolve().parents[1])  # whose job runs
        command = [
            sys.executable,
            str(Path(__file__).resolve()),  # as a script: the job's ``benchmarks`` may not have this module
            "--train",
            "cpu.json",
            "train",
            "--config",
            "config.yaml",
        ]
        command += ["--summary", "summary.json", "--output", "out"]
        load_before = os.getloadavg()[0]
        exit_code, wall, cpu, rss, tree, tail = _run(command, folder, env)
        load_after = os.getloadavg()[0]
        if exit_code not in (0, 1) or not (folder / "summary.json").exists():
            raise RuntimeError(f"clv train exited {exit_code}: {tail}")
        summary = json.loads((folder / "summary.json").read_text())
        probe = json.loads((folder / "cpu.json").read_text())
        stage_cpu, stage_memory = probe["cpu"], probe["memory"]
        stages = summary.get("stage_seconds", {})
        output = sum(p.stat().st_size for p in (folder / "out").rglob("*") if p.is_file())
        # the run's artifacts: everything the job wrote besides --output, the summary and the config
        stored = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) - output
        stored -= sum((folder / name).stat().st_size for name in ("summary.json", "config.yaml", "cpu.json"))
    return {
        "exit": exit_code,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cores_used": round(cpu / wall, 2),
        "peak_rss_mb": round(rss),
        "tree_peak_mb": round(tree),
        "stages": {k: round(v, 2) for k, v in stages.items()},
        "outside_stages_s": round(wall - sum(stages.values()), 2),
        "stages_cpu": {k: round(v, 2) for k, v in stage_cpu.items()},
        "stages_rss_mb": stage_memory,  # at each stage's end: [RSS now, peak so far]; "end": after the job
        "run_artifacts_mb": round(stored / 2**20, 1),
        "output_mb": round(output / 2**20, 1),
        "load": [round(load_before, 1), round(load_after, 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "clv-train-bench")
    parser.add_argument("--json", type=Path, help="append each size's result to this JSON-lines file")
    parser.add_argument("--label", default="", help="a tag written with each result (e.g. before / after)")
    parser.add_argument("--code", type=Path, help="run the job of this checkout (default: this one)")
    parser.add_argument("--extra-config", default="", help="YAML appended to the benchmark config")
    parser.add_argument("--order", default="customer", help="the feed's rows by customer (default) or by time")
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    parser.add_argument("--prepare-alone", help=argparse.SUPPRESS)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.train:
        _train_child(rest, args.train)
    if args.floor:
        _floor_child(args.floor)
        return
    if args.prepare_alone:
        _prepare_child(args.prepare_alone, args.extra_config)
        return
    from benchmarks.feed import ORDERS, generate  # not imported by the job's and the floor's processes

    if args.order not in ORDERS:
        parser.error(f"--order must be one of {', '.join(ORDERS)}")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for rows in args.sizes:
        feed = args.data_dir / (f"feed-{rows}.parquet" if args.order == "customer" else f"feed-{rows}-time.parquet")
        if not feed.exists():
            generate(feed, rows, order=args.order)
        result = run_train(feed.resolve(), args.extra_config, args.code)
        timed = prepare_floor(feed.resolve(), args.extra_config, args.code)
        floor, alone = timed["floor"], timed["prepare"]
        stages, stages_cpu = result["stages"], result["stages_cpu"]
        assert isinstance(stages, dict)
        assert isinstance(stages_cpu, dict)
        result = {"label": args.label, "rows": rows, "order": args.order, **result}
        seconds, cpu, alone_seconds = floor["seconds"], floor["cpu_s"], alone["seconds"]
        assert isinstance(seconds, float)
        assert isinstance(cpu, float)
        assert isinstance(alone_seconds, float)
        result["prepare_floor_s"] = round(seconds, 2)
        result["prepare_floor_cpu_s"] = round(cpu, 2)
        result["prepare_floor_runs_s"] = floor["runs"]
        result["prepare_over_floor"] = round(stages["prepare"] / seconds, 2)  # the job's one run
        result["prepare_over_floor_cpu"] = round(stages_cpu["prepare"] / cpu, 2)
        result["prepare_alone_s"] = round(alone_seconds, 2)
        result["prepare_alone_runs_s"] = alone["runs"]
        result["prepare_alone_over_floor"] = round(alone_seconds / seconds, 2)  # median over median
        line = json.dumps(result)
        print(line, flush=True)
        if args.json:
            with args.json.open("a") as out:
                out.write(line + "\n")


if __name__ == "__main__":
    main()
