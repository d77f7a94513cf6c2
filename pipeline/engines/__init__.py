"""Where prepare and scoring run: DuckDB (one machine) or Spark, behind one :class:`Engine` interface.

The rules are stated once (:mod:`pipeline.engines.rules`) and rendered to each SQL dialect
(:mod:`pipeline.engines.sql`); inputs both engines read alike are in :mod:`pipeline.engines.inputs`;
what prepare returns is in :mod:`pipeline.engines.prepared`. Engine-specific code lives in
``duckdb_*.py`` and ``spark_*.py``; pyspark is imported only when the Spark engine is opened.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from models.bundle import CLVModelParams
    from pipeline.config import DataConfig, EngineConfig, PrepareConfig
    from pipeline.engines.prepared import AsOfData, PreparedData
    from pipeline.fit import FitInput

__all__ = ["Engine", "Source", "open_engine"]


@dataclass(frozen=True)
class Source:
    """The configured transactions, opened lazily: where they came from and a fingerprint of the input.

    ``column_names``: input column -> source column name, in the source's order (for
    ``prepare.duplicate_key`` and the quarantine's column names). ``handle``: the engine's own lazy input
    (a DuckDB relation, a Spark DataFrame).
    """

    description: str
    fingerprint: str
    timestamp_format: str | None
    column_names: dict[str, str] = field(default_factory=dict)
    handle: object = field(default=None, repr=False, compare=False)


class Engine(Protocol):
    """One engine: it opens the input, prepares it, feeds the fit, scores, writes the quarantine, counts it by day."""

    name: str
    """``duckdb`` or ``spark``."""

    def open(self, data: DataConfig) -> Source:
        """The configured input, lazily; InputError names the file or column that is wrong."""
        ...

    def errors(self, source: str) -> AbstractContextManager[None]:
        """The engine's errors about the input (a truncated file, a type it cannot read) as one-line InputErrors."""
        ...

    def prepare(self, source: Source, config: PrepareConfig) -> PreparedData:
        """The prepare stage: calibration, holdout and full-history summaries, the ledger, the quarantine."""
        ...

    def prepare_as_of(self, source: Source, config: PrepareConfig, as_of: dt.date) -> AsOfData:
        """The per-customer summary of everything up to ``as_of``, for scoring (what ``clv score`` uses)."""
        ...

    def activity(self, source: Source, config: PrepareConfig, up_to: dt.date) -> pd.DataFrame:
        """The challenger's activity table: ``customer_id``, ``date``, ``purchases``, ``revenue``, one row per
        customer and day with a purchase on or before ``up_to``, cleaned as prepare cleans (see
        :mod:`pipeline.engines.duckdb_activity`). An engine that cannot build it raises ChallengerError."""
        ...

    def fit_input(self, prepared: PreparedData, part: Literal["calibration", "full"]) -> FitInput:
        """What the fit needs from the calibration (with the holdout scorer) or the full-history summary."""
        ...

    def score(self, model: CLVModelParams, prepared: PreparedData, staging: Path) -> pd.DataFrame:
        """Scores of every customer of the full history, sorted by customer id. An engine that scores
        elsewhere (Spark's executors) leaves them as a Parquet folder at ``staging`` as well."""
        ...

    def write_quarantine(self, prepared: PreparedData | AsOfData, path: Path) -> Path:
        """Write the quarantined rows as Parquet at ``path`` (a folder of files on Spark)."""
        ...

    def quarantined_days(self, prepared: PreparedData) -> dict[dt.date | None, int]:
        """The rows ``prepared`` quarantined for a problem of their own (every reason but
        :data:`~pipeline.engines.prepared.WINDOW_REASON`), counted per day as this engine's prepare dated them:
        its own reading of the timestamp, in ``prepare.timezone`` (None: rows without a readable timestamp).
        Nothing is written; one query over the input. TypeError for data another engine (or no engine) prepared."""
        ...

    def close(self) -> None:
        """Release what the engine holds (its DuckDB connection); the Spark session is left running."""
        ...


def open_engine(config: EngineConfig) -> Engine:
    """The engine named by ``engine.name``; ConfigError when Spark is asked for and pyspark is missing."""
    if config.name == "spark":
        from pipeline.engines.spark_engine import SparkEngine

        return SparkEngine(config)
    from pipeline.engines.duckdb_engine import DuckDBEngine

    return DuckDBEngine(config)
