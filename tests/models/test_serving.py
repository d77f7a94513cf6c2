"""REST: a real `mlflow models serve` process on 127.0.0.1 answers with the batch CLI's numbers (slow)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest

from tests.conftest import Registry
from tests.rest import post, predictions, serve, split

pytestmark = pytest.mark.slow

MODEL_COLUMNS = [
    "p_alive",
    "churn_risk",
    "risk_tier",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_order_value",
    "clv",
]


@pytest.fixture(scope="module")
def invocations(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The /invocations URL of one server for this module (see :func:`tests.rest.serve`)."""
    with serve("models:/clv@champion", registry.folder, registry.env(), tmp_path_factory.mktemp("serve")) as url:
        yield url


def _customers(registry: Registry) -> pd.DataFrame:
    from pipeline.config import Config, DataConfig, EngineConfig
    from pipeline.engines.duckdb_prepare import prepare_as_of
    from pipeline.engines.duckdb_source import connect, open_transactions

    data = open_transactions(connect(EngineConfig()), DataConfig(source="csv", path=registry.transactions))
    customers = prepare_as_of(data.relation, Config().prepare, dt.date(1998, 6, 30)).customers
    return customers[["customer_id", "frequency", "recency", "T", "monetary_value"]].iloc[::47].head(50)


def _check_numbers(predictions: pd.DataFrame, batch: pd.DataFrame) -> None:
    assert list(predictions.columns) == MODEL_COLUMNS  # every model column, none dropped
    for column in MODEL_COLUMNS:
        if column == "risk_tier":
            assert predictions[column].tolist() == batch[column].tolist()
        else:
            pd.testing.assert_series_equal(
                predictions[column].reset_index(drop=True),
                batch[column].reset_index(drop=True),
                check_names=False,
                rtol=1e-12,
            )


def test_rest_invocations_match_batch_scores(registry: Registry, invocations: str) -> None:
    sample = _customers(registry)
    batch = pd.read_parquet(registry.scores).set_index("customer_id").loc[sample["customer_id"]]
    answers = [post(invocations, split(chunk)) for chunk in (sample.iloc[:25], sample.iloc[25:])]
    assert [status for status, _ in answers] == [200, 200]
    rest = pd.concat(predictions(body) for _, body in answers).set_index("customer_id")
    assert list(rest.index) == list(sample["customer_id"])
    _check_numbers(rest, batch)


def test_rest_takes_int_ids_and_counts(registry: Registry, invocations: str) -> None:
    """customer_id and frequency as JSON integers: the same numbers; the ids come back as text."""
    sample = _customers(registry)
    batch = pd.read_parquet(registry.scores).set_index("customer_id").loc[sample["customer_id"]]
    as_ints = sample.assign(customer_id=sample["customer_id"].astype(int), frequency=sample["frequency"].astype(int))
    payload = split(as_ints)
    assert isinstance(payload["dataframe_split"], dict)
    assert all(isinstance(row[0], int) and isinstance(row[1], int) for row in payload["dataframe_split"]["data"])
    status, body = post(invocations, payload)
    assert status == 200
    rest = predictions(body)
    assert rest["customer_id"].tolist() == [str(int(i)) for i in sample["customer_id"]]  # "0047" comes back "47"
    _check_numbers(rest.drop(columns=["customer_id"]), batch)


def test_bad_input_is_a_client_error_with_the_contract_message(registry: Registry, invocations: str) -> None:
    sample = _customers(registry).head(3)
    broken = sample.assign(recency=sample["T"] + 1.0)
    status, body = post(invocations, split(broken))
    assert status == 400
    assert body == {  # no stack trace, no echo of the input
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "column 'recency' is greater than 'T' for some customers",
        "sqlstate": "KAM00",
        "error_class": "INVALID_PARAMETER_VALUE",
    }
