"""Spark local against DuckDB: the prepare stage on the same synthetic feed, with time, peak memory and
a check that the numbers are identical.

The feed is ``prepare_bench.generate``'s (about 10 transactions per customer over 18 months, a
native TIMESTAMP column). Each case runs in a fresh process (``process.run_child``):

- ``duckdb``: ``open_transactions`` + ``prepare`` (summaries as pandas frames);
- ``spark-N``: a local[2] SparkSession with ``spark.sql.shuffle.partitions = N``, then
  ``spark_session.open_transactions`` + ``spark_prepare.prepare`` + ``collect`` (the same pandas
  frames), and, timed apart, the collection of the unique (frequency, recency, T) rows the fit needs.

Time excludes the JVM start (reported apart). Peak memory is the resident memory of the whole process
tree (Python, the driver JVM and its Python workers), sampled every 0.1 s. "equal": the ledger, the
calibration/holdout and full-history summaries and the weekly table are identical to DuckDB's, bit for bit.

    python -m benchmarks.spark_bench --rows 10000000 --partitions 2 8 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.prepare_bench import CALIBRATION_END, OBSERVATION_END, generate
from benchmarks.process import TreePeak, peak_mb, run_child


def _config() -> object:
    from pipeline.config import PrepareConfig

    return PrepareConfig(calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END)


def _write(prepared: object, out: Path) -> None:
    from pipeline.engines.prepared import PreparedData

    assert isinstance(prepared, PreparedData)
    out.mkdir(parents=True, exist_ok=True)
    prepared.calibration.to_parquet(out / "calibration.parquet")
    prepared.full.to_parquet(out / "full.parquet")
    prepared.weekly.to_parquet(out / "weekly.parquet")
    ledger = prepared.ledger
    (out / "ledger.json").write_text(json.dumps([ledger.rows_in, ledger.rows_used, ledger.quarantined]))


def run_duckdb(feed: Path, out: Path) -> dict[str, float]:
    from pipeline.config import Config, DataConfig
    from pipeline.engines.duckdb_prepare import prepare
    from pipeline.engines.duckdb_source import connect, open_transactions

    with TreePeak() as tree:
        start = time.perf_counter()
        data = open_transactions(connect(Config().engine), DataConfig(source="parquet", path=feed))
        prepared = prepare(data.relation, _config(), data.timestamp_format)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
    _write(prepared, out)
    return {"seconds": seconds, "peak_mb": max(tree.mb, peak_mb()), "customers": float(len(prepared.full))}


def run_spark(feed: Path, out: Path, partitions: int) -> dict[str, float]:
    from pipeline.config import DataConfig, EngineConfig
    from pipeline.engines import spark_prepare, spark_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = {"spark.ui.enabled": "false", "spark.driver.memory": "4g", "spark.driver.host": "127.0.0.1"}
    with TreePeak() as tree:
        start = time.perf_counter()
        spark = spark_session.session(
            EngineConfig(name="spark", master="local[2]", shuffle_partitions=partitions, conf=conf)
        )
        started = time.perf_counter()
        data = spark_session.open_transactions(spark, DataConfig(source="parquet", path=feed))
        distributed = spark_prepare.prepare(data.frame, _config(), data.timestamp_format)  # type: ignore[arg-type]
        prepared = spark_prepare.collect(distributed)
        seconds = time.perf_counter() - started
        histories_start = time.perf_counter()
        histories = spark_prepare.histories(distributed.calibration)
        histories_seconds = time.perf_counter() - histories_start
    _write(prepared, out)
    spark.stop()
    return {
        "seconds": seconds,
        "jvm_start_s": started - start,
        "histories_s": histories_seconds,
        "unique_histories": float(len(histories)),
        "peak_mb": tree.mb,
        "customers": float(len(prepared.full)),
    }


def outputs_equal(a: Path, b: Path) -> bool:
    import pandas as pd

    if (a / "ledger.json").read_text() != (b / "ledger.json").read_text():
        return False
    for name in ("calibration", "full", "weekly"):
        try:
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet"), check_exact=True
            )
        except AssertionError:
            return False
    return True


def benchmark(rows: int, partitions: list[int], folder: Path) -> list[dict[str, object]]:
    feed = folder / f"feed_{rows}.parquet"
    generate(feed, rows)
    results: list[dict[str, object]] = []
    duck = run_child("benchmarks.spark_bench", "duckdb", str(feed), str(folder / "duckdb"))
    results.append({"engine": "DuckDB", "rows": rows, **duck, "equal": True})
    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    for n in partitions:
        out = folder / f"spark_{n}"
        ours = run_child("benchmarks.spark_bench", f"spark-{n}", str(feed), str(out))
        results.append(
            {
                "engine": f"Spark local[2], {n} partitions",
                "rows": rows,
                **ours,
                "equal": outputs_equal(folder / "duckdb", out),
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    feed.unlink()
    return results


def markdown(results: list[dict[str, object]]) -> str:
    lines = [
        "| engine | transactions | customers | prepare | JVM start | peak RSS (process tree) "
        "| unique histories (collect) | equal to DuckDB |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        jvm = f"{r['jvm_start_s']:.1f} s" if "jvm_start_s" in r else ""
        hist = f"{int(r['unique_histories']):,} ({r['histories_s']:.1f} s)" if "histories_s" in r else ""  # type: ignore[call-overload]
        lines.append(
            f"| {r['engine']} | {r['rows']:,} | {int(r['customers']):,} | {r['seconds']:.1f} s | {jvm} | "  # type: ignore[call-overload]
            f"{r['peak_mb']:,.0f} MB | {hist} | {'yes' if r['equal'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--folder", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "FEED", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, feed, out = args.child
        if engine == "duckdb":
            result = run_duckdb(Path(feed), Path(out))
        else:
            result = run_spark(Path(feed), Path(out), int(engine.removeprefix("spark-")))
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        print(markdown(benchmark(args.rows, args.partitions, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
