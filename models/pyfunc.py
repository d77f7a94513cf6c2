"""The MLflow pyfunc model: a CLV model whose parameters are stored as JSON, scored with numpy.

Logged in MLflow's models-from-code form (``models/serving.py`` is the code file) with this package
attached as code, so loading it needs numpy, scipy, pandas and mlflow, and no pickles.

Input: a per-customer summary (customer_id, frequency, recency, T, and monetary_value when the model
has a spend model), in natural types: ids as text or whole numbers, counts and times as ints or floats.
Output: customer_id (as text), p_alive, churn_risk, risk_tier, expected_purchases_<N>d, and with a
spend model expected_order_value and clv.

Bad input raises :class:`InvalidInputError`: an MLflow client error (``INVALID_PARAMETER_VALUE``, HTTP 400
from ``mlflow models serve``) whose message is the contract's one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc.model import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from models.bundle import CLVModelParams
from models.contract import CUSTOMER_ID, ContractError, required_columns
from models.scoring import score_columns, score_customers

__all__ = [
    "CONFIG_ARTIFACT",
    "PARAMS_ARTIFACT",
    "CLVModel",
    "InvalidInputError",
    "model_signature",
    "read_params",
    "write_params",
]

PARAMS_ARTIFACT = "params"
CONFIG_ARTIFACT = "config"
TEXT_COLUMNS = (CUSTOMER_ID, "risk_tier")


def write_params(model: CLVModelParams, path: Path) -> Path:
    path.write_text(json.dumps(model.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_params(path: Path) -> CLVModelParams:
    return CLVModelParams.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def model_signature(model: CLVModelParams) -> ModelSignature:
    """The model's MLflow signature: the input columns by name, the output columns with their types.

    The inputs are typed ``Any``: MLflow's own enforcement refuses an int64 count for a ``double`` column
    ("Can not safely convert int64 to float64") and an int id for a ``string`` one, so the types are
    checked and converted by the contract (:func:`models.contract.check_customer_summary`) instead. The
    names still document the input and let ``spark_udf`` take the columns by position or with no
    arguments. Measured cost: MLflow passes ``Any`` columns through value by value, about 5 us of CPU per
    row (on top of about 3.5 us of scoring), nothing for a REST request; the batch CLI can call the
    Python model directly. REST takes JSON (``dataframe_split``, ``dataframe_records``); MLflow's CSV
    parser needs concrete column types.
    """
    any_type = AnyType()  # type: ignore[no-untyped-call]
    inputs = Schema([ColSpec(any_type, name) for name in required_columns(model.has_spend)])
    outputs = Schema([ColSpec("string" if name in TEXT_COLUMNS else "double", name) for name in score_columns(model)])
    return ModelSignature(inputs=inputs, outputs=outputs)


class InvalidInputError(MlflowException, ContractError):
    """A contract violation as an MLflow client error: HTTP 400 with the contract's one-line message.

    MLflow's scoring server rewrites ``message`` to prefix the whole input DataFrame; the message is
    kept as the one line the contract gave (the input is the client's own, and can be large).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._one_line

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_one_line"):
            self._one_line = str(value)


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
        try:
            return score_customers(self.model, frame).reset_index(drop=True)
        except ContractError as exc:
            raise InvalidInputError(str(exc)) from None
