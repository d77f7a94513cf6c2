"""Fit statistics: AIC and BIC from the log-likelihood, and NaN (never an error) for a fit without observations."""

from __future__ import annotations

import math

import pytest

from models.fitted import FitStatistics


def test_aic_and_bic() -> None:
    stats = FitStatistics(log_likelihood=-1000.0, n_observations=400, n_params=3)
    assert stats.aic == 2006.0
    assert stats.bic == pytest.approx(3 * math.log(400) + 2000.0, rel=1e-15)


@pytest.mark.parametrize("log_likelihood", [math.nan, 0.0])
def test_no_observations_give_nan_criteria(log_likelihood: float) -> None:
    """The pooled-mean spend fallback when no repeat customer has a positive spend is fitted to no one."""
    stats = FitStatistics(log_likelihood=log_likelihood, n_observations=0, n_params=2)
    assert math.isnan(stats.aic)
    assert math.isnan(stats.bic)
