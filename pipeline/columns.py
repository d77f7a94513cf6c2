"""The column contract between stages: what each stage's output frame must hold, checked where it is handed on.

One naming across the product: model outputs are ``expected_*`` (``expected_purchases``,
``expected_purchases_<N>d``, ``expected_revenue``, ``expected_order_value``), ``p_alive`` and ``churn_risk``;
observed values are ``actual_*``; the baselines' columns are ``baseline_<name>_*``. The scoring input (the
per-customer summary) has its own contract in :mod:`models.contract`, which serving shares.

Checks here are cheap (column names and dtypes, no pass over the rows): a failure is a bug in a stage, not
bad input, and says which stage broke which column.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from models.contract import CUSTOMER_ID, PURCHASE_COLUMNS

__all__ = [
    "CALIBRATION_COLUMNS",
    "CUSTOMER_COLUMNS",
    "HOLDOUT_COLUMNS",
    "MONEY",
    "TEXT",
    "StageContractError",
    "check_stage_output",
]

CUSTOMER_COLUMNS: tuple[str, ...] = (CUSTOMER_ID, *PURCHASE_COLUMNS, "monetary_value", "total_spend", "first_purchase")
"""prepare's per-customer summary over the whole history (``PreparedData.full``)."""
CALIBRATION_COLUMNS: tuple[str, ...] = (
    *CUSTOMER_COLUMNS,
    "frequency_holdout",
    "duration_holdout",
    "revenue_holdout",
    "recent_spend",
    "recent_purchases",
)
"""prepare's calibration summary with the holdout actuals (``PreparedData.calibration``)."""
HOLDOUT_COLUMNS: tuple[str, ...] = (
    CUSTOMER_ID,
    "actual_purchases",
    "expected_purchases",
    "p_alive",
    "churn_risk",
    "actual_revenue",
    "expected_revenue",
)
"""validate's per-customer holdout table (``Validation.holdout``)."""
MONEY: frozenset[str] = frozenset(
    {"monetary_value", "total_spend", "revenue_holdout", "recent_spend", "actual_revenue", "expected_revenue"}
)
"""Columns a feed without amounts (or a model without a spend model) does not have."""


TEXT: frozenset[str] = frozenset({CUSTOMER_ID, "risk_tier", "value_segment"})
"""Columns that hold text; every other column holds numbers or dates."""


class StageContractError(RuntimeError):
    """A stage handed on a frame that breaks the column contract (a bug, not bad input)."""


def check_stage_output(frame: pd.DataFrame, columns: Iterable[str], stage: str, money: bool = True) -> None:
    """Every expected column is there, ``customer_id`` is text and the others are numeric or dates."""
    expected = [c for c in columns if money or c not in MONEY]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise StageContractError(f"{stage}: output lacks column(s) {', '.join(missing)}")
    for column in expected:
        dtype = frame[column].dtype
        if column in TEXT:
            types = pd.api.types
            ok = types.is_string_dtype(dtype) or types.is_object_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
        else:
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            ok = numeric or pd.api.types.is_datetime64_any_dtype(dtype)
        if not ok:
            raise StageContractError(f"{stage}: column {column!r} has dtype {dtype}")
