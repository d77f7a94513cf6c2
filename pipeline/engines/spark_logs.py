"""Spark's Java log lines kept off stderr, where the CLI reports an error in one line of its own.

A driver JVM that the Spark engine starts (local mode, or a standalone master from here) reads the log4j2
configuration next to this module (``spark-log4j2.properties``), whose level is ``CLV_SPARK_LOG_LEVEL``, ``OFF``
when unset: Spark's start-up warnings and a failed task's ERROR lines with their Java stack traces stay off the
terminal. ``CLV_SPARK_LOG_LEVEL=WARN`` (or INFO, DEBUG, ...) shows them again, also in a JVM that ran already.
A log4j2 configuration of one's own (``-Dlog4j2.configurationFile=...`` in ``engine.conf``'s
``spark.driver.extraJavaOptions``) is used as it is. A JVM started by someone else (spark-submit, which passes
the CLI's stderr to its stdout; a notebook) keeps its configuration at level ERROR.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["LEVEL_VARIABLE", "configured", "level", "set_level", "start_jvm"]

LEVEL_VARIABLE = "CLV_SPARK_LOG_LEVEL"
LEVELS = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")
CONFIGURATION = Path(__file__).with_name("spark-log4j2.properties")
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
INCUBATOR_NOTICE = b"WARNING: Using incubator modules:"
"""What the JVM prints first when Spark asks for ``jdk.incubator.vector``; no switch turns it off."""


def level() -> str | None:
    """The level of Spark's log lines that ``CLV_SPARK_LOG_LEVEL`` asks for, ``None`` when it is unset or empty."""
    value = os.environ.get(LEVEL_VARIABLE, "").strip().upper() or None
    if value is not None and value not in LEVELS:
        raise ConfigError(f"{LEVEL_VARIABLE}={value!r}: expected one of {', '.join(LEVELS)}")
    return value


def _own_configuration(settings: dict[str, str]) -> bool:
    """Whether ``settings`` point the driver's JVM at a log4j2 configuration of the user's."""
    return "configurationFile=" in settings.get(JAVA_OPTIONS, "")


def configured(settings: dict[str, str]) -> dict[str, str]:
    """``settings`` with the driver's JVM pointed at this package's log4j2 configuration, after the Java options
    given there; ``settings`` as they are when they name a configuration of their own."""
    if _own_configuration(settings):
        return settings
    option = f"-Dlog4j2.configurationFile={CONFIGURATION.as_uri()}"
    return {**settings, JAVA_OPTIONS: f"{settings.get(JAVA_OPTIONS, '')} {option}".strip()}


def start_jvm(settings: dict[str, str]) -> dict[str, str]:
    """Start the driver's JVM with ``settings`` :func:`configured` (as Spark would for the first session), its
    stderr passed on by a thread without the JVM's incubator notice, and return the settings it started with.
    Nothing to do when a JVM runs already (spark-submit's, or this process's from an earlier session)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return settings
    settings = configured(settings)
    conf = SparkConf().setAll(list(settings.items()))
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})  # type: ignore[no-untyped-call]
    threading.Thread(target=_pass_on, args=(gateway.proc.stderr,), name="spark-stderr", daemon=True).start()
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)
    return settings


def set_level(spark: SparkSession, chosen: str | None) -> None:
    """The level of Spark's log lines at run time: ``chosen`` (:func:`level`) when set; otherwise the level of the
    configuration the JVM started with (this package's or the user's), or ERROR when it started without one."""
    if chosen is None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None  # a running session's
        if jvm.java.lang.System.getProperty("log4j2.configurationFile") is not None:
            return
        chosen = "ERROR"
    spark.sparkContext.setLogLevel(chosen)


def _pass_on(stream: IO[bytes]) -> None:
    """Copy the JVM's stderr to this process's, line by line, but for :data:`INCUBATOR_NOTICE`; read to the end
    whatever happens to the copy, so that the JVM never blocks on a full pipe."""
    for line in stream:
        if line.startswith(INCUBATOR_NOTICE):
            continue
        with contextlib.suppress(OSError):
            rest = memoryview(line)
            while rest:
                rest = rest[os.write(2, rest) :]
