from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pytest
from pandas.api.extensions import ExtensionArray

from models.contract import ContractError, canonical_ids, check_customer_summary, required_columns

Column: TypeAlias = "list[object] | pd.Series[Any] | ExtensionArray"


def _frame(**overrides: Column) -> pd.DataFrame:
    data: dict[str, Column] = {
        "customer_id": ["a", "b"],
        "frequency": [2.0, 0.0],
        "recency": [10.0, 0.0],
        "T": [20.0, 5.0],
        "monetary_value": [12.5, 0.0],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_valid_summary_passes() -> None:
    check_customer_summary(_frame())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"frequency": [-1.0, 0.0]}, "'frequency' has negative"),
        ({"frequency": [1.5, 0.0]}, "whole numbers"),
        ({"recency": [30.0, 0.0]}, "'recency' is greater than 'T'"),
        ({"recency": [10.0, 1.0]}, "must be 0 where 'frequency' is 0"),
        ({"monetary_value": [12.5, 30.0]}, "'monetary_value' must be 0 where 'frequency' is 0: it is the mean spend"),
        ({"monetary_value": [float("nan"), 0.0]}, "'monetary_value' has null or NaN values"),
        ({"T": ["x", "y"]}, "'T' must be numeric, got text"),
        ({"T": [float("inf"), 20.0]}, "'T' has infinite values"),
        ({"monetary_value": [None, None]}, "'monetary_value' has null or NaN values"),
        ({"customer_id": [None, "b"]}, "'customer_id' has null"),
    ],
)
def test_contract_violations_name_the_column(overrides: dict[str, list[object]], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        check_customer_summary(_frame(**overrides))


def test_missing_columns_are_listed() -> None:
    with pytest.raises(ContractError, match="missing required column\\(s\\): T, monetary_value"):
        check_customer_summary(_frame().drop(columns=["T", "monetary_value"]))


def test_natural_types_come_out_canonical() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [17850, 12],
            "frequency": [2, 0],
            "recency": [10, 0],
            "T": np.array([20, 5], dtype=np.int32),
            "monetary_value": [12.5, 0],
            "country": ["UK", "FR"],
        }
    )
    checked = check_customer_summary(frame)
    assert list(checked.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert checked["customer_id"].tolist() == ["17850", "12"]
    assert all(checked[c].dtype == np.float64 for c in ("frequency", "recency", "T", "monetary_value"))
    assert checked["T"].tolist() == [20.0, 5.0]


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([17850, -3], ["17850", "-3"]),
        ([17850.0, 2.5], ["17850", "2.5"]),
        (np.array([17850.0, 1e20]), ["17850", "100000000000000000000"]),
        (["17850.0", " a ", "+12.00", "1.5e3", "017850", "x.0", "17850.5"], None),
        (pd.Series([1, "b", 2.0], dtype=object), ["1", "b", "2"]),  # mixed, as JSON can give
        (pd.array([5, 6], dtype="Int64"), ["5", "6"]),
        (pd.Series(["a", "17850.0"], dtype=object), ["a", "17850"]),
        (pd.Series([7, 2**70], dtype=object), ["7", str(2**70)]),  # beyond int64
    ],
)
def test_ids_become_text_as_prepare_writes_them(ids: object, expected: list[str] | None) -> None:
    result = canonical_ids(pd.Series(ids))
    if expected is None:  # prepare's rule: only a whole float loses its ".0..."; ASCII spaces are trimmed
        expected = ["17850", "a", "+12", "1.5e3", "017850", "x.0", "17850.5"]
    assert result.tolist() == expected


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([None, "b"], "has null or empty values"),
        (["", "b"], "has null or empty values"),
        (["  ", "b"], "has null or empty values"),
        ([float("nan"), 1.0], "has null or empty values"),
        ([True, False], "must hold text or whole numbers, got bool"),
        ([float("inf"), 1.5], "has infinite values"),
    ],
)
def test_bad_ids_are_refused(ids: list[object], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        check_customer_summary(_frame(customer_id=ids))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"frequency": [True, False]}, "'frequency' must be numeric, got bool"),
        ({"T": ["20", "5"]}, "'T' must be numeric"),
        ({"recency": pd.array([10, None], dtype="Int64")}, "'recency' has null or NaN values"),
        ({"monetary_value": [12.5, None]}, "'monetary_value' has null or NaN values"),
    ],
)
def test_bad_numbers_are_refused(overrides: dict[str, Column], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        check_customer_summary(_frame(**overrides))


def test_numbers_in_objects_are_accepted() -> None:
    """JSON through MLflow's ``Any`` columns arrives as Python objects."""
    frame = _frame(frequency=pd.Series([2, 0], dtype=object), T=pd.Series([20.0, 5], dtype=object))
    checked = check_customer_summary(frame)
    assert checked["frequency"].tolist() == [2.0, 0.0]
    assert checked["T"].dtype == np.float64


def test_without_a_spend_model_monetary_value_is_not_required() -> None:
    frame = _frame().drop(columns=["monetary_value"])
    assert list(check_customer_summary(frame, spend=False).columns) == ["customer_id", "frequency", "recency", "T"]
    assert required_columns(spend=False) == ("customer_id", "frequency", "recency", "T")
    with pytest.raises(ContractError, match="missing required column\\(s\\): monetary_value"):
        check_customer_summary(frame)
