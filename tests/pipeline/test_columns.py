from __future__ import annotations

import pandas as pd
import pytest

from pipeline.columns import CUSTOMER_COLUMNS, HOLDOUT_COLUMNS, StageContractError, check_stage_output


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "frequency": [0.0, 2.0],
            "recency": [0.0, 3.0],
            "T": [5.0, 6.0],
            "monetary_value": [0.0, 12.5],
            "total_spend": [10.0, 35.0],
            "first_purchase": pd.to_datetime(["1997-01-01", "1997-01-02"]),
        }
    )


def test_a_complete_summary_passes_and_money_is_optional_without_amounts() -> None:
    check_stage_output(_customers(), CUSTOMER_COLUMNS, "prepare")
    check_stage_output(_customers().drop(columns=["monetary_value", "total_spend"]), CUSTOMER_COLUMNS, "prepare", False)


def test_a_missing_column_names_the_stage_and_the_column() -> None:
    with pytest.raises(StageContractError, match=r"^prepare: output lacks column\(s\) total_spend$"):
        check_stage_output(_customers().drop(columns=["total_spend"]), CUSTOMER_COLUMNS, "prepare")


def test_a_column_of_the_wrong_type_is_refused() -> None:
    frame = _customers().assign(frequency=["0", "2"])
    with pytest.raises(StageContractError, match="prepare: column 'frequency' has dtype"):
        check_stage_output(frame, CUSTOMER_COLUMNS, "prepare")
    with pytest.raises(StageContractError, match="column 'recency' has dtype bool"):
        check_stage_output(_customers().assign(recency=[True, False]), CUSTOMER_COLUMNS, "prepare")


def test_the_holdout_table_uses_the_one_naming() -> None:
    assert {"expected_purchases", "expected_revenue", "p_alive", "churn_risk"} <= set(HOLDOUT_COLUMNS)
    assert not any(c.startswith("predicted_") for c in HOLDOUT_COLUMNS)
