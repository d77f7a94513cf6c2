from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import GammaGammaFitter

from models import gamma_gamma
from models.gamma_gamma import GammaGammaParams

PAPER = GammaGammaParams(p=6.2488, q=3.7446, v=15.4477)


def test_conditional_expected_spend_matches_published(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    spend = gamma_gamma.expected_order_value(PAPER, s["frequency"], s["monetary_value"])
    assert spend.mean() == pytest.approx(35.253, abs=2e-3)
    assert gamma_gamma.expected_order_value(PAPER, 0, 0)[()] == pytest.approx(35.171, abs=2e-3)


def test_matches_lifetimes(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    fitter = GammaGammaFitter()
    fitter.params_ = pd.Series(PAPER.as_dict())
    np.testing.assert_allclose(
        gamma_gamma.expected_order_value(PAPER, s["frequency"], s["monetary_value"]),
        fitter.conditional_expected_average_profit(s["frequency"], s["monetary_value"]),
        rtol=1e-12,
    )


def test_log_likelihood_is_the_published_total(cdnow_sample_summary: pd.DataFrame) -> None:
    repeat = cdnow_sample_summary[cdnow_sample_summary["frequency"] > 0]
    assert len(repeat) == 946
    ll = gamma_gamma.log_likelihood(PAPER, repeat["frequency"], repeat["monetary_value"])
    assert ll == pytest.approx(-4055.92, abs=0.05)


def test_population_mean() -> None:
    assert PAPER.population_mean == pytest.approx(6.2488 * 15.4477 / 2.7446)
    assert GammaGammaParams(p=1, q=0.5, v=1).population_mean == float("inf")
