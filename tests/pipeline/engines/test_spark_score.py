"""Spark scoring: mapInPandas on the executors gives the driver's scores exactly (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.score import score
from tests.pipeline.test_score import MODEL

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")

from pipeline.engines.spark_score import schema, score_spark  # noqa: E402


def test_scores_on_the_executors_equal_the_driver(spark) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 3_000
    frequency = rng.poisson(1.5, n).astype(float)
    recency = np.where(frequency > 0, rng.integers(1, 60, n), 0).astype(float) / 7
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "frequency": frequency,
            "recency": recency,
            "T": recency + rng.integers(0, 30, n) / 7,
            "monetary_value": np.where(frequency > 0, np.round(rng.lognormal(3, 0.5, n), 2), 0.0),
            "total_spend": np.round(rng.lognormal(4, 0.5, n), 2),
        }
    )
    frame = spark.createDataFrame(customers).repartition(3)
    scored = score_spark(MODEL, frame)
    assert scored.schema.simpleString().startswith("struct<customer_id:string,p_alive:double,churn_risk:double,")
    assert "`historical_clv` double" in schema(MODEL)
    ours = scored.toPandas().sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(ours, score(MODEL, customers), check_exact=True, check_dtype=False)
