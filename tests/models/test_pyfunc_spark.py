"""Spark: the registered pyfunc model as a Spark UDF in local mode gives the batch numbers (slow)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import Registry

pytestmark = pytest.mark.slow
pyspark = pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")

RESULT = (
    "customer_id string, p_alive double, churn_risk double, risk_tier string, expected_purchases_30d double, "
    "expected_purchases_90d double, expected_purchases_365d double, expected_order_value double, clv double"
)


def test_spark_udf_matches_batch_scores(registry: Registry, spark, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    from pyspark.sql import functions

    for key, value in registry.env().items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    mlflow.set_tracking_uri(registry.uri)
    mlflow.set_registry_uri(registry.uri)

    holdout = pd.read_parquet(registry.folder / "out" / "holdout.parquet")
    batch = pd.read_parquet(registry.scores).set_index("customer_id")
    import datetime as dt

    from pipeline.config import Config, DataConfig, EngineConfig
    from pipeline.prepare import prepare_as_of
    from pipeline.sources import connect, open_transactions

    data = open_transactions(connect(EngineConfig()), DataConfig(source="csv", path=registry.transactions))
    customers = prepare_as_of(data.relation, Config().prepare, dt.date(1998, 6, 30)).customers
    columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    frame = spark.createDataFrame(customers[columns]).repartition(4)

    udf = mlflow.pyfunc.spark_udf(spark, "models:/clv@champion", result_type=RESULT, env_manager="local")
    scored = frame.withColumn("scores", udf(*[functions.col(c) for c in columns])).select("scores.*").toPandas()
    scored = scored.set_index("customer_id").loc[batch.index]
    assert len(scored) == len(holdout) == 2357
    for column in scored.columns:
        if column == "risk_tier":
            assert scored[column].tolist() == batch[column].tolist()
        else:
            pd.testing.assert_series_equal(scored[column], batch[column], check_names=False, rtol=1e-12)
