"""The engine the workflow runs on (DuckDB or Spark), behind one small interface.

Temporary home: the engines package replaces this module.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
import pandas as pd

from models.bundle import CLVModelParams
from pipeline import spark_prepare, spark_score, spark_session
from pipeline.config import Config, DataConfig, EngineConfig
from pipeline.errors import InputError
from pipeline.fit import FitInput, fit_input, holdout_scorer
from pipeline.outputs import write_relation
from pipeline.prepare import PreparedData, prepare
from pipeline.score import score
from pipeline.sources import Transactions, connect, open_transactions
from pipeline.spark_prepare import SparkPrepared, SparkRows
from pipeline.spark_session import SparkTransactions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

Source = Transactions | SparkTransactions


@contextlib.contextmanager
def engine_errors(source: str) -> Iterator[None]:
    """DuckDB or Spark errors while reading the input (a truncated file, a type it cannot read) are input errors."""
    try:
        yield
    except Exception as exc:
        spark_errors = sys.modules.get("pyspark.errors")  # only when the Spark engine is in use
        if not isinstance(exc, duckdb.Error) and not (
            spark_errors is not None and isinstance(exc, spark_errors.PySparkException)
        ):
            raise
        text = str(exc).strip()
        raise InputError(f"{source}: {text.splitlines()[0] if text else type(exc).__name__}") from None


class Engine:
    """DuckDB or Spark, by ``engine.name``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.name = config.name
        self._distributed: dict[int, SparkPrepared] = {}

    def open(self, data: DataConfig) -> Source:
        if self.name == "spark":
            return spark_session.open_transactions(spark_session.session(self.config), data)
        return open_transactions(connect(self.config), data)

    def errors(self, source: str) -> contextlib.AbstractContextManager[None]:
        return engine_errors(source)

    def prepare(self, config: Config, data: Source) -> PreparedData:
        if isinstance(data, SparkTransactions):
            with spark_session.spark_errors(data.description):
                distributed = spark_prepare.prepare(
                    data.frame,
                    config.prepare,
                    data.timestamp_format,
                    source=data.description,
                    column_names=data.column_names,
                )
                prepared = spark_prepare.collect(distributed)
                self._distributed[id(prepared)] = distributed
                return prepared
        with engine_errors(data.description):
            return prepare(
                data.relation,
                config.prepare,
                data.timestamp_format,
                source=data.description,
                column_names=data.column_names,
            )

    def fit_input(self, config: Config, prepared: PreparedData, part: Literal["calibration", "full"]) -> FitInput:
        """DuckDB: from the per-customer summary. Spark: only the unique histories and the repeat customers'
        spend (capped at ``engine.spend_sample_customers``) are collected."""
        distributed = self._distributed.get(id(prepared))
        if distributed is None:
            if part == "calibration":
                return fit_input(prepared.calibration, holdout_full=prepared.full)
            return fit_input(prepared.full)
        holdout_score = holdout_scorer(prepared.calibration, prepared.full) if part == "calibration" else None
        frame: SparkDataFrame = distributed.calibration if part == "calibration" else distributed.full
        histories = spark_prepare.histories(frame)
        if prepared.has_amounts:
            repeat, total = spark_prepare.repeat_spend(frame, config.engine.spend_sample_customers)
        else:  # an event feed: no spend to model
            empty = pd.Series(dtype=float)
            repeat, total = pd.DataFrame({"frequency": empty, "monetary_value": empty}), 0
        info = {"unique_histories": float(len(histories)), "gamma_gamma_repeat_customers": float(total)}
        return FitInput(histories, repeat, holdout_score, info)

    def score(self, model: CLVModelParams, prepared: PreparedData, staging: Path) -> pd.DataFrame:
        distributed = self._distributed.get(id(prepared))
        if distributed is None:
            return score(model, prepared.full)
        with spark_session.spark_errors("scoring"):
            write_relation(SparkRows(spark_score.score_spark(model, distributed.full)), staging)
        return pd.read_parquet(staging).sort_values("customer_id", ignore_index=True)

    def write_quarantine(self, prepared: PreparedData, path: Path, source: str) -> Path:
        with engine_errors(source):
            return write_relation(prepared.quarantine, path)


def open_engine(config: EngineConfig) -> Engine:
    return Engine(config)
