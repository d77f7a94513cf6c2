"""The blend of BTYD and the machine-learning challenger as one scoring function, shared by production training
(the scores table), the registered model (pyfunc, REST, Spark) and ``clv score``.

The blend's input is a per-customer frame with the BTYD summary columns (:data:`models.contract.REQUIRED_COLUMNS`)
and the challenger's features (:data:`models.challenger_features.FEATURE_COLUMNS`), as built by
:func:`models.challenger_features.serving_input`. Over the horizon H (the holdout length of the contest) it
gives BTYD's expected revenue, the challenger's (already rescaled to BTYD's total at training time: the
factor is part of the saved challenger), their weighted mean, the blended churn risk over H and
``value_model`` = ``blend``. The structural quantities (P(alive), expected purchases, order value) stay BTYD's
and come from :func:`models.scoring.score_customers`; :func:`winner_value` then makes ``clv``, ``churn_risk`` and
``risk_tier`` the winner's and keeps BTYD's as ``btyd_clv`` and ``btyd_churn_risk``.
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
from models.contract import CUSTOMER_ID, ContractError, check_customer_summary, numeric_column, required_columns
from models.scoring import assign_risk_tier, score_columns, score_customers

__all__ = [
    "BTYD_VALUE_COLUMNS",
    "NULLABLE_FEATURES",
    "VALUE_MODEL",
    "BlendModel",
    "blend_columns",
    "blend_scores",
    "btyd_over",
    "check_features",
    "score_blend",
    "value_column",
    "winner_value",
]

VALUE_MODEL = "value_model"
"""The column that says which model produced the value: ``btyd`` or ``blend``."""

BTYD_VALUE_COLUMNS = ("btyd_clv", "btyd_churn_risk")
"""BTYD's own ``clv`` and 90-day ``churn_risk``, kept after the blend's columns when the blend is served."""

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
        return [*score_columns(self.btyd), *blend_columns(self.horizon_days), *BTYD_VALUE_COLUMNS]


def check_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The challenger's feature columns as float64 (None becomes NaN), or ContractError with one line: a
    missing column, text, infinity, or a missing value outside :data:`NULLABLE_FEATURES`."""
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"missing challenger feature column(s): {', '.join(missing)}")
    out = {
        column: numeric_column(frame[column], column, nullable=column in NULLABLE_FEATURES, negative=True)
        for column in FEATURE_COLUMNS
    }
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


def winner_value(scores: pd.DataFrame, btyd: CLVModelParams, horizon_days: int) -> pd.DataFrame:
    """BTYD's scores with the blend's columns (:func:`blend_columns`) made the winner's: the one place the
    registered model and the training scores both take ``clv``, ``churn_risk`` and ``risk_tier`` from.

    - ``clv`` is BTYD's discounted CLV times the blend's ratio over H, ``expected_revenue_<H>d`` /
      ``btyd_expected_revenue_<H>d`` (1 where BTYD's is 0), per customer; so are ``clv_lower``/``clv_upper``
      when BTYD has posterior draws. BTYD's is kept as ``btyd_clv``.
    - ``churn_risk`` is the blend's ``churn_risk_<H>d`` (it then covers H days, the horizon the contest judged)
      and ``risk_tier`` follows it with BTYD's tiers; BTYD's (over ``churn_horizon_days``) is kept as
      ``btyd_churn_risk``.
    """
    h = horizon_days
    btyd_revenue = scores[f"btyd_expected_revenue_{h}d"].to_numpy(dtype=np.float64)
    revenue = scores[value_column(h)].to_numpy(dtype=np.float64)
    safe = np.where(btyd_revenue > 0, btyd_revenue, 1.0)
    ratio = np.where(btyd_revenue > 0, revenue / safe, 1.0)
    risk = scores[f"churn_risk_{h}d"].to_numpy(dtype=np.float64)
    out = scores.assign(btyd_clv=scores["clv"], btyd_churn_risk=scores["churn_risk"])
    for column in ("clv", "clv_lower", "clv_upper"):
        if column in out.columns:
            out[column] = out[column].to_numpy(dtype=np.float64) * ratio
    out["churn_risk"] = risk
    out["risk_tier"] = assign_risk_tier(risk, btyd.spec.risk_tiers)
    return out


def score_blend(model: BlendModel, frame: pd.DataFrame) -> pd.DataFrame:
    """BTYD's scores (:func:`models.scoring.score_customers`) with the blend's columns, row for row, and the
    winner's ``clv``, ``churn_risk`` and ``risk_tier`` (:func:`winner_value`)."""
    scores = score_customers(model.btyd, frame)
    blended = blend_scores(model, frame)
    return winner_value(pd.concat([scores, blended.drop(columns=CUSTOMER_ID)], axis=1), model.btyd, model.horizon_days)
