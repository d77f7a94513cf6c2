from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.fitted import FitError
from models.mle import fit_bgnbd, fit_gamma_gamma, fit_purchase

REL = 1e-3  # published values must match within 0.1%


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    fit = fit_bgnbd(s["frequency"], s["recency"], s["T"])
    published = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
    for name, value in published.items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=REL), name
    assert fit.stats.log_likelihood == pytest.approx(-9582.43, rel=1e-5)
    published_se = {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705}
    for name, value in published_se.items():
        assert fit.standard_errors[name] == pytest.approx(value, rel=0.01), name
    assert fit.stats.n_observations == 2357
    assert fit.stats.aic == pytest.approx(2 * 4 + 2 * 9582.43, rel=1e-5)
    assert fit.stats.bic == pytest.approx(4 * np.log(2357) + 2 * 9582.43, rel=1e-5)


def test_gamma_gamma_reproduces_fader_hardie_2013(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    fit = fit_gamma_gamma(s["frequency"], s["monetary_value"])
    for name, value in {"p": 6.2488, "q": 3.7446, "v": 15.4477}.items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=REL), name
    assert fit.stats.log_likelihood == pytest.approx(-4055.92, rel=1e-5)
    assert fit.stats.n_observations == 946


def test_weighted_unique_rows_equal_per_customer_fit(cdnow_sample_summary: pd.DataFrame) -> None:
    from lifetimes import BetaGeoFitter

    s = cdnow_sample_summary
    plain = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    weighted = fit_bgnbd(s["frequency"], s["recency"], s["T"])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(weighted.params, name) == pytest.approx(plain.params_[name], rel=1e-5)


def test_fit_errors_name_the_cause() -> None:
    with pytest.raises(FitError, match="no customer has a repeat purchase"):
        fit_bgnbd([0, 0], [0, 0], [3, 4])
    with pytest.raises(FitError, match="found 1"):
        fit_gamma_gamma([0, 2, 0], [0, 10.0, 0])


def test_pareto_nbd_reproduces_fader_hardie_lee_2005(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    fit = fit_purchase("pareto_nbd", s["frequency"], s["recency"], s["T"])
    for name, value in {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.669}.items():
        assert fit.params.as_dict()[name] == pytest.approx(value, rel=REL), name
    assert fit.stats.log_likelihood == pytest.approx(-9594.98, rel=1e-5)


def test_mbgnbd_reproduces_batislam_et_al_2007(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    fit = fit_purchase("mbgnbd", s["frequency"], s["recency"], s["T"])
    # Published to three decimals (as reproduced by BTYDplus): match within half a unit of the last digit.
    for name, value in {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}.items():
        assert fit.params.as_dict()[name] == pytest.approx(value, abs=5e-4), name
    # Not published; measured here. Slightly above BG/NBD's -9582.43 on the same data, as expected of MBG/NBD.
    assert fit.stats.log_likelihood == pytest.approx(-9582.14, abs=0.01)
    assert fit.stats.n_observations == 2357


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_restart_at_the_median_age_reaches_the_same_optimum(cdnow_sample_summary: pd.DataFrame, model: str) -> None:
    s = cdnow_sample_summary
    plain = fit_purchase(model, s["frequency"], s["recency"], s["T"])
    rescaled = fit_purchase(model, s["frequency"], s["recency"], s["T"], start="median_age")
    for name, value in plain.params.as_dict().items():
        assert rescaled.params.as_dict()[name] == pytest.approx(value, rel=2e-3), name
    assert rescaled.stats.log_likelihood == pytest.approx(plain.stats.log_likelihood, abs=0.05)
