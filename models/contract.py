"""The column contract of a per-customer summary, checked at the boundary before any scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd

CUSTOMER_ID = "customer_id"
SUMMARY_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T", "monetary_value")
REQUIRED_COLUMNS: tuple[str, ...] = (CUSTOMER_ID, *SUMMARY_COLUMNS)


class ContractError(ValueError):
    """The per-customer summary does not satisfy the column contract."""


def check_customer_summary(customers: pd.DataFrame) -> None:
    """Raise ContractError naming the first column that breaks the contract.

    frequency is a whole number >= 0; 0 <= recency <= T; monetary_value >= 0 and finite; no column is
    missing or null; recency is 0 whenever frequency is 0.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in customers.columns]
    if missing:
        raise ContractError(f"missing required column(s): {', '.join(missing)}")
    if customers[CUSTOMER_ID].isna().any():
        raise ContractError(f"column '{CUSTOMER_ID}' has null values")
    for column in SUMMARY_COLUMNS:
        if not pd.api.types.is_numeric_dtype(customers[column]):
            raise ContractError(f"column '{column}' must be numeric, got {customers[column].dtype}")
        values = customers[column].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ContractError(f"column '{column}' has null, NaN or infinite values")
        if (values < 0).any():
            raise ContractError(f"column '{column}' has negative values")
    frequency = customers["frequency"].to_numpy(dtype=np.float64)
    if (frequency != np.floor(frequency)).any():
        raise ContractError("column 'frequency' must hold whole numbers")
    if (customers["recency"] > customers["T"]).any():
        raise ContractError("column 'recency' is greater than 'T' for some customers")
    if ((frequency == 0) & (customers["recency"].to_numpy() > 0)).any():
        raise ContractError("column 'recency' must be 0 where 'frequency' is 0")
