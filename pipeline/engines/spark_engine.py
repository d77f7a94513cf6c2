"""The Spark engine: prepare and scoring on the executors; only small tables come to the driver.

The per-customer summaries are collected to the driver for validation, the report and the business
views; the fit gets only the unique histories and the repeat customers' spend (capped at
``engine.spend_sample_customers``), so it costs the same for any number of customers; the scores are
computed and written by the executors, then read back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from models.bundle import CLVModelParams
from models.challenger import ChallengerError
from pipeline.config import DataConfig, EngineConfig, PrepareConfig
from pipeline.engines import Source, spark_prepare, spark_score, spark_session
from pipeline.engines.prepared import WINDOW_REASON, AsOfData, PreparedData
from pipeline.engines.source_columns import layout
from pipeline.engines.spark_classify import classified_sql
from pipeline.engines.sql import quarantined_days_sql
from pipeline.fit import FitInput, holdout_scorer
from pipeline.outputs import write_relation

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["QuarantineDays", "SparkEngine"]


class SparkEngine:
    """Prepare and score with Spark: the active SparkSession, or one made from the engine config."""

    name = "spark"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._spark: SparkSession | None = None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark = spark_session.session(self.config)
        return self._spark

    def open(self, data: DataConfig) -> Source:
        tx = spark_session.open_transactions(self.spark, data)
        return Source(tx.description, tx.fingerprint, tx.timestamp_format, tx.column_names, tx.frame)

    def errors(self, source: str) -> contextlib.AbstractContextManager[None]:
        return spark_session.spark_errors(source)

    def _zoned(self, config: PrepareConfig) -> None:
        """The session cuts days in ``prepare.timezone``: set on the engine's session, not by the stage."""
        self.spark.conf.set("spark.sql.session.timeZone", config.timezone)

    def prepare(self, source: Source, config: PrepareConfig) -> PreparedData:
        self._zoned(config)
        with self.errors(source.description):
            distributed = spark_prepare.prepare(
                _frame(source), config, source.timestamp_format, source.description, source.column_names
            )
            prepared = spark_prepare.collect(distributed)
        frame, found_format = _frame(source), prepared.timestamp_format
        days = QuarantineDays.of(frame, config, found_format, source.description, source.column_names)
        return dataclasses.replace(prepared, quarantine_days=days)

    def prepare_as_of(self, source: Source, config: PrepareConfig, as_of: dt.date) -> AsOfData:
        self._zoned(config)
        with self.errors(source.description):
            return spark_prepare.prepare_as_of(
                _frame(source), config, as_of, source.timestamp_format, source.description, source.column_names
            )

    def activity(self, source: Source, config: PrepareConfig, up_to: dt.date) -> pd.DataFrame:
        """Refused: the challenger's per-customer daily table is built on DuckDB only for now."""
        raise ChallengerError(
            "the Spark engine does not build the challenger's activity table yet (engine.name: duckdb does)"
        )

    def fit_input(self, prepared: PreparedData, part: Literal["calibration", "full"]) -> FitInput:
        distributed = _distributed(prepared)
        holdout_score = holdout_scorer(prepared.calibration, prepared.full) if part == "calibration" else None
        frame: DataFrame = distributed.calibration if part == "calibration" else distributed.full
        histories = spark_prepare.histories(frame)
        if prepared.has_amounts:
            repeat, total = spark_prepare.repeat_spend(frame, self.config.spend_sample_customers)
        else:  # an event feed: no spend to model
            empty = pd.Series(dtype=float)
            repeat, total = pd.DataFrame({"frequency": empty, "monetary_value": empty.copy()}), 0
        info = {"unique_histories": float(len(histories)), "gamma_gamma_repeat_customers": float(total)}
        return FitInput(histories, repeat, holdout_score, info)

    def score(self, model: CLVModelParams, prepared: PreparedData, staging: Path) -> pd.DataFrame:
        """Scored on the executors, written by them to ``staging``, read back for the business views."""
        scores = spark_score.score_spark(model, _distributed(prepared).full)
        write_relation(spark_prepare.SparkRows(scores), staging)
        return pd.read_parquet(staging).sort_values("customer_id", ignore_index=True)

    def write_quarantine(self, prepared: PreparedData | AsOfData, path: Path) -> Path:
        return write_relation(prepared.quarantine, path)

    def quarantined_days(self, prepared: PreparedData) -> dict[dt.date | None, int]:
        days = prepared.quarantine_days
        if not isinstance(days, QuarantineDays):
            raise TypeError("the quarantined rows were not prepared by the Spark engine")
        with self.errors(days.source):
            return days.counted()

    def close(self) -> None:
        """The session is left running: it may be shared (spark-submit, notebooks, tests)."""


@dataclasses.dataclass(frozen=True)
class QuarantineDays:
    """The quarantined rows per day as prepare dated them, counted when asked: prepare's own classification of
    the input (:func:`pipeline.engines.spark_classify.classified_sql`: its reasons, and Spark's reading of the
    timestamp, ``ts``, whose day is cut in the session zone, set to ``prepare.timezone`` for the query) run
    again on the executors; only the days and their counts come to the driver."""

    frame: DataFrame
    view: str
    """The name ``frame`` is seen under in ``sql`` (a temporary view, only while the query runs)."""
    sql: str
    """:func:`pipeline.engines.sql.quarantined_days_sql` of the classified rows."""
    timezone: str
    source: str

    @staticmethod
    def of(
        frame: DataFrame,
        config: PrepareConfig,
        timestamp_format: str | None,
        source: str,
        column_names: Mapping[str, str],
    ) -> QuarantineDays:
        """The count for the input ``frame`` prepared under ``config``, its timestamps read with
        ``timestamp_format`` (the one prepare used, detected or given)."""
        columns = dict(frame.dtypes)
        rows = layout(list(columns), column_names, config, source)
        view = f"clv_quarantine_days_{uuid.uuid4().hex}"
        classified = classified_sql(view, columns, rows, config, timestamp_format)
        return QuarantineDays(frame, view, quarantined_days_sql(classified, WINDOW_REASON), config.timezone, source)

    def counted(self) -> dict[dt.date | None, int]:
        spark = self.frame.sparkSession
        self.frame.createOrReplaceTempView(self.view)
        try:
            with spark_session.session_zone(spark, self.timezone):
                return {row["day"]: int(row["n"]) for row in spark.sql(self.sql).collect()}
        finally:
            spark.catalog.dropTempView(self.view)


def _frame(source: Source) -> DataFrame:
    from pyspark.sql import DataFrame

    if not isinstance(source.handle, DataFrame):
        raise TypeError(f"{source.description}: not opened by the Spark engine")
    return source.handle


def _distributed(prepared: PreparedData) -> spark_prepare.SparkPrepared:
    if not isinstance(prepared.handle, spark_prepare.SparkPrepared):
        raise TypeError("the summaries were not prepared by the Spark engine")
    return prepared.handle
