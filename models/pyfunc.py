"""The MLflow pyfunc model: a CLV model whose parameters are stored as JSON, scored with numpy.

Logged in MLflow's models-from-code form (``models/serving.py`` is the code file) with this package
attached as code, so loading it needs numpy, scipy, pandas and mlflow, and no pickles.

Input: a per-customer summary (customer_id, frequency, recency, T, and monetary_value when the model
has a spend model), in natural types: ids as text or whole numbers, counts and times as ints or floats.
Output: customer_id (as text), p_alive, churn_risk, risk_tier, expected_purchases_<N>d, and with a
spend model expected_order_value and clv.

When the BTYD x machine-learning blend won the contest, the model also holds the fitted challenger
(``challenger`` artifact, skops: no pickle, and :func:`models.challenger.load` refuses unexpected types)
and the blend's weight and horizon H (``blend`` artifact, JSON). Its input then also has the challenger's
features (:data:`models.challenger_features.FEATURE_COLUMNS`, built by
:func:`models.challenger_features.serving_input`), and its output the blend's columns over H
(:func:`models.blend.blend_columns`: ``expected_revenue_<H>d`` and ``churn_risk_<H>d`` from the blend,
``value_model`` = ``blend``); loading it also needs scikit-learn and skops.

Bad input raises :class:`InvalidInputError`: an MLflow client error (``INVALID_PARAMETER_VALUE``, HTTP 400
from ``mlflow models serve``) whose message is the contract's one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc.model import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from models.bundle import CLVModelParams
from models.contract import CUSTOMER_ID, ContractError, required_columns
from models.scoring import score_columns, score_customers

if TYPE_CHECKING:  # scikit-learn and skops are imported only by a model that holds the blend
    from models.blend import BlendModel

__all__ = [
    "BLEND_ARTIFACT",
    "CHALLENGER_ARTIFACT",
    "CONFIG_ARTIFACT",
    "PARAMS_ARTIFACT",
    "CLVModel",
    "InvalidInputError",
    "model_signature",
    "read_blend",
    "read_params",
    "write_blend",
    "write_params",
]

PARAMS_ARTIFACT = "params"
CONFIG_ARTIFACT = "config"
CHALLENGER_ARTIFACT = "challenger"
BLEND_ARTIFACT = "blend"
TEXT_COLUMNS = (CUSTOMER_ID, "risk_tier", "value_model")


def write_params(model: CLVModelParams, path: Path) -> Path:
    path.write_text(json.dumps(model.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_params(path: Path) -> CLVModelParams:
    return CLVModelParams.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def write_blend(blend: BlendModel, folder: Path) -> dict[str, str]:
    """The blend's artifacts in ``folder`` (the challenger as skops, the weight and H as JSON), by artifact name."""
    from models import challenger

    saved = challenger.save(blend.challenger, folder / "challenger.skops")
    settings = folder / "blend.json"
    settings.write_text(json.dumps({"weight": blend.weight, "horizon_days": blend.horizon_days}), encoding="utf-8")
    return {CHALLENGER_ARTIFACT: str(saved), BLEND_ARTIFACT: str(settings)}


def read_blend(btyd: CLVModelParams, artifacts: dict[str, str]) -> BlendModel | None:
    """The blend of a model logged with :func:`write_blend`'s artifacts; None for a BTYD-only model."""
    if CHALLENGER_ARTIFACT not in artifacts:
        return None
    from models import challenger
    from models.blend import BlendModel

    settings = json.loads(Path(artifacts[BLEND_ARTIFACT]).read_text(encoding="utf-8"))
    fitted = challenger.load(Path(artifacts[CHALLENGER_ARTIFACT]))
    return BlendModel(btyd, fitted, float(settings["weight"]), int(settings["horizon_days"]))


def model_signature(model: CLVModelParams, blend: BlendModel | None = None) -> ModelSignature:
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
    names = required_columns(model.has_spend) if blend is None else blend.input_columns()
    inputs = Schema([ColSpec(any_type, name) for name in names])
    produced = score_columns(model) if blend is None else blend.output_columns()
    outputs = Schema([ColSpec("string" if name in TEXT_COLUMNS else "double", name) for name in produced])
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
        self.blend: BlendModel | None = None
        self.config_yaml: str | None = None

    def load_context(self, context: Any) -> None:
        self.model = read_params(Path(context.artifacts[PARAMS_ARTIFACT]))
        self.blend = read_blend(self.model, dict(context.artifacts))
        config = context.artifacts.get(CONFIG_ARTIFACT)
        # The training config (prepare rules, units, horizons) travels with the model for batch scoring.
        self.config_yaml = Path(config).read_text(encoding="utf-8") if config else None

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            if self.blend is not None:
                from models.blend import score_blend

                return score_blend(self.blend, frame).reset_index(drop=True)
            return score_customers(self.model, frame).reset_index(drop=True)
        except ContractError as exc:
            raise InvalidInputError(str(exc)) from None
