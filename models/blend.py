"""The blend of BTYD and the machine-learning challenger as one scoring function, shared by production training
(the scores table), the registered model (pyfunc, REST, Spark) and ``clv score``.

The blend's input is a per-customer frame with the BTYD summary columns (:data:`models.contract.REQUIRED_COLUMNS`)
and the challenger's features (:data:`models.challenger_features.FEATURE_COLUMNS`), as built by
:func:`models.challenger_features.serving_input`. Over the horizon H (the holdout length of the contest) it
gives BTYD's expected revenue, the challenger's (already rescaled to BTYD's total at training time: the
factor is part of the saved challenger), their weighted mean, the blended churn risk over H and
``value_model`` = ``blend``. The structural quantities (P(alive), expected purchases, order value, the
discounted ``clv``) stay BTYD's and come from :func:`models.scoring.score_customers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import purchase, spend
from models.bundle import CLVModelParams
from models.challenger import Challenger, blend
from models.challenger_features import FEATURE_COLUMNS
from models.clv import days_to_units
from models.contract import CUSTOMER_ID, ContractError, check_customer_summary, required_columns
from models.scoring import score_columns, score_customers

__all__ = [
    "NULLABLE_FEATURES",
    "VALUE_MODEL",
    "BlendModel",
    "blend_columns",
    "blend_scores",
    "btyd_over",
    "check_features",
    "score_blend",
    "value_column",
]

VALUE_MODEL = "value_model"
"""The column that says which model produced the value: ``btyd`` or ``blend``."""

NULLABLE_FEATURES = frozenset(
    {"mean_gap_days", "std_gap_days", "last_gap_days", "overdue_ratio", "repeat_mean_spend", "last_to_mean_spend"}
)
"""Features that are missing (NaN, or null in JSON) for a customer with a single active period."""


def value_column(horizon_days: int) -> str:
    """The winner's value over H: the column that ranks customers when the blend is served."""
    return f"expected_revenue_{horizon_days}d"


def blend_columns(horizon_days: int) -> tuple[str, ...]:
    """The blend's output columns after ``customer_id``, in order."""
    h = horizon_days
    return (
        f"btyd_expected_revenue_{h}d",
        f"challenger_expected_revenue_{h}d",
        value_column(h),
        f"churn_risk_{h}d",
        VALUE_MODEL,
    )


@dataclass(frozen=True)
class BlendModel:
    """What the registered model serves when the blend wins: BTYD, the fitted challenger, the weight and H."""

    btyd: CLVModelParams
    challenger: Challenger
    weight: float
    horizon_days: int

    def __post_init__(self) -> None:
        if not self.btyd.has_spend:
            raise ValueError("the blend needs a BTYD model with a spend model: it blends revenue")
        if not 0.0 <= self.weight <= 1.0 or self.horizon_days < 1:
            raise ValueError(f"blend weight {self.weight} or horizon {self.horizon_days} days out of range")

    def input_columns(self) -> tuple[str, ...]:
        return (*required_columns(True), *FEATURE_COLUMNS)

    def output_columns(self) -> list[str]:
        return [*score_columns(self.btyd), *blend_columns(self.horizon_days)]


def check_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The challenger's feature columns as float64 (None becomes NaN), or ContractError with one line: a
    missing column, text, infinity, or a missing value outside :data:`NULLABLE_FEATURES`."""
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"missing challenger feature column(s): {', '.join(missing)}")
    out = {}
    for column in FEATURE_COLUMNS:
        values = frame[column]
        if values.dtype == object:
            values = values.infer_objects()
            if values.isna().all():
                values = values.astype(np.float64)
        if not pd.api.types.is_numeric_dtype(values) or values.dtype.kind == "b":
            kind = "text" if values.dtype == object or pd.api.types.is_string_dtype(values) else values.dtype
            raise ContractError(f"column '{column}' must be numeric, got {kind}")
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(numbers).any():
            raise ContractError(f"column '{column}' has infinite values")
        if column not in NULLABLE_FEATURES and np.isnan(numbers).any():
            raise ContractError(f"column '{column}' has null or NaN values")
        out[column] = numbers
    return pd.DataFrame(out, index=frame.index)


def btyd_over(model: CLVModelParams, customers: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """BTYD's ``expected_revenue`` and ``churn_risk`` over the next ``horizon_days``, row for row of a checked
    summary (float64 ``frequency``, ``recency``, ``T``, ``monetary_value``)."""
    units = days_to_units(horizon_days, model.spec.time_unit)
    f, r, t = (customers[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    order_value = spend.expected_order_value(model.spend, f, customers["monetary_value"].to_numpy(dtype=np.float64))
    revenue = purchase.expected_purchases(model.purchase, units, f, r, t) * order_value
    risk = purchase.p_no_purchase(model.purchase, units, f, r, t)
    return pd.DataFrame({"expected_revenue": revenue, "churn_risk": risk}, index=customers.index)


def blend_scores(model: BlendModel, frame: pd.DataFrame) -> pd.DataFrame:
    """``customer_id`` and :func:`blend_columns`, row for row of ``frame`` (summary and feature columns)."""
    summary = check_customer_summary(frame, spend=True)
    feats = check_features(frame)
    btyd = btyd_over(model.btyd, summary, model.horizon_days)
    ml = model.challenger.predict(feats)
    mixed = blend(btyd, ml, model.weight)
    h = model.horizon_days
    out = pd.DataFrame(
        {
            CUSTOMER_ID: summary[CUSTOMER_ID],
            f"btyd_expected_revenue_{h}d": btyd["expected_revenue"],
            f"challenger_expected_revenue_{h}d": ml["expected_revenue"],
            value_column(h): mixed["expected_revenue"],
            f"churn_risk_{h}d": mixed["churn_risk"],
            VALUE_MODEL: "blend",
        },
        index=frame.index,
    )
    numeric = out.select_dtypes("number").to_numpy()
    if not np.isfinite(numeric).all():
        raise ContractError("the blend gave NaN or infinite values for some customers")
    return out


def score_blend(model: BlendModel, frame: pd.DataFrame) -> pd.DataFrame:
    """BTYD's scores (:func:`models.scoring.score_customers`) with the blend's columns, row for row."""
    scores = score_customers(model.btyd, frame)
    blended = blend_scores(model, frame)
    return pd.concat([scores, blended.drop(columns=CUSTOMER_ID)], axis=1)
