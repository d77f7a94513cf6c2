"""The Spark edge: start (or join) a SparkSession and open the configured transactions as a DataFrame.

pyspark is an optional extra (``pip install .[spark]``) and is imported only inside these functions,
so the default install imports the pipeline without it. The DataFrame's columns are renamed from the
config's mapping to the standard names (the other columns under private aliases), as
:mod:`pipeline.engines.duckdb_source` does for DuckDB; parsing and quarantine happen in
:mod:`pipeline.engines.spark_prepare`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import DataConfig, EngineConfig
from pipeline.engines import spark_logs
from pipeline.engines.csv_encoding import utf8_files
from pipeline.engines.inputs import (
    CDNOW_FILES,
    NOT_IN_FORMAT,
    NUMBER_ROLES,
    bundled_cdnow_frame,
    check_csv_header,
    files,
    files_fingerprint,
    number_format,
    renamed_columns,
)
from pipeline.errors import ConfigError, EngineUnavailableError, InputError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True)
class SparkTransactions:
    """Raw transactions as a Spark DataFrame, where they came from and a fingerprint of the input.

    ``column_names``: frame column -> source column name, in the source's order; pass it to
    :func:`pipeline.engines.spark_prepare.prepare` (for ``prepare.duplicate_key`` and the quarantine's column names).
    """

    frame: DataFrame
    description: str
    fingerprint: str
    timestamp_format: str | None
    column_names: dict[str, str] = field(default_factory=dict)


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise ConfigError("engine.name 'spark' needs pyspark: pip install 'clv-pipeline[spark]'") from None
    return pyspark


def session(engine: EngineConfig) -> SparkSession:
    """The active SparkSession, or a new one from ``engine`` (master, app name, shuffle partitions, conf).

    Under spark-submit (``engine.master: null``) the master and resources come from spark-submit. In
    local mode the Python workers run this interpreter, so they import the same installed packages.
    Spark's Java log lines are off unless ``CLV_SPARK_LOG_LEVEL`` says otherwise (:mod:`pipeline.engines.spark_logs`).
    """
    _pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # pyspark warns on every pandas conversion that it does not fully support pandas 3; the
    # conversions used here (numbers, strings, dates) are checked by the tests.
    warnings.filterwarnings("ignore", module=r"pyspark(\.|$)")
    log_level = spark_logs.level()  # a wrong CLV_SPARK_LOG_LEVEL stops the job before Spark starts
    settings = {
        "spark.app.name": engine.app_name,
        **({"spark.master": engine.master} if engine.master is not None else {}),
        "spark.sql.shuffle.partitions": str(engine.shuffle_partitions),
        "spark.ui.showConsoleProgress": "false",
        **engine.conf,
    }
    if SparkSession.getActiveSession() is None:
        wait_for_master(engine.master if engine.master is not None else _submitted_master())
        spark_logs.start_jvm(settings, log_level)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in settings.items():  # getOrCreate may return a running session: apply SQL settings
        if key.startswith("spark.sql."):
            spark.conf.set(key, value)
    spark_logs.set_level(spark, log_level)
    return spark


MASTER_TIMEOUT = 10.0  # seconds to wait for a standalone master before giving up


def _submitted_master() -> str:
    """The master that spark-submit set (``--master``), read from the JVM's configuration (a SparkConf made
    before the gateway is up would not see it)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return str(SparkConf().get("spark.master", ""))


def wait_for_master(master: str, timeout: float = MASTER_TIMEOUT) -> None:
    """Wait up to ``timeout`` seconds until a standalone master (``spark://host:port[,host:port]``) accepts a
    connection; raise :class:`EngineUnavailableError` (exit 3) if none does. Other masters are not checked.

    Without it, Spark keeps retrying the registration in the background and the job fails a minute later
    with a Java stack trace.
    """
    if not master.startswith("spark://"):
        return
    addresses: list[tuple[str, int]] = []
    for address in master.removeprefix("spark://").split(","):
        host, _, number = address.rpartition(":")
        if not host or not number.isdigit():
            raise ConfigError(f"engine.master {master!r}: expected spark://host:port")
        addresses.append((host, int(number)))
    deadline = time.monotonic() + timeout
    while True:
        for host, port in addresses:
            with contextlib.suppress(OSError):
                wait = max(0.1, min(2.0, deadline - time.monotonic()))
                with socket.create_connection((host, port), timeout=wait):
                    return
        if time.monotonic() >= deadline:
            raise EngineUnavailableError(
                f"Spark master {master} is unreachable (no answer within {timeout:g} s): start the cluster "
                "or check --master / engine.master"
            )
        time.sleep(0.2)


