from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd

import models
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from models.pyfunc import PARAMS_ARTIFACT, read_params, write_params
from models.scoring import score_customers

MODEL = CLVModelParams(
    purchase=BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881),
    spend=GammaGammaParams(p=6.2488, q=3.7446, v=15.4477),
    spec=ScoringSpec(horizons_days=(30, 90)),
)
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
