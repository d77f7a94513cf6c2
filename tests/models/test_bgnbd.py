from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter

from models import bgnbd
from models.bgnbd import BetaGeoParams

# Fader, Hardie & Lee (2005), full precision (../shared/notes/reference-values.md).
PAPER = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)


@pytest.fixture(scope="module")
def lifetimes_model() -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(PAPER.as_dict())
    return fitter


def test_unconditional_expectation_matches_published_points() -> None:
    # Hardie's spreadsheet values, as in lifetimes' own tests (t = 31.86 is 223/7 = 31.8571 weeks).
    expected = bgnbd.expected_purchases_new_customer(PAPER, np.array([1, 3, 223 / 7, 78]))
    np.testing.assert_allclose(expected, [0.0532, 0.1506, 1.0405, 1.8576], atol=5e-4)


def test_conditional_expectation_matches_published_point() -> None:
    value = bgnbd.expected_purchases(PAPER, 39, 2, 30.43, 38.86)
    assert value[()] == pytest.approx(1.226, abs=5e-4)


def test_matches_lifetimes_on_sample(cdnow_sample_summary: pd.DataFrame, lifetimes_model: BetaGeoFitter) -> None:
    s = cdnow_sample_summary
    f, r, t = s["frequency"], s["recency"], s["T"]
    np.testing.assert_allclose(
        bgnbd.p_alive(PAPER, f, r, t), lifetimes_model.conditional_probability_alive(f, r, t), rtol=1e-12
    )
    for horizon in (1.0, 13.0, 39.0, 52.0):
        np.testing.assert_allclose(
            bgnbd.expected_purchases(PAPER, horizon, f, r, t),
            lifetimes_model.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t),
            rtol=1e-10,
        )


def test_log_likelihood_is_the_published_total(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    assert bgnbd.log_likelihood(PAPER, s["frequency"], s["recency"], s["T"]) == pytest.approx(-9582.43, abs=0.01)


def test_p_alive_is_one_without_repeat_purchases() -> None:
    assert bgnbd.p_alive(PAPER, [0, 0], [0, 0], [10, 50]).tolist() == [1.0, 1.0]


def test_p_no_purchase_limits_and_closed_form() -> None:
    f, r, t = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 38.0])
    assert bgnbd.p_no_purchase(PAPER, 0.0, f, r, t) == pytest.approx([1.0, 1.0])
    # For one-time buyers P(alive) = 1, so P(no purchase) = ((alpha + T) / (alpha + T + h))^r.
    h = 13.0
    closed = ((PAPER.alpha + 30) / (PAPER.alpha + 30 + h)) ** PAPER.r
    assert bgnbd.p_no_purchase(PAPER, h, f, r, t)[0] == pytest.approx(closed, rel=1e-12)
    # As the horizon grows, the only customers without a purchase are those who have dropped out.
    far = bgnbd.p_no_purchase(PAPER, 1e30, f, r, t)
    np.testing.assert_allclose(far, 1 - bgnbd.p_alive(PAPER, f, r, t), atol=1e-3)
    assert (np.diff(bgnbd.p_no_purchase(PAPER, np.array([1.0, 5.0, 50.0]), 3.0, 20.0, 38.0)) < 0).all()


def test_p_no_purchase_agrees_with_simulation() -> None:
    """Monte Carlo check of P(no purchase in (T, T+h]) for one history, drawing from the posterior."""
    rng = np.random.default_rng(7)
    x, t_x, T, h = 2, 20.0, 38.0, 26.0
    n = 400_000
    # Prior draws, weighted by the likelihood of the history, give the posterior.
    lam = rng.gamma(PAPER.r, 1 / PAPER.alpha, n)
    p = rng.beta(PAPER.a, PAPER.b, n)
    lik_alive = (1 - p) ** x * lam**x * np.exp(-lam * T)
    lik_dead_at_tx = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x)
    weight = lik_alive + lik_dead_at_tx
    alive_prob = lik_alive / weight
    no_purchase = (1 - alive_prob) + alive_prob * np.exp(-lam * h)
    simulated = np.sum(weight * no_purchase) / np.sum(weight)
    assert bgnbd.p_no_purchase(PAPER, h, x, t_x, T)[()] == pytest.approx(simulated, abs=5e-3)


def test_quadrature_equals_the_closed_form(cdnow_sample_summary: pd.DataFrame) -> None:
    s = cdnow_sample_summary
    f, r, t = (s[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    horizon = np.full(len(f), 39.0)
    np.testing.assert_allclose(
        bgnbd.p_alive(PAPER, f, r, t) * bgnbd.expected_purchases_if_alive(PAPER, horizon, f, t),
        bgnbd.expected_purchases(PAPER, horizon, f, r, t),
        rtol=1e-9,
    )


@pytest.mark.parametrize(
    "params",
    [
        BetaGeoParams(r=0.24, alpha=4.4, a=0.3, b=0.5),  # a + b < 1: lifetimes #442 gives NaN
        BetaGeoParams(r=0.24, alpha=4.4, a=0.05, b=0.2),
        BetaGeoParams(r=0.24, alpha=4.4, a=1.0, b=2.0),  # a = 1: 0/0 in the closed form
    ],
)
def test_expected_purchases_stay_finite_where_the_closed_form_breaks(params: BetaGeoParams) -> None:
    f, r, t = np.array([0.0, 0.0, 1.0, 5.0]), np.array([0.0, 0.0, 3.0, 20.0]), np.array([38.0, 0.01, 38.0, 20.0])
    expected = bgnbd.expected_purchases(params, 52.0, f, r, t)
    assert np.isfinite(expected).all()
    assert (expected > 0).all()
    # Close to a = 1 the closed form is fine, and the quadrature agrees with it.
    near = BetaGeoParams(params.r, params.alpha, 1.01, params.b)
    np.testing.assert_allclose(
        bgnbd.expected_purchases(near, 52.0, f, r, t),
        bgnbd.p_alive(near, f, r, t) * bgnbd.expected_purchases_if_alive(near, np.full(4, 52.0), f, t),
        rtol=1e-9,
    )


@pytest.mark.parametrize("module", ["bgnbd", "mbgnbd"])
def test_expected_purchases_once_per_distinct_term_are_the_same_numbers(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hypergeometric term is computed once per distinct (frequency, z) pair: bit for bit the numbers of the
    call on every row, on many histories sharing frequencies and ages, with the Euler transformation (large
    frequencies) and the quadrature (a near 1) taking part."""
    import importlib

    from models import histories

    model = importlib.import_module(f"models.{module}")
    rng = np.random.default_rng(8)
    n = 30_000
    x = rng.integers(0, 400, n).astype(float)
    t_obs = rng.integers(1, 80, n).astype(float)
    t_x = np.minimum(t_obs, rng.random(n) * 80) * (x > 0)
    for values in ((0.8, 3.1, 1.2, 11.8), (0.24, 4.4, 0.79, 2.4), (0.5, 2.0, 1.0 + 1e-8, 3.0)):
        params = model.MODEL.params_type(*values)
        for horizon in (4.3, 52.0):
            monkeypatch.setattr(histories, "DISTINCT_ROWS", 10**12)
            every_row = model.expected_purchases(params, horizon, x, t_x, t_obs)
            monkeypatch.setattr(histories, "DISTINCT_ROWS", 10_000)
            np.testing.assert_array_equal(model.expected_purchases(params, horizon, x, t_x, t_obs), every_row)
