"""Our Gamma-Gamma maximum likelihood: the published CDNOW values and lifetimes' fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from models import gamma_gamma
from models.gamma_gamma_fit import (
    NEUTRAL_START,
    SpendData,
    _log_likelihood_terms,
    fit_gamma_gamma_mle,
    gamma_gamma_log_likelihood,
)

REL = 1e-3  # published values must match within 0.1%


def _repeat(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]


def test_reproduces_fader_hardie_2013(cdnow_sample_summary: pd.DataFrame) -> None:
    repeat = _repeat(cdnow_sample_summary)
    fitted = fit_gamma_gamma_mle(repeat["frequency"], repeat["monetary_value"])
    assert fitted.converged
    for name, value in {"p": 6.2488, "q": 3.7446, "v": 15.4477}.items():
        assert getattr(fitted.params, name) == pytest.approx(value, rel=REL), name
    assert fitted.log_likelihood == pytest.approx(-4055.92, abs=0.01)
    assert fitted.n_customers == 946
    # lifetimes' standard errors for this fit (inverse Hessian, measured: 1.19006, 0.290133, 4.15942)
    for name, value in {"p": 1.19006, "q": 0.290133, "v": 4.15942}.items():
        assert fitted.standard_errors[name] == pytest.approx(value, rel=1e-4), name
    assert fitted.passes <= 12  # Newton from the moment start (measured: 10)


def test_equals_lifetimes_on_the_full_cdnow_master(cdnow_master: pd.DataFrame) -> None:
    from lifetimes import GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    summary = summary_data_from_transaction_data(
        cdnow_master, "customer_id", "date", monetary_value_col="amount", freq="D"
    )
    repeat = _repeat(summary)
    assert len(repeat) == 11515
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    ours = fit_gamma_gamma_mle(repeat["frequency"], repeat["monetary_value"])
    for name in ("p", "q", "v"):
        assert getattr(ours.params, name) == pytest.approx(theirs.params_[name], rel=1e-5), name
        assert ours.standard_errors[name] == pytest.approx(theirs.standard_errors_[name], rel=1e-4), name
    assert (ours.params.p, ours.params.q, ours.params.v) == pytest.approx((5.08604, 3.99512, 21.2522), rel=1e-5)
    assert ours.log_likelihood == pytest.approx(
        gamma_gamma.log_likelihood(ours.params, repeat["frequency"], repeat["monetary_value"]), rel=1e-12
    )


@pytest.mark.parametrize("start", [NEUTRAL_START, (0.1, 0.1, 0.1), (100.0, 1.5, 100.0)])
def test_every_start_reaches_the_same_optimum(cdnow_sample_summary: pd.DataFrame, start: tuple[float, ...]) -> None:
    repeat = _repeat(cdnow_sample_summary)
    plain = fit_gamma_gamma_mle(repeat["frequency"], repeat["monetary_value"])
    other = fit_gamma_gamma_mle(repeat["frequency"], repeat["monetary_value"], start=start)  # type: ignore[arg-type]
    assert other.converged
    for name, value in plain.params.as_dict().items():
        assert getattr(other.params, name) == pytest.approx(value, rel=1e-6), name


def test_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(3)
    x = rng.geometric(0.4, 40).astype(np.float64)
    m = rng.gamma(6.0 * x, 1 / (x * rng.gamma(4.0, 1 / 15.0, 40)))
    counts = rng.integers(1, 5, 40)
    weighted = fit_gamma_gamma_mle(x, m, weights=counts)
    repeated = fit_gamma_gamma_mle(np.repeat(x, counts), np.repeat(m, counts))
    assert weighted.converged
    for name in ("p", "q", "v"):
        assert getattr(weighted.params, name) == pytest.approx(getattr(repeated.params, name), rel=1e-8)
    assert weighted.params.q == pytest.approx(2.8933, rel=1e-4)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-10)
    assert weighted.n_customers == counts.sum()


def test_analytic_gradient_and_hessian_equal_finite_differences(cdnow_sample_summary: pd.DataFrame) -> None:
    repeat = _repeat(cdnow_sample_summary)
    data = SpendData.from_arrays(repeat["frequency"], repeat["monetary_value"])
    point = np.array([3.0, 2.5, 0.7])  # (p, q, v / scale), away from the optimum
    value, gradient, hessian = _log_likelihood_terms(data, *point)
    step = 1e-6
    for i in range(3):
        shift = np.eye(3)[i] * step * point[i]
        up = _log_likelihood_terms(data, *(point + shift))
        down = _log_likelihood_terms(data, *(point - shift))
        assert gradient[i] == pytest.approx((up[0] - down[0]) / (2 * shift[i]), rel=1e-6)
        np.testing.assert_allclose(hessian[i], (up[1] - down[1]) / (2 * shift[i]), rtol=1e-5)
    params = gamma_gamma.GammaGammaParams(point[0], point[1], point[2] * data.scale)
    assert gamma_gamma_log_likelihood(params, data) == pytest.approx(
        gamma_gamma.log_likelihood(params, repeat["frequency"], repeat["monetary_value"]), rel=1e-12
    )
    assert value == pytest.approx(gamma_gamma_log_likelihood(params, data) + data.n * np.log(data.scale), rel=1e-12)


def test_refuses_data_gamma_gamma_cannot_take() -> None:
    with pytest.raises(ValueError, match="frequency > 0 and finite monetary_value > 0"):
        SpendData.from_arrays([1.0, 0.0], [10.0, 5.0])
    with pytest.raises(ValueError, match="frequency > 0 and finite monetary_value > 0"):
        SpendData.from_arrays([1.0, 2.0], [10.0, 0.0])
