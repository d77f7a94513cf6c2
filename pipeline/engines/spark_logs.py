"""Spark's Java log lines kept off stderr, where the CLI reports an error in one line of its own.

A driver JVM that the Spark engine starts (local mode, or a standalone master from here) reads the log4j2
configuration next to this module (``spark-log4j2.properties``), whose level is ``CLV_SPARK_LOG_LEVEL``, ``OFF``
when unset: Spark's start-up warnings and a failed task's ERROR lines with their Java stack traces stay off the
terminal. ``CLV_SPARK_LOG_LEVEL=WARN`` (or INFO, DEBUG, ...) shows them again, also in a JVM that ran already.
The option goes in ``SPARK_SUBMIT_OPTS``, which Spark puts before the driver's Java options: ``engine.conf`` and
``spark-defaults.conf`` keep their ``spark.driver.extraJavaOptions``, and a ``-Dlog4j2.configurationFile`` given
there wins. A ``log4j2.properties`` in Spark's configuration folder (``SPARK_CONF_DIR``, or ``SPARK_HOME/conf``) is
used as it is, level included. A JVM started by someone else (spark-submit, which passes the CLI's stderr to its
stdout; a notebook) keeps its configuration, at level ERROR unless it is one of the user's.

A thread copies the JVM's stderr to this process's, but for the JVM's incubator notice. While the JVM starts it
holds the lines back (unless ``CLV_SPARK_LOG_LEVEL`` asks for them): a JVM that exits at start-up is a
:class:`~pipeline.errors.ConfigError` that names its error line.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

__all__ = ["LEVEL_VARIABLE", "level", "set_level", "start_jvm", "submit_options", "user_configuration"]

LEVEL_VARIABLE = "CLV_SPARK_LOG_LEVEL"
LEVELS = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")
CONFIGURATION = Path(__file__).with_name("spark-log4j2.properties")
SUBMIT_OPTIONS = "SPARK_SUBMIT_OPTS"
INCUBATOR_NOTICE = b"WARNING: Using incubator modules:"
"""What the JVM prints first when Spark asks for ``jdk.incubator.vector``; no switch turns it off."""
WAIT = 5.0
"""Seconds to wait for the JVM's last lines: after it failed to start, and at exit."""


def level() -> str | None:
    """The level of Spark's log lines that ``CLV_SPARK_LOG_LEVEL`` asks for, ``None`` when it is unset or empty."""
    value = os.environ.get(LEVEL_VARIABLE, "").strip().upper() or None
    if value is not None and value not in LEVELS:
        raise ConfigError(f"{LEVEL_VARIABLE}={value!r}: expected one of {', '.join(LEVELS)}")
    return value


def user_configuration() -> Path | None:
    """The ``log4j2.properties`` in Spark's configuration folder, where spark-submit looks, if there is one."""
    from pyspark.find_spark_home import _find_spark_home

    folder = os.environ.get("SPARK_CONF_DIR") or os.path.join(_find_spark_home(), "conf")
    found = Path(folder, "log4j2.properties")
    return found if found.is_file() else None


def submit_options() -> str | None:
    """``SPARK_SUBMIT_OPTS`` for the driver's JVM: this package's log4j2 configuration before the options given
    there (a later ``-D`` wins); as given when the user has a ``log4j2.properties`` of their own."""
    given = os.environ.get(SUBMIT_OPTIONS)
    if user_configuration() is not None:
        return given
    return f"-Dlog4j2.configurationFile={CONFIGURATION.as_uri()} {given or ''}".strip()


