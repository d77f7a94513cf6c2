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
RESULT_COLUMNS = [field.split()[0] for field in RESULT.split(", ")]


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
    from pipeline.engines.duckdb_prepare import prepare_as_of
    from pipeline.engines.duckdb_source import connect, open_transactions

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


def test_spark_udf_takes_int_ids_and_counts(registry: Registry, spark, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """customer_id and frequency as Spark longs, the columns taken by name from the signature (no
    arguments): the batch numbers, the ids back as text."""
    import datetime as dt

    import mlflow

    from pipeline.config import Config, DataConfig, EngineConfig
    from pipeline.engines.duckdb_prepare import prepare_as_of
    from pipeline.engines.duckdb_source import connect, open_transactions

    for key, value in registry.env().items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    mlflow.set_tracking_uri(registry.uri)
    mlflow.set_registry_uri(registry.uri)
    data = open_transactions(connect(EngineConfig()), DataConfig(source="csv", path=registry.transactions))
    customers = prepare_as_of(data.relation, Config().prepare, dt.date(1998, 6, 30)).customers.head(500)
    columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    ints = customers[columns].assign(
        customer_id=customers["customer_id"].astype("int64"), frequency=customers["frequency"].astype("int64")
    )
    frame = spark.createDataFrame(ints).repartition(2)
    assert [f.dataType.simpleString() for f in frame.schema.fields][:2] == ["bigint", "bigint"]
    udf = mlflow.pyfunc.spark_udf(spark, "models:/clv@champion", result_type=RESULT, env_manager="local")
    scored = frame.withColumn("scores", udf()).select("customer_id", "scores.*").toPandas()
    scored.columns = ["input_id", *scored.columns[1:]]
    scored = scored.sort_values("input_id").reset_index(drop=True)
    assert scored["customer_id"].tolist() == [str(i) for i in scored["input_id"]]
    batch = pd.read_parquet(registry.scores)
    batch = batch.assign(input_id=batch["customer_id"].astype("int64")).set_index("input_id").loc[scored["input_id"]]
    assert len(scored) == 500
    for column in RESULT_COLUMNS[1:]:
        if column == "risk_tier":
            assert scored[column].tolist() == batch[column].tolist()
        else:
            pd.testing.assert_series_equal(
                scored[column], batch[column].reset_index(drop=True), check_names=False, rtol=1e-12
            )
