"""Score stage on Spark: every customer scored on the executors with ``mapInPandas``.

Each partition of the per-customer summary goes through :func:`pipeline.score.score` (the one
scoring function that batch, REST and the pyfunc model share), so the numbers are the driver's.
The fitted parameters travel to the executors inside the function's closure; the ``models`` and
``pipeline`` packages must be importable there (the packed environment of docs/spark-cluster.md; in short in
docs/how-to/spark.md, "On a cluster").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd

from models.bundle import CLVModelParams
from models.scoring import score_columns
from pipeline.score import score

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_TYPES = {"customer_id": "string", "risk_tier": "string"}


def schema(model: CLVModelParams) -> str:
    """The scores' Spark schema (DDL): ``score_columns`` plus ``historical_clv`` (with a spend model)."""
    columns = [*score_columns(model), *(["historical_clv"] if model.has_spend else [])]
    return ", ".join(f"`{c}` {_TYPES.get(c, 'double')}" for c in columns)


def score_spark(model: CLVModelParams, customers: DataFrame) -> DataFrame:
    """Scores for every customer of a Spark per-customer summary (customer_id, frequency, recency, T, and
    with a spend model monetary_value and total_spend), computed partition by partition on the executors."""
    money = ["monetary_value", "total_spend"] if model.has_spend else []
    columns = ["customer_id", "frequency", "recency", "T", *money]

    def partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch):
                yield score(model, batch.reset_index(drop=True))

    return customers.select(*columns).mapInPandas(partition, schema(model))
