"""The registered subscription (contractual) model: sBG parameters by acquisition cohort, scored with numpy.

Input, one row per active subscriber: ``customer_id``, ``cohort`` (the first day of the acquisition
period, as text ``YYYY-MM-DD`` or a date), ``renewals`` (renewals made so far) and ``price`` (charged each
period). A cohort the model has not seen is scored with the pooled parameters. Output: ``customer_id``,
``p_renew`` (P(renews at the next decision)), ``churn_risk`` (P(churns at one of the next
``risk_periods`` decisions: the configured number of days)), ``expected_remaining_lifetime`` (further
renewals expected, at most ``horizon_periods``), ``derl`` and ``clv`` = price x DERL (discounted expected
residual lifetime, Fader & Hardie 2010; the current, paid period not counted).

Logged in MLflow's models-from-code form (``models/subscription_serving.py``), parameters as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema
from numpy.typing import NDArray

from models import sbg
from models.contract import CUSTOMER_ID, ContractError, canonical_ids
from models.pyfunc import CONFIG_ARTIFACT, PARAMS_ARTIFACT, InvalidInputError

__all__ = [
    "CAP_TOLERANCE",
    "DEFAULT_HORIZON",
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "SubscriptionModel",
    "SubscriptionParams",
    "at_lifetime_cap",
    "read_subscription_params",
    "score_subscribers",
    "subscription_signature",
    "write_subscription_params",
]

INPUT_COLUMNS = (CUSTOMER_ID, "cohort", "renewals", "price")
OUTPUT_COLUMNS = (CUSTOMER_ID, "p_renew", "churn_risk", "expected_remaining_lifetime", "derl", "clv")
DEFAULT_HORIZON = 1200
"""Expected remaining lifetime (and DERL) counts at most this many further periods (100 years of months): with
alpha <= 1 the undiscounted lifetime has no finite mean, and near alpha = 1 the sBG's heavy tail puts much of it
beyond any horizon (alpha 1.2, beta 4: 53% to 67% of the uncapped mean within 1,200 periods)."""
CAP_TOLERANCE = 0.01
"""The cap binds for a subscriber (:func:`at_lifetime_cap`) when their uncapped expected remaining lifetime is more
than this fraction above the capped one."""


@dataclass(frozen=True)
class SubscriptionParams:
    """The model: pooled sBG parameters, one pair per cohort (text ``YYYY-MM-DD``), and the scoring spec."""

    pooled: sbg.ShiftedBetaGeoParams
    cohorts: dict[str, sbg.ShiftedBetaGeoParams] = field(default_factory=dict)
    discount_rate: float = 0.0
    """Per billing period."""
    risk_periods: int = 3
    horizon_periods: int = DEFAULT_HORIZON
    billing_period: str = "month"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "subscription_sbg",
            "pooled": self.pooled.as_dict(),
            "cohorts": {k: v.as_dict() for k, v in sorted(self.cohorts.items())},
            "discount_rate": self.discount_rate,
            "risk_periods": self.risk_periods,
            "horizon_periods": self.horizon_periods,
            "billing_period": self.billing_period,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubscriptionParams:
        return cls(
            pooled=sbg.ShiftedBetaGeoParams(**data["pooled"]),
            cohorts={k: sbg.ShiftedBetaGeoParams(**v) for k, v in data["cohorts"].items()},
            discount_rate=float(data["discount_rate"]),
            risk_periods=int(data["risk_periods"]),
            horizon_periods=int(data["horizon_periods"]),
            billing_period=str(data["billing_period"]),
        )

    def for_cohort(self, cohort: str) -> sbg.ShiftedBetaGeoParams:
        return self.cohorts.get(cohort, self.pooled)


def write_subscription_params(params: SubscriptionParams, path: Path) -> Path:
    path.write_text(json.dumps(params.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_subscription_params(path: Path) -> SubscriptionParams:
    return SubscriptionParams.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"missing column '{missing[0]}' (needs {', '.join(INPUT_COLUMNS)})")
    out = pd.DataFrame({CUSTOMER_ID: canonical_ids(frame[CUSTOMER_ID])})
    out["cohort"] = pd.to_datetime(frame["cohort"], errors="coerce").dt.strftime("%Y-%m-%d").to_numpy()
    if out["cohort"].isna().any():
        raise ContractError("column 'cohort' must hold dates (the first day of the acquisition period)")
    for column in ("renewals", "price"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ContractError(f"column '{column}' must hold finite numbers >= 0")
        out[column] = values
    if np.any(out["renewals"].to_numpy() != np.floor(out["renewals"].to_numpy())):
        raise ContractError("column 'renewals' must hold whole numbers")
    return out


def score_subscribers(params: SubscriptionParams, frame: pd.DataFrame) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` for each input row, in the input's order (one pass per cohort)."""
    rows = _checked(frame)
    n = rows["renewals"].to_numpy(dtype=np.int64)
    out = {name: np.full(len(rows), np.nan) for name in OUTPUT_COLUMNS[1:]}
    for cohort, index in rows.groupby("cohort", sort=True).indices.items():
        p = params.for_cohort(str(cohort))
        renewals = n[index]
        out["p_renew"][index] = sbg.p_renew(p, renewals)
        out["churn_risk"][index] = sbg.churn_risk(p, params.risk_periods, renewals)
        out["expected_remaining_lifetime"][index] = sbg.expected_remaining_lifetime(p, renewals, params.horizon_periods)
        out["derl"][index] = sbg.derl(p, params.discount_rate, renewals, params.horizon_periods)
    result = pd.DataFrame({CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(), **out})
    result["clv"] = rows["price"].to_numpy() * result["derl"].to_numpy()
    return result.loc[:, list(OUTPUT_COLUMNS)]


