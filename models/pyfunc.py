"""The MLflow pyfunc model: a CLV model whose parameters are stored as JSON, scored with numpy.

Logged in MLflow's models-from-code form (``models/serving.py`` is the code file) with this package
attached as code, so loading it needs numpy, scipy, pandas and mlflow, and no pickles.

Input: a per-customer summary (customer_id, frequency, recency, T, monetary_value).
Output: customer_id, p_alive, churn_risk, risk_tier, expected_purchases_<N>d, expected_order_value, clv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from models.bundle import CLVModelParams
from models.scoring import score_customers

PARAMS_ARTIFACT = "params"
CONFIG_ARTIFACT = "config"


def write_params(model: CLVModelParams, path: Path) -> Path:
    path.write_text(json.dumps(model.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_params(path: Path) -> CLVModelParams:
    return CLVModelParams.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


class CLVModel(PythonModel):
    def __init__(self) -> None:
        self.model: CLVModelParams | None = None
        self.config_yaml: str | None = None

    def load_context(self, context: Any) -> None:
        self.model = read_params(Path(context.artifacts[PARAMS_ARTIFACT]))
        config = context.artifacts.get(CONFIG_ARTIFACT)
        # The training config (prepare rules, units, horizons) travels with the model for batch scoring.
        self.config_yaml = Path(config).read_text(encoding="utf-8") if config else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return score_customers(self.model, frame).reset_index(drop=True)
