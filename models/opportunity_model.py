"""The registered discrete-opportunity model: BG/BB parameters, scored with numpy (:mod:`models.bgbb`).

Input, one row per customer: ``customer_id``, ``frequency`` (x: opportunities with a purchase after the
first), ``recency`` (t_x: the last of them, 0 without one) and ``n_periods`` (n: opportunities since the
first purchase). Output: ``customer_id``, ``p_alive`` (P(still active after the n-th opportunity)),
``p_alive_next`` (at the next one) and ``expected_transactions`` over the next ``horizon`` opportunities.
With a spend model (a feed with amounts), the input also needs ``monetary_value`` (the mean spend of the x
opportunities) and the output adds ``expected_order_value`` (:func:`models.spend.expected_order_value`) and
``clv``: the expected order value times the expected transactions of the next ``horizon`` opportunities,
the k-th discounted k periods at ``discount_rate`` per period (:func:`models.bgbb.discounted_transactions`).
Logged in the models-from-code form (``models/opportunity_serving.py``), parameters as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from models import bgbb
from models import spend as spend_models
from models.contract import (
    CUSTOMER_ID,
    ContractError,
    canonical_ids,
    check_history_rules,
    check_spend_without_repeats,
    numeric_column,
)
from models.pyfunc import CONFIG_ARTIFACT, PARAMS_ARTIFACT, InvalidInputError

__all__ = [
    "INPUT_COLUMNS",
    "MONEY_COLUMNS",
    "OUTPUT_COLUMNS",
    "OpportunityModel",
    "OpportunityParams",
    "check_histories",
    "opportunity_signature",
    "score_opportunities",
]

INPUT_COLUMNS = (CUSTOMER_ID, "frequency", "recency", "n_periods")
OUTPUT_COLUMNS = (CUSTOMER_ID, "p_alive", "p_alive_next", "expected_transactions")
MONEY_COLUMNS = ("expected_order_value", "clv")
"""Added to the output by a model with a spend model; its input then also needs ``monetary_value``."""


@dataclass(frozen=True)
class OpportunityParams:
    params: bgbb.BetaGeoBetaBinomParams
    horizon: int = 12
    period: str = "month"
    spend: spend_models.SpendParams | None = None
    discount_rate: float = 0.0
    """Per opportunity (``business.billing_period``), from ``score.annual_discount_rate``."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "opportunity_bgbb",
            "params": self.params.as_dict(),
            "horizon": self.horizon,
            "period": self.period,
        }
        if self.spend is not None:
            out |= {
                "spend_model": spend_models.spend_model_name(self.spend),
                "spend_params": self.spend.as_dict(),
                "discount_rate": self.discount_rate,
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpportunityParams:
        money = spend_models.make_spend_params(data.get("spend_model", "none"), data.get("spend_params"))
        return cls(
            bgbb.BetaGeoBetaBinomParams(**data["params"]),
            int(data["horizon"]),
            str(data["period"]),
            money,
            float(data.get("discount_rate", 0.0)),
        )

    @property
    def output_columns(self) -> tuple[str, ...]:
        return OUTPUT_COLUMNS if self.spend is None else (*OUTPUT_COLUMNS, *MONEY_COLUMNS)

    @property
    def input_columns(self) -> tuple[str, ...]:
        return INPUT_COLUMNS if self.spend is None else (*INPUT_COLUMNS, "monetary_value")

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        return path


def score_opportunities(model: OpportunityParams, frame: pd.DataFrame) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` for each row, in the input's order; ContractError on a bad history."""
    missing = [c for c in model.input_columns if c not in frame.columns]
    if missing:
        raise ContractError(f"missing column '{missing[0]}' (needs {', '.join(model.input_columns)})")
    ids = canonical_ids(frame[CUSTOMER_ID])
    x, t_x, n = check_histories(frame)
    p = model.params
    out = pd.DataFrame(
        {
            CUSTOMER_ID: ids.to_numpy(),
            "p_alive": bgbb.p_alive(p, x, t_x, n),
            "p_alive_next": bgbb.p_alive(p, x, t_x, n, 1),
            "expected_transactions": bgbb.expected_transactions(p, model.horizon, x, t_x, n),
        }
    )
    if model.spend is not None:
        m = numeric_column(frame["monetary_value"], "monetary_value")
        check_spend_without_repeats(x, m)
        order_value = spend_models.expected_order_value(model.spend, x, m)
        discounted = bgbb.discounted_transactions(p, model.horizon, model.discount_rate, x, t_x, n)
        out["expected_order_value"] = order_value
        out["clv"] = order_value * discounted
    return out


def check_histories(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frequency``, ``recency`` and ``n_periods`` as float64, or ContractError with one line naming the
    column, ruled as :func:`models.contract.check_customer_summary` rules the BG/NBD summary: numbers (no
    text, infinity, null or negative value), whole numbers, frequency <= recency <= n_periods, and recency 0
    where frequency is 0."""
    names = INPUT_COLUMNS[1:]
    x, t_x, n = (numeric_column(frame[column], column) for column in names)
    ordered = (("frequency", "recency"), ("recency", "n_periods"))
    check_history_rules(dict(zip(names, (x, t_x, n), strict=True)), whole=tuple(names), ordered=ordered)
    return x, t_x, n


def opportunity_signature(model: OpportunityParams | None = None) -> ModelSignature:
    """The signature of ``model`` (without one, or without a spend model: the columns without money)."""
    any_type = AnyType()  # type: ignore[no-untyped-call]
    names_in = INPUT_COLUMNS if model is None else model.input_columns
    names_out = OUTPUT_COLUMNS if model is None else model.output_columns
    inputs = Schema([ColSpec(any_type, name) for name in names_in])
    outputs = Schema([ColSpec("string" if c == CUSTOMER_ID else "double", c) for c in names_out])
    return ModelSignature(inputs=inputs, outputs=outputs)


class OpportunityModel(PythonModel):
    def __init__(self) -> None:
        self.model: OpportunityParams | None = None
        self.config_yaml: str | None = None

    def load_context(self, context: Any) -> None:
        self.model = OpportunityParams.from_dict(json.loads(Path(context.artifacts[PARAMS_ARTIFACT]).read_text()))
        config = context.artifacts.get(CONFIG_ARTIFACT)
        self.config_yaml = Path(config).read_text(encoding="utf-8") if config else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            return score_opportunities(self.model, frame).reset_index(drop=True)
        except ContractError as exc:
            raise InvalidInputError(str(exc)) from None
