"""``engine``: where prepare and scoring run (DuckDB or Spark) and with which settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from pipeline.config.base import StrictModel

__all__ = ["SPARK_UNSUPPORTED_SOURCES", "EngineConfig"]

SPARK_UNSUPPORTED_SOURCES = ("duckdb", "sql")
"""Sources that run in DuckDB only."""


class EngineConfig(StrictModel):
    """Where prepare and scoring run: ``duckdb`` (one machine) or ``spark`` (pip install .[spark]).

    DuckDB: ``memory_limit`` caps it (it spills to ``temp_directory`` beyond it), ``threads``.
    Spark: ``master`` (``local[2]``, ``yarn``, ``spark://host:7077``, ... ; ``null`` leaves it to
    spark-submit), ``app_name``, ``shuffle_partitions`` (``spark.sql.shuffle.partitions``), ``conf``
    (any other Spark settings), ``spend_sample_customers``: Gamma-Gamma is fitted on at most this many
    repeat customers (a deterministic sample by hash of the customer id when there are more).
    """

    name: Literal["duckdb", "spark"] = "duckdb"
    memory_limit: str = Field(default="3GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    threads: int | None = Field(default=None, ge=1)
    temp_directory: Path | None = None
    master: str | None = "local[2]"
    app_name: str = "clv-pipeline"
    shuffle_partitions: int = Field(default=8, ge=1)
    conf: dict[str, str] = Field(default_factory=dict)
    spend_sample_customers: int = Field(default=2_000_000, ge=3)
    set_aside_customers: int | None = Field(
        default=2_000_000,
        ge=1,
        exclude=True,
        description="from this many calibration customers on, clv train maps the calibration summary and the "
        "holdout table from temp_directory after the calibration stage (null: never); not part of the config hash",
    )
    """Where the frames live, not what is computed: left out of the config's dump and hash (``exclude``), so runs
    that differ only here compare as reruns (``pipeline.mapped``)."""