@contextlib.contextmanager
def spark_errors(source: str) -> Iterator[None]:
    """Spark analysis and execution errors about the input (a missing file or table, a type it cannot
    read, a file an executor failed to read) are input errors with one line."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as exc:
        text = str(exc).strip()
        raise InputError(f"{source}: {text.splitlines()[0] if text else type(exc).__name__}") from None
    except Py4JJavaError as exc:
        if not _condition(exc).startswith("FAILED_READ_FILE"):
            raise
        raise InputError(f"{source}: {str(exc.java_exception.getMessage()).strip().splitlines()[0]}") from None


def _condition(exc: Any) -> str:
    """The error condition of a Java exception from Spark (``FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH``,
    ...), empty for another exception."""
    from py4j.protocol import Py4JError

    try:
        return str(exc.java_exception.getCondition() or "")
    except Py4JError:  # not a SparkThrowable, or the JVM is gone
        return ""


def open_transactions(spark: SparkSession, data: DataConfig, temp_directory: Path | None = None) -> SparkTransactions:
    """Read the configured source with Spark: the bundled CDNOW, csv, parquet or a catalog table. A CSV in
    another encoding than UTF-8 is read from a UTF-8 copy (:func:`pipeline.engines.csv_encoding.utf8_files`),
    in ``temp_directory`` when given."""
    if data.source in CDNOW_FILES:
        frame, description, fingerprint, timestamp_format = bundled_cdnow_frame(data.source)
        return SparkTransactions(spark.createDataFrame(frame), description, fingerprint, timestamp_format)
    if data.source == "spark_table":
        assert data.table is not None  # guaranteed by DataConfig
        with spark_errors(f"data.table {data.table}"):
            table = spark.table(data.table)
        digest = hashlib.sha256(f"table:{data.table}".encode()).hexdigest()
        return _mapped(table, data, f"table:{data.table}", digest)
    if data.source not in ("csv", "parquet"):
        raise ConfigError(f"data.source '{data.source}' is not supported with engine.name 'spark'")
    assert data.path is not None  # guaranteed by DataConfig
    found = files(data.path, data.source)
    paths = [str(f) for f in found]
    with spark_errors(str(data.path)):
        if data.source == "csv":
            utf8 = [str(f) for f in utf8_files(found, data.csv.encoding, temp_directory, spark)]
            if data.csv.header:
                check_csv_header(found, data)
            reader = spark.read.option("header", data.csv.header).option("sep", data.csv.delimiter)
            read = reader.option("encoding", "UTF-8").option("inferSchema", False).csv(utf8)
            if not data.csv.header:  # DuckDB names headerless columns column0, column1, ...
                read = read.toDF(*[f"column{i}" for i in range(len(read.columns))])
        else:
            _refuse_nanoseconds(found)
            read = spark.read.parquet(*paths)
    return _mapped(read, data, str(data.path), files_fingerprint(found))


def _refuse_nanoseconds(found: list[Path]) -> None:
    """Spark 4 cannot read Parquet timestamps at nanoseconds (what pandas writes by default), with a time zone
    or without: PARQUET_TYPE_ILLEGAL, or with ``spark.sql.legacy.parquet.nanosAsLong`` a bare integer. Such a
    column is refused with one line naming it and saying how to write it instead (DuckDB reads it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in found:
        try:
            schema = pq.read_schema(path)
        except pa.ArrowException as exc:
            raise InputError(f"{path}: cannot read parquet: {exc}") from None
        for column in schema:
            if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
                raise InputError(
                    f"{path}: column {column.name!r} holds Parquet timestamps at nanoseconds, which Spark cannot "
                    "read; write them at microseconds (pandas: to_parquet(..., coerce_timestamps='us', "
                    "allow_truncated_timestamps=True)) or use engine.name: duckdb"
                )


def _rewritten(name: str, column: Column, data: DataConfig) -> Column:
    """A number column read with the CSV's separators, as in DuckDB (the same full match, literal replaces)."""
    from pyspark.sql import functions

    form = number_format(data)
    if name not in NUMBER_ROLES or form is None:
        return column
    rewritten = column
    for old, new in form.replacements:
        rewritten = functions.replace(rewritten, functions.lit(old), functions.lit(new))
    refused = functions.concat(column, functions.lit(NOT_IN_FORMAT))
    shaped = column.rlike(f"^(?:{form.pattern})$")
    return functions.when(shaped, rewritten).when(column.isNull(), None).otherwise(refused)


def _mapped(frame: DataFrame, data: DataConfig, description: str, fingerprint: str) -> SparkTransactions:
    """Rename the mapped columns to the standard names and the others to their private aliases (as
    :mod:`pipeline.engines.duckdb_source` does); a missing column is an InputError."""
    from pyspark.sql import functions

    renamed = renamed_columns(list(frame.columns), data, description)
    quoted = {column: "`" + column.replace("`", "``") + "`" for column in renamed.values()}
    columns = [_rewritten(name, functions.col(quoted[column]), data).alias(name) for name, column in renamed.items()]
    return SparkTransactions(frame.select(*columns), description, fingerprint, data.timestamp_format, renamed)


@contextlib.contextmanager
def session_zone(spark: SparkSession, zone: str) -> Iterator[None]:
    """The session's time zone (``spark.sql.session.timeZone``), in which Spark cuts timestamps into days,
    set to ``zone`` for the block and set back after it. Nothing to do in the Spark engine's session,
    which has it already; a session made elsewhere (a notebook's, the tests') may not."""
    previous = spark.conf.get("spark.sql.session.timeZone")
    if previous == zone:
        yield
        return
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        yield
    finally:
        if previous is not None:
            spark.conf.set("spark.sql.session.timeZone", previous)
