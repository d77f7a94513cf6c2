from __future__ import annotations

import pandas as pd
import pytest

from models.contract import ContractError, check_customer_summary


def _frame(**overrides: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {
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
        ({"monetary_value": [float("nan"), 0.0]}, "'monetary_value' has null, NaN or infinite"),
        ({"T": ["x", "y"]}, "'T' must be numeric"),
        ({"customer_id": [None, "b"]}, "'customer_id' has null"),
    ],
)
def test_contract_violations_name_the_column(overrides: dict[str, list[object]], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        check_customer_summary(_frame(**overrides))


def test_missing_columns_are_listed() -> None:
    with pytest.raises(ContractError, match="missing required column\\(s\\): T, monetary_value"):
        check_customer_summary(_frame().drop(columns=["T", "monetary_value"]))
