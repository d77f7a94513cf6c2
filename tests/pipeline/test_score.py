from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from models.scoring import score_customers
from pipeline.score import score

MODEL = CLVModelParams(
    purchase=BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259),
    spend=GammaGammaParams(6.2488, 3.7446, 15.4477),
    spec=ScoringSpec(),
)


CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b"],
        "frequency": [2.0, 0.0],
        "recency": [30.0, 0.0],
        "T": [38.0, 20.0],
        "monetary_value": [20.0, 0.0],
        "total_spend": [60.0, 15.0],
    },
    index=[10, 11],
)


def test_scores_plus_historical_clv() -> None:
    customers = CUSTOMERS.copy()
    scores = score(MODEL, customers)
    assert scores["historical_clv"].tolist() == [60.0, 15.0]
    assert scores["historical_clv"].dtype == customers["total_spend"].dtype
    # the summary's column is shared, not copied, and the summary keeps its values when the scores change
    assert np.shares_memory(scores["historical_clv"].to_numpy(), customers["total_spend"].to_numpy())
    scores.loc[0, "historical_clv"] = -1.0
    assert customers["total_spend"].tolist() == [60.0, 15.0]
    pd.testing.assert_frame_equal(
        scores.drop(columns=["historical_clv"]), score_customers(MODEL, customers).reset_index(drop=True)
    )


def test_historical_clv_of_other_dtypes_is_numpy_as_before() -> None:
    cases: tuple[tuple[Literal["Float64", "Int64", "double[pyarrow]"], str], ...] = (
        ("Float64", "float64"),
        ("Int64", "int64"),
        ("double[pyarrow]", "float64"),
    )
    for dtype, expected in cases:
        spent = CUSTOMERS.assign(total_spend=CUSTOMERS["total_spend"].astype(dtype))
        scores = score(MODEL, spent)
        assert scores["historical_clv"].dtype == np.dtype(expected)
        assert scores["historical_clv"].tolist() == [60, 15]
