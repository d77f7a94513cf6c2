"""Spark's Java log lines: the level from CLV_SPARK_LOG_LEVEL, the driver's log4j2 configuration, the JVM's stderr."""

from __future__ import annotations

import io

import pytest

from pipeline.engines import spark_logs
from pipeline.engines.spark_logs import CONFIGURATION, LEVEL_VARIABLE, configured, level
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


def test_the_driver_reads_the_packaged_configuration_after_the_given_options() -> None:
    option = f"-Dlog4j2.configurationFile={CONFIGURATION.as_uri()}"
    assert CONFIGURATION.is_file()
    assert "rootLogger.level = ${env:CLV_SPARK_LOG_LEVEL:-off}" in CONFIGURATION.read_text()
    local = {"spark.master": "local[2]"}
    assert configured(local) == {**local, "spark.driver.extraJavaOptions": option}
    given = {"spark.driver.extraJavaOptions": "-XX:+UseG1GC"}
    assert configured(given) == {"spark.driver.extraJavaOptions": f"-XX:+UseG1GC {option}"}


def test_a_configuration_of_ones_own_is_kept() -> None:
    own = {"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=file:///etc/spark/debug.properties"}
    assert configured(own) == own


def test_the_jvms_stderr_passes_but_for_the_incubator_notice(capfd: pytest.CaptureFixture[str]) -> None:
    stream = io.BytesIO(b"WARNING: Using incubator modules: jdk.incubator.vector\nException in thread main\n")
    spark_logs._pass_on(stream)
    assert capfd.readouterr().err == "Exception in thread main\n"
