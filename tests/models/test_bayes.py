"""PyMC fits (slow: each model compiles). MAP with flat priors must equal the maximum-likelihood fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bayes import fit_gamma_gamma_bayes, fit_purchase_bayes
from models.bgnbd import BetaGeoParams
from models.mle import fit_gamma_gamma, fit_purchase
from models.pymc_fit import Sampler

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_map_with_flat_priors_equals_the_mle(cdnow_sample_summary: pd.DataFrame, model: str) -> None:
    s = cdnow_sample_summary
    mle = fit_purchase(model, s["frequency"], s["recency"], s["T"])
    params, fit, n_unique = fit_purchase_bayes(model, s["frequency"], s["recency"], s["T"], "map")
    for name, value in mle.params.as_dict().items():
        assert params.as_dict()[name] == pytest.approx(value, rel=5e-3), name
    assert fit.draws is None
    assert n_unique == mle.n_unique_rows


def test_gamma_gamma_map_equals_the_mle(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    mle = fit_gamma_gamma(s["frequency"], s["monetary_value"])
    params, _ = fit_gamma_gamma_bayes(s["frequency"], s["monetary_value"], "map")
    for name, value in mle.params.as_dict().items():
        assert getattr(params, name) == pytest.approx(value, rel=5e-3), name


def test_mcmc_returns_thinned_draws_and_diagnostics(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    sampler = Sampler(chains=2, draws=500, tune=500, keep_draws=50, cores=1, seed=1)
    params, fit, _ = fit_purchase_bayes("bgnbd", s["frequency"], s["recency"], s["T"], "mcmc", sampler=sampler)
    assert isinstance(params, BetaGeoParams)
    assert fit.draws is not None
    assert fit.diagnostics is not None
    assert {k: len(v) for k, v in fit.draws.items()} == {"r": 50, "alpha": 50, "a": 50, "b": 50}
    # The posterior of r and alpha is tight around the MLE (0.2426, 4.414); a and b are skewed (a mean above the mode).
    assert params.r == pytest.approx(0.2426, rel=0.05)
    assert params.alpha == pytest.approx(4.414, rel=0.05)
    assert fit.posterior_sd["r"] == pytest.approx(0.0126, rel=0.3)  # the published standard error
    assert 1.0 <= fit.diagnostics.max_rhat < 1.1
    assert fit.diagnostics.min_ess_bulk > 50
    assert fit.diagnostics.divergences == 0  # measured with this seed
    assert np.isfinite(list(fit.posterior_sd.values())).all()
