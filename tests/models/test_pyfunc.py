from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

import models
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.contract import ContractError, required_columns
from models.gamma_gamma import GammaGammaParams
from models.pyfunc import PARAMS_ARTIFACT, InvalidInputError, model_signature, read_params, write_params
from models.scoring import score_customers

MODEL = CLVModelParams(
    purchase=BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881),
    spend=GammaGammaParams(p=6.2488, q=3.7446, v=15.4477),
    spec=ScoringSpec(horizons_days=(30, 90)),
)
HORIZONS = ["expected_purchases_30d", "expected_purchases_90d"]
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b"],
        "frequency": [2.0, 0.0],
        "recency": [30.43, 0.0],
        "T": [38.86, 38.86],
        "monetary_value": [22.35, 0.0],
    }
)


def test_params_file_is_plain_json(tmp_path: Path) -> None:
    path = write_params(MODEL, tmp_path / "params.json")
    assert json.loads(path.read_text())["purchase_params"]["r"] == 0.2425945
    assert read_params(path) == MODEL


def test_saved_model_loads_and_scores_like_the_batch_code(tmp_path: Path) -> None:
    package = Path(models.__file__).parent
    params = write_params(MODEL, tmp_path / "params.json")
    target = tmp_path / "model"
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=str(package / "serving.py"),
        artifacts={PARAMS_ARTIFACT: str(params)},
        code_paths=[str(package)],
        pip_requirements=["numpy", "pandas", "scipy", "mlflow"],
    )
    assert not list(target.rglob("*.pkl")), "parameters must be stored as data, not pickles"
    loaded = mlflow.pyfunc.load_model(str(target))
    pd.testing.assert_frame_equal(loaded.predict(CUSTOMERS), score_customers(MODEL, CUSTOMERS))


def _save_as_logged(model: CLVModelParams, tmp_path: Path) -> PyFuncModel:
    """Saved with the signature ``pipeline.recorder.model_log.log_model`` gives the registered model."""
    package = Path(models.__file__).parent
    target = tmp_path / "logged"
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=str(package / "serving.py"),
        artifacts={PARAMS_ARTIFACT: str(write_params(model, tmp_path / "params.json"))},
        code_paths=[str(package)],
        pip_requirements=["numpy", "pandas", "scipy", "mlflow"],
        signature=model_signature(model),
        input_example=CUSTOMERS.loc[:, list(required_columns(model.has_spend))],
    )
    loaded: PyFuncModel = mlflow.pyfunc.load_model(str(target))
    return loaded


def _scores(loaded: PyFuncModel, customers: pd.DataFrame) -> pd.DataFrame:
    """The loaded model's scores (MLflow types ``predict`` as any of the outputs a pyfunc may give)."""
    scores = loaded.predict(customers)
    assert isinstance(scores, pd.DataFrame)
    return scores


INT_CUSTOMERS = pd.DataFrame(
    {"customer_id": [17850, 12], "frequency": [2, 0], "recency": [30, 0], "T": [38, 38], "monetary_value": [22, 0]}
)


def test_natural_input_types_through_the_signature(tmp_path: Path) -> None:
    """Int ids and counts ("Can not safely convert int64 to <U0" / "int64 to float64" before), float ids."""
    loaded = _save_as_logged(MODEL, tmp_path)
    expected = score_customers(MODEL, INT_CUSTOMERS.astype(float).assign(customer_id=["17850", "12"]))
    pd.testing.assert_frame_equal(_scores(loaded, INT_CUSTOMERS), expected)
    pd.testing.assert_frame_equal(_scores(loaded, INT_CUSTOMERS.assign(customer_id=[17850.0, 12.0])), expected)
    pd.testing.assert_frame_equal(_scores(loaded, INT_CUSTOMERS.assign(customer_id=["17850.0", "12"])), expected)
    assert _scores(loaded, INT_CUSTOMERS)["customer_id"].tolist() == ["17850", "12"]
    schema = loaded.metadata.get_input_schema()  # type: ignore[no-untyped-call]  # unannotated in MLflow
    assert schema.input_names() == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    output_schema = loaded.metadata.get_output_schema()  # type: ignore[no-untyped-call]  # unannotated in MLflow
    assert [t.name for t in output_schema.input_types()[:4]] == [
        "string",
        "double",
        "double",
        "string",
    ]


def test_contract_violations_are_client_errors_with_one_line(tmp_path: Path) -> None:
    loaded = _save_as_logged(MODEL, tmp_path)
    with pytest.raises(InvalidInputError) as raised:
        loaded.predict(INT_CUSTOMERS.assign(recency=[40, 0]))
    error = raised.value
    assert isinstance(error, MlflowException)
    assert isinstance(error, ContractError)  # the batch CLI catches ValueError
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert error.get_http_status_code() == 400  # type: ignore[no-untyped-call]  # unannotated in MLflow
    assert error.message == "column 'recency' is greater than 'T' for some customers"
    error.message = f"Failed to predict data '{INT_CUSTOMERS}'. \nError: {error.message}"  # what the server does
    assert error.message == "column 'recency' is greater than 'T' for some customers"
    assert json.loads(error.serialize_as_json())["message"] == error.message  # type: ignore[no-untyped-call]


def test_a_model_without_spend_takes_no_monetary_value(tmp_path: Path) -> None:
    events = CLVModelParams(MODEL.purchase, None, MODEL.spec)
    loaded = _save_as_logged(events, tmp_path)
    scores = _scores(loaded, INT_CUSTOMERS.drop(columns=["monetary_value"]))
    assert list(scores.columns) == ["customer_id", "p_alive", "churn_risk", "risk_tier", *HORIZONS]
    input_schema = loaded.metadata.get_input_schema()  # type: ignore[no-untyped-call]  # unannotated in MLflow
    assert input_schema.input_names() == ["customer_id", "frequency", "recency", "T"]