def at_lifetime_cap(params: SubscriptionParams, frame: pd.DataFrame) -> NDArray[np.bool_]:
    """For each input row (:data:`INPUT_COLUMNS`): whether ``horizon_periods`` decides its
    ``expected_remaining_lifetime``: without the cap it would be more than :data:`CAP_TOLERANCE` higher, i.e.
    (beta + n) / (alpha - 1) above the capped value by that much, or infinite (alpha <= 1). The scores are the
    same either way; this says where they are "renewals within the horizon" rather than the mean lifetime."""
    rows = _checked(frame)
    n = rows["renewals"].to_numpy(dtype=np.int64)
    binds = np.zeros(len(rows), dtype=bool)
    for cohort, index in rows.groupby("cohort", sort=True).indices.items():
        p = params.for_cohort(str(cohort))
        capped = sbg.expected_remaining_lifetime(p, n[index], params.horizon_periods)
        uncapped = sbg.expected_remaining_lifetime(p, n[index])
        binds[index] = uncapped > capped * (1.0 + CAP_TOLERANCE)
    return binds


def subscription_signature() -> ModelSignature:
    """Inputs typed ``Any`` (checked by :func:`score_subscribers`, as the CLV model's contract does)."""
    any_type = AnyType()  # type: ignore[no-untyped-call]
    inputs = Schema([ColSpec(any_type, name) for name in INPUT_COLUMNS])
    outputs = Schema([ColSpec("string" if c == CUSTOMER_ID else "double", c) for c in OUTPUT_COLUMNS])
    return ModelSignature(inputs=inputs, outputs=outputs)


class SubscriptionModel(PythonModel):
    """The pyfunc wrapper: parameters from the ``params`` artifact, the training config from ``config``."""

    def __init__(self) -> None:
        self.params: SubscriptionParams | None = None
        self.config_yaml: str | None = None

    def load_context(self, context: Any) -> None:
        self.params = read_subscription_params(Path(context.artifacts[PARAMS_ARTIFACT]))
        config = context.artifacts.get(CONFIG_ARTIFACT)
        self.config_yaml = Path(config).read_text(encoding="utf-8") if config else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.params is None:
            self.load_context(context)
        assert self.params is not None
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            return score_subscribers(self.params, frame).reset_index(drop=True)
        except ContractError as exc:
            raise InvalidInputError(str(exc)) from None
