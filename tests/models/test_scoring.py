from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import bgnbd, gamma_gamma
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, RiskTier, ScoringSpec
from models.contract import ContractError
from models.gamma_gamma import GammaGammaParams
from models.scoring import NonFiniteScoresError, assign_risk_tier, score_columns, score_customers

MODEL = CLVModelParams(
    purchase=BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881),
    spend=GammaGammaParams(p=6.2488, q=3.7446, v=15.4477),
    spec=ScoringSpec(),
)
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "frequency": [2.0, 0.0, 7.0],
        "recency": [30.43, 0.0, 5.0],
        "T": [38.86, 38.86, 38.0],
        "monetary_value": [22.35, 0.0, 40.0],
    }
)


def test_scores_are_the_model_formulas() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    assert list(scores.columns) == score_columns(MODEL)
    f, r, t = CUSTOMERS["frequency"], CUSTOMERS["recency"], CUSTOMERS["T"]
    np.testing.assert_allclose(scores["p_alive"], bgnbd.p_alive(MODEL.purchase, f, r, t))
    np.testing.assert_allclose(scores["churn_risk"], bgnbd.p_no_purchase(MODEL.purchase, 90 / 7, f, r, t))
    np.testing.assert_allclose(
        scores["expected_purchases_365d"], bgnbd.expected_purchases(MODEL.purchase, 365 / 7, f, r, t)
    )
    np.testing.assert_allclose(
        scores["expected_order_value"],
        gamma_gamma.expected_order_value(MODEL.spend, f, CUSTOMERS["monetary_value"]),
    )
    assert scores["expected_order_value"][1] == pytest.approx(35.171, abs=2e-3)


def test_churn_risk_is_not_one_minus_p_alive() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    # A one-time buyer is "alive" for BG/NBD, yet very likely to make no purchase in 90 days.
    assert scores["p_alive"][1] == 1.0
    assert 0.8 < scores["churn_risk"][1] < 1.0
    # A lapsed frequent buyer (7 purchases, last one 33 weeks ago) is likely gone.
    assert scores["p_alive"][2] < 0.05
    assert scores["risk_tier"].tolist() == ["medium", "high", "high"]


def test_clv_ordering_and_finiteness() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    assert np.isfinite(scores["clv"]).all()
    assert scores["clv"][0] > scores["clv"][1] > 0
    longer = score_customers(CLVModelParams(MODEL.purchase, MODEL.spend, ScoringSpec(clv_horizon_months=24)), CUSTOMERS)
    assert (longer["clv"] > scores["clv"]).all()


def test_risk_tier_boundaries() -> None:
    tiers = (RiskTier("low", 0.5), RiskTier("medium", 0.8), RiskTier("high", 1.0))
    risks = np.array([0.0, 0.49, 0.5, 0.79, 0.8, 1.0])
    assert assign_risk_tier(risks, tiers).tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_contract_is_checked_at_the_boundary() -> None:
    with pytest.raises(ContractError, match="missing required column"):
        score_customers(MODEL, CUSTOMERS.drop(columns=["recency"]))


def test_recency_equal_to_t_and_huge_spend_are_finite() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["just-bought", "big-spender"],
            "frequency": [4.0, 3.0],
            "recency": [38.0, 20.0],  # last purchase at the very end of observation
            "T": [38.0, 38.0],
            "monetary_value": [25.0, 1e9],
        }
    )
    scores = score_customers(MODEL, customers)
    assert np.isfinite(scores.select_dtypes("number").to_numpy()).all()
    # Buying at T gives the highest P(alive) for that frequency and age: exactly 1 / (1 + a / (b + x - 1)).
    assert scores["p_alive"][0] == pytest.approx(1 / (1 + MODEL.purchase.a / (MODEL.purchase.b + 3)))
    # Gamma-Gamma shrinks an outlier toward the population mean, but it stays an outlier.
    assert 1e8 < scores["expected_order_value"][1] < 1e9


def test_non_finite_scores_never_leave_the_function() -> None:
    broken = CLVModelParams(MODEL.purchase, GammaGammaParams(p=6.0, q=0.5, v=15.0), MODEL.spec)
    with pytest.raises(NonFiniteScoresError, match="3 customers got NaN or infinite scores"):
        score_customers(broken, CUSTOMERS)