def start_jvm(settings: dict[str, str], chosen: str | None) -> None:
    """Start the driver's JVM with ``settings`` (as Spark would for the first session) and :func:`submit_options`,
    its stderr copied by a thread that holds the lines back until the JVM is up unless ``chosen`` (:func:`level`)
    asks for them. Nothing to do when a JVM runs already (spark-submit's, or this process's from an earlier
    session). A JVM that exits at start-up is a :class:`ConfigError` with its error line."""
    from pyspark import SparkConf, SparkContext
    from pyspark.errors import PySparkRuntimeError

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    conf = SparkConf().setAll(list(settings.items()))
    copy = _Copy(live=chosen not in (None, "OFF"))
    read_end, write_end = os.pipe()
    reader = threading.Thread(target=_read, args=(read_end, copy), name="spark-stderr", daemon=True)
    reader.start()
    try:
        gateway = _launch(conf, write_end)
    except (PySparkRuntimeError, OSError) as exc:
        reader.join(WAIT)
        raise ConfigError(f"Spark's driver JVM exited at start-up: {_reason(copy.held) or exc}") from exc
    copy.started()
    atexit.register(_finish, gateway.proc, reader)
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)


def set_level(spark: SparkSession, chosen: str | None) -> None:
    """The level of Spark's log lines at run time: ``chosen`` (:func:`level`) when set; otherwise the level of the
    configuration the JVM started with (this package's or the user's), or ERROR when it started without one."""
    if chosen is None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None  # a running session's
        if jvm.java.lang.System.getProperty("log4j2.configurationFile") is not None or user_configuration():
            return
        chosen = "ERROR"
    spark.sparkContext.setLogLevel(chosen)


def _launch(conf: SparkConf, write_end: int) -> Any:
    """pyspark's gateway, its JVM started with :func:`submit_options` and ``write_end`` as its stderr (closed here
    once the JVM has it); this process's ``SPARK_SUBMIT_OPTS`` as it was afterwards."""
    from pyspark.java_gateway import launch_gateway

    given = os.environ.get(SUBMIT_OPTIONS)
    options = submit_options()
    try:
        if options is not None:
            os.environ[SUBMIT_OPTIONS] = options  # launch_gateway passes os.environ on
        return launch_gateway(conf, popen_kwargs={"stderr": write_end})  # type: ignore[no-untyped-call]
    finally:
        os.close(write_end)
        if given is None:
            os.environ.pop(SUBMIT_OPTIONS, None)
        else:
            os.environ[SUBMIT_OPTIONS] = given


@dataclass
class _Copy:
    """Where the JVM's stderr lines go: this process's stderr, once the JVM is up or all along when ``live``;
    ``held`` while it starts (to name why it could not)."""

    live: bool
    held: list[bytes] = field(default_factory=list)
    starting: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, line: bytes) -> None:
        if line.startswith(INCUBATOR_NOTICE):
            return
        with self.lock:
            if self.starting:
                self.held.append(line)
            if self.live or not self.starting:
                _write(line)

    def started(self) -> None:
        """Pass on the lines held back while the JVM started, and the next ones as they come."""
        with self.lock:
            if not self.live:
                for line in self.held:
                    _write(line)
            self.starting, self.held = False, []


def _read(read_end: int, copy: _Copy) -> None:
    """Read the JVM's stderr to the end, whatever happens to the copy, so that the JVM never blocks on a full
    pipe; the end comes when the JVM and its workers have closed it."""
    with open(read_end, "rb") as stream:
        _pass_on(stream, copy)


def _pass_on(stream: Iterable[bytes], copy: _Copy) -> None:
    for line in stream:
        copy.take(line)


def _write(line: bytes) -> None:
    with contextlib.suppress(OSError):
        rest = memoryview(line)
        while rest:
            rest = rest[os.write(2, rest) :]


def _reason(held: list[bytes]) -> str:
    """The JVM's error in one line: its lines up to the first ``Error: ...`` one (the last three of them), or its
    first line when none is."""
    lines = [text for text in (line.decode(errors="replace").strip() for line in held) if text]
    errors = [number for number, text in enumerate(lines) if text.startswith("Error:")]
    return " ".join(lines[: errors[0] + 1][-3:] if errors else lines[:1])


def _finish(proc: subprocess.Popen[bytes] | None, reader: threading.Thread) -> None:
    """At exit: close the JVM's stdin, on which it stops (Spark's shutdown hooks run), and copy its last lines,
    waiting :data:`WAIT` seconds at most."""
    if proc is not None and proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    reader.join(WAIT)
