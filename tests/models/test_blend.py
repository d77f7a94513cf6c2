"""The blend as the registered model serves it: its input built by ``serving_input``, its numbers against BTYD's own
formulas and the challenger's, the pyfunc with the challenger as a skops artifact, and its input contract."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

import models
from models.bgnbd import BetaGeoParams
from models.blend import (
    BTYD_VALUE_COLUMNS,
    BlendModel,
    blend_columns,
    blend_scores,
    btyd_over,
    check_features,
    score_blend,
    winner_value,
)
from models.bundle import CLVModelParams, ScoringSpec
from models.challenger import blend, fit_challenger
from models.challenger_features import FEATURE_COLUMNS, activity_from_transactions, features, labels, serving_input
from models.contract import ContractError
from models.gamma_gamma import GammaGammaParams
from models.pyfunc import (
    CONFIG_ARTIFACT,
    PARAMS_ARTIFACT,
    InvalidInputError,
    model_signature,
    write_blend,
    write_params,
)
from models.scoring import score_customers
from tests.models.test_challenger import btyd_summary, simulate_bgnbd

H = 182
AS_OF = pd.Timestamp("2000-12-30")
BTYD = CLVModelParams(
    purchase=BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881),
    spend=GammaGammaParams(p=6.2488, q=3.7446, v=15.4477),
    spec=ScoringSpec(horizons_days=(30, H)),
)


@pytest.fixture(scope="module")
def world() -> tuple[BlendModel, pd.DataFrame]:
    """A blend fitted on 3,000 simulated customers (trained at AS_OF - H) and its input at AS_OF."""
    activity = activity_from_transactions(simulate_bgnbd(3_000, seed=1))
    cutoff = AS_OF - pd.Timedelta(days=H)
    fitted = fit_challenger(features(activity, cutoff), labels(activity, cutoff, H))
    summary = btyd_summary(activity, AS_OF).reset_index()
    summary["customer_id"] = summary["customer_id"].map("c{:05d}".format)
    activity["customer_id"] = activity["customer_id"].map("c{:05d}".format)
    frame = serving_input(summary.iloc[::-1], activity, AS_OF)  # any order: rows follow the customers
    total = float(btyd_over(BTYD, frame, H)["expected_revenue"].sum())
    return BlendModel(BTYD, fitted.rescaled_to(frame, total), 0.5, H), frame


def test_serving_input_is_the_summary_and_the_features_row_for_row(world: tuple[BlendModel, pd.DataFrame]) -> None:
    _, frame = world
    assert list(frame.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value", *FEATURE_COLUMNS]
    assert frame["customer_id"].iloc[0] == "c02999"
    assert frame["customer_id"].iloc[-1] == "c00000"
    activity = activity_from_transactions(simulate_bgnbd(3_000, seed=1))
    direct = features(activity, AS_OF).loc[[2999, 0]]
    np.testing.assert_array_equal(frame.iloc[[0, -1]][list(FEATURE_COLUMNS)].to_numpy(), direct.to_numpy())
    newcomer = pd.DataFrame({"customer_id": ["zz"], "frequency": [0.0], "recency": [0.0], "T": [1.0]})
    with pytest.raises(ValueError, match="1 customers have no activity on or before 2000-12-30"):
        serving_input(newcomer, activity.assign(customer_id=activity["customer_id"].astype(str)), AS_OF)


def test_blend_numbers_are_btyd_and_the_challenger_averaged(world: tuple[BlendModel, pd.DataFrame]) -> None:
    model, frame = world
    out = blend_scores(model, frame)
    assert list(out.columns) == ["customer_id", *blend_columns(H)]
    btyd = score_customers(BTYD, frame)  # BTYD's own scores: expected purchases over H times the order value
    np.testing.assert_allclose(
        out[f"btyd_expected_revenue_{H}d"], btyd[f"expected_purchases_{H}d"] * btyd["expected_order_value"], rtol=1e-12
    )
    ml = model.challenger.predict(frame[list(FEATURE_COLUMNS)])
    np.testing.assert_array_equal(out[f"challenger_expected_revenue_{H}d"], ml["expected_revenue"])
    expected = 0.5 * out[f"btyd_expected_revenue_{H}d"] + 0.5 * ml["expected_revenue"]
    np.testing.assert_allclose(out[f"expected_revenue_{H}d"], expected, rtol=1e-15)
    assert out[f"challenger_expected_revenue_{H}d"].sum() == pytest.approx(out[f"btyd_expected_revenue_{H}d"].sum())
    mixed = blend(btyd_over(BTYD, frame, H), ml, 0.5)
    np.testing.assert_array_equal(out[f"churn_risk_{H}d"], mixed["churn_risk"])
    assert (out["value_model"] == "blend").all()
    full = score_blend(model, frame)
    structural = [c for c in btyd.columns if c not in ("clv", "churn_risk", "risk_tier")]
    pd.testing.assert_frame_equal(full[structural], btyd[structural])  # the structural quantities stay BTYD's
    np.testing.assert_array_equal(full["btyd_clv"], btyd["clv"])
    np.testing.assert_array_equal(full["btyd_churn_risk"], btyd["churn_risk"])
    ratio = out[f"expected_revenue_{H}d"] / out[f"btyd_expected_revenue_{H}d"]  # BTYD's is positive for all here
    np.testing.assert_allclose(full["clv"], btyd["clv"] * ratio, rtol=1e-12)
    np.testing.assert_array_equal(full["churn_risk"], mixed["churn_risk"])
    assert not np.allclose(full["clv"], btyd["clv"])  # the value is the winner's


def test_the_winner_value_is_btyd_clv_times_the_blend_ratio_and_the_blend_churn_risk() -> None:
    """On four customers: the CLV scales by blend / BTYD revenue over H (1 where BTYD's is 0), the churn risk
    and its tier are the blend's over H, BTYD's are kept; the structural columns are left as they are."""
    scores = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "p_alive": [0.9, 0.5, 0.2, 0.7],
            "churn_risk": [0.1, 0.6, 0.9, 0.3],
            "risk_tier": ["low", "medium", "high", "low"],
            "clv": [100.0, 40.0, 5.0, 0.0],
            "clv_lower": [80.0, 30.0, 4.0, 0.0],
            "clv_upper": [120.0, 50.0, 6.0, 0.0],
            f"btyd_expected_revenue_{H}d": [50.0, 20.0, 0.0, 10.0],
            f"challenger_expected_revenue_{H}d": [70.0, 0.0, 4.0, 10.0],
            f"expected_revenue_{H}d": [60.0, 10.0, 2.0, 10.0],
            f"churn_risk_{H}d": [0.85, 0.2, 0.55, 0.5],
            "value_model": "blend",
        }
    )
    out = winner_value(scores, BTYD, H)
    np.testing.assert_allclose(out["clv"], [120.0, 20.0, 5.0, 0.0], rtol=1e-15)  # x1.2, x0.5, x1 (BTYD's 0), x1
    np.testing.assert_allclose(out["clv_lower"], [96.0, 15.0, 4.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(out["clv_upper"], [144.0, 25.0, 6.0, 0.0], rtol=1e-15)
    assert out["btyd_clv"].tolist() == [100.0, 40.0, 5.0, 0.0]
    assert out["churn_risk"].tolist() == [0.85, 0.2, 0.55, 0.5]
    assert out["risk_tier"].tolist() == ["high", "low", "medium", "medium"]  # tiers: < 0.5 low, < 0.8 medium
    assert out["btyd_churn_risk"].tolist() == [0.1, 0.6, 0.9, 0.3]
    assert list(out.columns) == [*scores.columns, *BTYD_VALUE_COLUMNS]
    pd.testing.assert_frame_equal(out[["customer_id", "p_alive"]], scores[["customer_id", "p_alive"]])
    assert scores["clv"].tolist() == [100.0, 40.0, 5.0, 0.0]  # the input is not changed


def _saved(model: BlendModel, frame: pd.DataFrame, tmp_path: Path) -> PyFuncModel:
    """Saved as ``pipeline.recorder.model_log.log_model`` logs a blend: params, config, challenger.skops, blend.json."""
    package = Path(models.__file__).parent
    (config := tmp_path / "config.yaml").write_text("data: {source: cdnow_master}\n")
    artifacts = {PARAMS_ARTIFACT: str(write_params(BTYD, tmp_path / "params.json")), CONFIG_ARTIFACT: str(config)}
    mlflow.pyfunc.save_model(
        path=str(tmp_path / "model"),
        python_model=str(package / "serving.py"),
        artifacts=artifacts | write_blend(model, tmp_path),
        code_paths=[str(package)],
        signature=model_signature(BTYD, model),
        input_example=frame.head(3),
    )
    loaded: PyFuncModel = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    return loaded


def _scores(loaded: PyFuncModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The loaded model's scores (MLflow types ``predict`` as any of the outputs a pyfunc may give)."""
    scores = loaded.predict(frame)
    assert isinstance(scores, pd.DataFrame)
    return scores


def test_the_pyfunc_serves_the_blend_from_skops_with_the_same_numbers(
    world: tuple[BlendModel, pd.DataFrame], tmp_path: Path
) -> None:
    model, frame = world
    loaded = _saved(model, frame, tmp_path)
    assert not list((tmp_path / "model").rglob("*.pkl"))
    input_schema = loaded.metadata.get_input_schema()  # type: ignore[no-untyped-call]  # unannotated in MLflow
    assert input_schema.input_names() == list(frame.columns)
    outputs = loaded.metadata.get_output_schema().input_names()  # type: ignore[no-untyped-call]
    assert outputs[-7:] == [*blend_columns(H), *BTYD_VALUE_COLUMNS]
    assert outputs[:4] == ["customer_id", "p_alive", "churn_risk", "risk_tier"]
    pd.testing.assert_frame_equal(_scores(loaded, frame), score_blend(model, frame).reset_index(drop=True))
    # As JSON brings it: missing gaps as None in object columns, ids as numbers.
    rows = frame.head(50).astype(object).where(frame.head(50).notna(), None)
    as_json = _scores(loaded, rows.assign(customer_id=np.arange(50)))
    direct = score_blend(model, frame.head(50))
    np.testing.assert_array_equal(as_json[f"expected_revenue_{H}d"], direct[f"expected_revenue_{H}d"])
    assert as_json["customer_id"].tolist()[:3] == ["0", "1", "2"]
    # The signature lists every input: MLflow refuses a missing one first; the model itself names it too.
    with pytest.raises(MlflowException, match=re.escape("Model is missing inputs ['spend_26w']")):
        loaded.predict(frame.drop(columns="spend_26w"))
    with pytest.raises(InvalidInputError, match=r"^missing challenger feature column\(s\): spend_26w$"):
        loaded.unwrap_python_model().predict(None, frame.drop(columns="spend_26w"))  # type: ignore[no-untyped-call]
    with pytest.raises(InvalidInputError, match=r"^column 'spend_4w' must be numeric, got text$"):
        loaded.predict(frame.head(3).assign(spend_4w="x"))


def test_the_feature_contract_names_the_first_bad_column(world: tuple[BlendModel, pd.DataFrame]) -> None:
    _, frame = world
    with pytest.raises(ContractError, match=r"^column 'purchases' has null or NaN values$"):
        check_features(frame.assign(purchases=np.nan))
    with pytest.raises(ContractError, match=r"^column 'spend_4w' must be numeric, got "):
        check_features(frame.assign(spend_4w="x"))
    with pytest.raises(ContractError, match=r"^column 'max_spend' has infinite values$"):
        check_features(frame.assign(max_spend=np.inf))
    assert check_features(frame)["mean_gap_days"].isna().any()  # one-time buyers have no gap: allowed
