"""The spread test: Gamma-Gamma against its no-heterogeneity limit (the pooled mean spend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.gamma_gamma_fit import SpendData, fit_gamma_gamma_mle
from models.spend_spread import fit_no_heterogeneity, spread_test


def _repeat(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]


def test_no_heterogeneity_limit_is_the_pooled_mean(cdnow_sample_summary: pd.DataFrame) -> None:
    repeat = _repeat(cdnow_sample_summary)
    data = SpendData.from_arrays(repeat["frequency"], repeat["monetary_value"])
    pooled = fit_no_heterogeneity(data)
    x, m = repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
    assert pooled.mean == pytest.approx(np.sum(x * m) / np.sum(x), rel=1e-12)  # 38.81: total spend / purchases
    assert pooled.mean == pytest.approx(38.8098, abs=1e-4)
    # the limit's log-likelihood: each mean spend Gamma(p x, rate x p / mean)
    from scipy.stats import gamma

    direct = gamma.logpdf(m, a=pooled.p * x, scale=pooled.mean / (pooled.p * x)).sum()
    assert pooled.log_likelihood == pytest.approx(direct, rel=1e-10)
    assert pooled.p == pytest.approx(0.93496, rel=1e-4)
    # CDNOW's spend is very heterogeneous: 2 (LL_GG - LL_pooled) = 524.1
    test = spread_test(fit_gamma_gamma_mle(x, m).log_likelihood, pooled)
    assert test.statistic == pytest.approx(524.12, abs=0.01)
    assert test.p_value < 1e-100


def test_spend_without_heterogeneity_passes_the_spread_test() -> None:
    """Every customer spends Gamma(2, scale 25) per purchase: Gamma-Gamma's q is large, and the likelihood
    ratio against the no-heterogeneity limit is small (measured: q 112.5, statistic 2.378, p 0.0615)."""
    rng = np.random.default_rng(7)
    x = rng.geometric(0.4, 3000).astype(np.float64)
    m = rng.gamma(2.0 * x, 25.0 / x)
    fitted = fit_gamma_gamma_mle(x, m)
    test = spread_test(fitted.log_likelihood, fit_no_heterogeneity(SpendData.from_arrays(x, m)))
    assert fitted.params.q == pytest.approx(112.52, rel=1e-3)
    assert test.statistic == pytest.approx(2.378, abs=1e-3)
    assert test.p_value == pytest.approx(0.0615, abs=1e-4)


def test_constant_spend_is_a_point_mass() -> None:
    data = SpendData.from_arrays([1.0, 2.0, 5.0], [100.0, 100.0, 100.0])
    assert data.constant_spend
    pooled = fit_no_heterogeneity(data)
    assert (pooled.mean, pooled.log_likelihood) == (100.0, np.inf)
    assert spread_test(-10.0, pooled).p_value == 1.0


def test_the_no_heterogeneity_fit_lets_the_customers_go_without_the_cyclic_collector() -> None:
    """brentq wraps the score in a reference cycle: the score must not hold the per-customer arrays, or they
    stay in memory until Python's cyclic collector runs (0.2 GB at 5M repeat customers in a job)."""
    import gc
    import weakref

    rng = np.random.default_rng(3)
    data = SpendData.from_arrays(rng.poisson(2.0, 10_000) + 1.0, rng.gamma(3.0, 20.0, 10_000))
    released = weakref.ref(data)
    enabled = gc.isenabled()
    gc.disable()
    try:
        fit_no_heterogeneity(data)
        del data
        assert released() is None
    finally:
        if enabled:
            gc.enable()
