from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import bgnbd
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from pipeline import business

MODEL = CLVModelParams(
    BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259), GammaGammaParams(6.25, 3.74, 15.44), ScoringSpec()
)
SCORES = pd.DataFrame(
    {
        "customer_id": [f"c{i}" for i in range(20)],
        "clv": np.arange(20, dtype=float),
        "churn_risk": [0.9] * 10 + [0.1, 0.95] * 5,
        "p_alive": 0.5,
        "historical_clv": 10.0,
        "expected_order_value": 30.0,
    }
)


def test_at_risk_valuable() -> None:
    chosen = business.at_risk_valuable(SCORES, clv_quantile=0.8, churn_risk_min=0.8)
    assert chosen["customer_id"].tolist() == ["c19", "c17"]


def test_value_segments_and_shares() -> None:
    table = business.segment_table(SCORES)
    assert table["value_segment"].tolist() == ["top 5%", "next 15%", "middle 30%", "bottom 50%"]
    assert table["customers"].tolist() == [1, 3, 6, 10]
    assert table["clv_share"].sum() == pytest.approx(1.0)


def test_cohorts_and_windows() -> None:
    customers = pd.DataFrame(
        {
            "first_purchase": pd.to_datetime(["1997-01-05"] * 10 + ["1997-02-10"] * 10),
            "frequency": 2.0,
            "recency": 20.0,
            "T": 38.0,
        }
    )
    cohorts = business.cohort_table(SCORES, customers)
    assert cohorts["cohort"].tolist() == ["1997-01", "1997-02"]
    assert cohorts["customers"].tolist() == [10, 10]
    windows = business.clv_windows(MODEL, customers, SCORES)
    assert windows["clv_365d"][0] == pytest.approx(30.0 * bgnbd.expected_purchases(MODEL.purchase, 365 / 7, 2, 20, 38))
    assert (windows["clv_30d"] < windows["clv_60d"]).all()
