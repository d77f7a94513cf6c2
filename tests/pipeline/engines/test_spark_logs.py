"""Spark's Java log lines: the level from CLV_SPARK_LOG_LEVEL, the driver's log4j2 configuration through
SPARK_SUBMIT_OPTS, the JVM's stderr held while it starts."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from pipeline.engines import spark_logs
from pipeline.engines.spark_logs import (
    CONFIGURATION,
    LEVEL_VARIABLE,
    SUBMIT_OPTIONS,
    level,
    submit_options,
    user_configuration,
)
from pipeline.errors import ConfigError


def test_the_level_is_unset_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEVEL_VARIABLE, raising=False)
    assert level() is None
    monkeypatch.setenv(LEVEL_VARIABLE, " ")
    assert level() is None


def test_the_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEVEL_VARIABLE, "warn")
    assert level() == "WARN"


def test_an_unknown_level_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEVEL_VARIABLE, "loud")
    with pytest.raises(ConfigError) as raised:
        level()
    assert str(raised.value) == (
        "CLV_SPARK_LOG_LEVEL='LOUD': expected one of OFF, FATAL, ERROR, WARN, INFO, DEBUG, TRACE, ALL"
    )


def test_the_driver_reads_the_packaged_configuration_before_the_given_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    option = f"-Dlog4j2.configurationFile={CONFIGURATION.as_uri()}"
    assert CONFIGURATION.is_file()
    assert "rootLogger.level = ${env:CLV_SPARK_LOG_LEVEL:-off}" in CONFIGURATION.read_text()
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    monkeypatch.delenv(SUBMIT_OPTIONS, raising=False)
    assert submit_options() == option
    monkeypatch.setenv(SUBMIT_OPTIONS, "-Dhttp.proxyHost=proxy")
    assert submit_options() == f"{option} -Dhttp.proxyHost=proxy"  # a later -D wins: the user's


def test_a_log4j2_properties_in_the_spark_conf_dir_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "log4j2.properties").write_text("rootLogger.level = info\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert user_configuration() == tmp_path / "log4j2.properties"
    monkeypatch.delenv(SUBMIT_OPTIONS, raising=False)
    assert submit_options() is None
    monkeypatch.setenv(SUBMIT_OPTIONS, "-Dhttp.proxyHost=proxy")
    assert submit_options() == "-Dhttp.proxyHost=proxy"


def test_spark_submit_opts_is_set_for_the_launch_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")
    import pyspark.java_gateway

    seen: list[str] = []

    def launch(conf: object, popen_kwargs: dict[str, int]) -> None:
        seen.append(os.environ[SUBMIT_OPTIONS])
        raise OSError("no JVM here")

    monkeypatch.setattr(pyspark.java_gateway, "launch_gateway", launch)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    monkeypatch.setenv(SUBMIT_OPTIONS, "-Dgiven=1")
    read_end, write_end = os.pipe()
    with pytest.raises(OSError, match="no JVM here"):
        spark_logs._launch(None, write_end)  # type: ignore[arg-type]
    assert seen == [f"-Dlog4j2.configurationFile={CONFIGURATION.as_uri()} -Dgiven=1"]
    assert os.environ[SUBMIT_OPTIONS] == "-Dgiven=1"
    assert os.read(read_end, 1) == b""  # the write end is closed
    os.close(read_end)


NOTICE = b"WARNING: Using incubator modules: jdk.incubator.vector\n"


def test_the_lines_are_held_while_the_jvm_starts(capfd: pytest.CaptureFixture[str]) -> None:
    copy = spark_logs._Copy(live=False)
    spark_logs._pass_on(io.BytesIO(NOTICE + b"starting\n"), copy)
    assert capfd.readouterr().err == ""
    assert copy.held == [b"starting\n"]
    copy.started()
    spark_logs._pass_on(io.BytesIO(b"Exception in thread main\n"), copy)
    assert capfd.readouterr().err == "starting\nException in thread main\n"
    assert copy.held == []


def test_the_lines_pass_all_along_when_the_level_asks(capfd: pytest.CaptureFixture[str]) -> None:
    copy = spark_logs._Copy(live=True)
    spark_logs._pass_on(io.BytesIO(NOTICE + b"starting\n"), copy)
    assert capfd.readouterr().err == "starting\n"
    assert copy.held == [b"starting\n"]  # to name the JVM's error if it exits
    copy.started()
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (
            [b"Error: Not allowed (was -Xmx1q).\n", b"\n", NOTICE, b"Usage: spark-submit\n"],
            "Error: Not allowed (was -Xmx1q).",
        ),
        (
            [
                b"Unrecognized VM option 'X'\n",
                b"Error: Could not create the Java Virtual Machine.\n",
                b"Error: fatal\n",
            ],
            "Unrecognized VM option 'X' Error: Could not create the Java Virtual Machine.",
        ),
        ([b"JAVA_HOME is not set\n", b"more\n"], "JAVA_HOME is not set"),
        ([], ""),
    ],
)
def test_the_reason_is_the_jvms_error_line(lines: list[bytes], reason: str) -> None:
    copy = spark_logs._Copy(live=False)
    for line in lines:
        copy.take(line)
    assert spark_logs._reason(copy.held) == reason
