"""What-if scenarios: exact at k = 0, the NBD limit at k -> 1, monotone, equal to the closed forms where they
exist, and equal to a Monte-Carlo simulation of the individual-level model within its sampling error."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray
from scipy import stats

from models import bgnbd, mbgnbd, pareto_nbd
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from models.mbgnbd import MBGNBDParams
from models.pareto_nbd import ParetoNBDParams
from models.scoring import score_customers
from models.whatif import Scenario, p_alive_after, shifted_expected_purchases, whatif_customers

FloatArray = NDArray[np.float64]
BG = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005's CDNOW estimates
MBG = MBGNBDParams(r=0.525, alpha=6.183, a=0.891, b=1.614)
PARETO = ParetoNBDParams(r=0.553, alpha=10.58, s=0.606, beta=11.67)
GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)
X = np.array([0.0, 1, 2, 3, 5, 10])
TX = np.array([0.0, 5, 20, 30, 36, 37])
T = np.full(6, 38.0)


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(6)],
            "frequency": X,
            "recency": TX,
            "T": T,
            "monetary_value": [0.0, 20, 35, 50, 18, 40],
        }
    )


def _model(purchase: BetaGeoParams | MBGNBDParams | ParetoNBDParams) -> CLVModelParams:
    return CLVModelParams(purchase=purchase, spend=GG, spec=ScoringSpec())


@pytest.mark.parametrize("lever", ["dropout", "rate", "spend"])
@pytest.mark.parametrize("params", [BG, MBG, PARETO])
def test_k_zero_changes_nothing_exactly(params: BetaGeoParams, lever: str) -> None:
    out = whatif_customers(_model(params), _customers(), Scenario(lever, 0.0))  # type: ignore[arg-type]
    assert (out["delta_clv"] == 0.0).all()
    for column in [c for c in out.columns if c.endswith("_before")]:
        assert (out[column] == out[column.replace("_before", "_after")]).all()


@pytest.mark.parametrize(
    ("params", "closed_form"),
    [(BG, bgnbd.expected_purchases), (MBG, mbgnbd.expected_purchases), (PARETO, pareto_nbd.expected_purchases)],
)
def test_before_is_the_models_own_expectation(params: BetaGeoParams, closed_form: Callable[..., FloatArray]) -> None:
    for t in (4.3, 13.0, 52.2):
        integral = shifted_expected_purchases(params, Scenario("dropout", 0.0), t, X, TX, T)
        np.testing.assert_allclose(integral, closed_form(params, t, X, TX, T), rtol=1e-9)
    # and CLV before the scenario is the scored CLV (scoring uses the closed forms)
    before = whatif_customers(_model(params), _customers(), Scenario("dropout", 0.0))["clv_before"]
    np.testing.assert_allclose(before, score_customers(_model(params), _customers())["clv"], rtol=1e-9)


@pytest.mark.parametrize("params", [BG, MBG])
def test_shifted_dropout_and_rate_equal_the_closed_form_rescaled(params: BetaGeoParams) -> None:
    """For the beta-geometric models a dropout x (1-k) is E((1-k) t) / (1-k) and a rate x (1+k) is E((1+k) t)."""
    closed = bgnbd.expected_purchases if isinstance(params, BetaGeoParams) else mbgnbd.expected_purchases
    for k in (0.05, 0.3, 0.9):
        dropout = shifted_expected_purchases(params, Scenario("dropout", k), 52.0, X, TX, T)
        np.testing.assert_allclose(dropout, closed(params, 52.0 * (1 - k), X, TX, T) / (1 - k), rtol=1e-9)
        rate = shifted_expected_purchases(params, Scenario("rate", k), 52.0, X, TX, T)
        np.testing.assert_allclose(rate, closed(params, 52.0 * (1 + k), X, TX, T), rtol=1e-9)


def test_pareto_shifts_equal_the_closed_form() -> None:
    """Pareto/NBD: lifetime mu x (1-k) rescales time in the lifetime only; rate x (1+k) scales purchases."""
    for k in (0.05, 0.5):
        dropout = shifted_expected_purchases(PARETO, Scenario("dropout", k), 52.0, X, TX, T)
        np.testing.assert_allclose(
            dropout, pareto_nbd.expected_purchases(PARETO, 52.0 * (1 - k), X, TX, T) / (1 - k), rtol=1e-12
        )
        rate = shifted_expected_purchases(PARETO, Scenario("rate", k), 52.0, X, TX, T)
        np.testing.assert_allclose(rate, (1 + k) * pareto_nbd.expected_purchases(PARETO, 52.0, X, TX, T), rtol=1e-12)


@pytest.mark.parametrize("params", [BG, MBG])
def test_dropout_k_to_one_is_the_nbd_limit(params: BetaGeoParams) -> None:
    """No dropout from T on: Poisson(lambda t) purchases, lambda ~ Gamma(r+x, alpha+T): P(alive) (r+x) t / (alpha+T)."""
    alive = (bgnbd if isinstance(params, BetaGeoParams) else mbgnbd).p_alive(params, X, TX, T)
    nbd = alive * (params.r + X) * 52.0 / (params.alpha + T)
    np.testing.assert_allclose(
        shifted_expected_purchases(params, Scenario("dropout", 1.0), 52.0, X, TX, T), nbd, rtol=1e-12
    )
    gaps = [
        np.max(np.abs(shifted_expected_purchases(params, Scenario("dropout", k), 52.0, X, TX, T) / nbd - 1))
        for k in (0.9, 0.99, 0.999, 0.999999)
    ]
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-6
    np.testing.assert_allclose(p_alive_after(params, Scenario("dropout", 1.0), 52.0, X, TX, T), alive, rtol=1e-15)


@pytest.mark.parametrize("lever", ["dropout", "rate", "spend"])
@pytest.mark.parametrize("params", [BG, MBG, PARETO])
def test_delta_clv_is_monotone_in_k(params: BetaGeoParams, lever: str) -> None:
    ks = np.linspace(0.0, 1.0, 11)
    deltas = np.stack(
        [whatif_customers(_model(params), _customers(), Scenario(lever, float(k)))["delta_clv"] for k in ks]  # type: ignore[arg-type]
    )
    assert (np.diff(deltas, axis=0) > 0).all()
    assert (deltas[0] == 0).all()


def test_five_percent_retention_on_the_paper_fit() -> None:
    """A number to read: dropout -5% on FHL's CDNOW fit adds 0.6-1.2% to these customers' one-year CLV, more
    for the frequent buyers (they have more purchases, so more dropout chances, ahead of them)."""
    out = whatif_customers(_model(BG), _customers(), Scenario("dropout", 0.05))
    change = (out["delta_clv"] / out["clv_before"]).to_numpy()
    np.testing.assert_allclose(change, [0.00612, 0.00811, 0.00921, 0.0099, 0.01071, 0.01156], atol=5e-6)


def _simulate(
    params: BetaGeoParams | MBGNBDParams, scenario: Scenario, x: float, t_x: float, t_obs: float, horizon: float
) -> tuple[float, float, float, float]:
    """Monte-Carlo under the individual-level model: (lambda, p) drawn by importance sampling from the prior
    weighted by the history's likelihood (FHL 2005 eq. 3; MBG/NBD adds a dropout chance at the first
    purchase), alive at T drawn given (lambda, p), then the future simulated event by event: N ~ Poisson(c
    lambda t) purchase opportunities, dropout after purchase G ~ Geometric(q), purchases = min(N, G).
    Returns the means of purchases and of alive at T + t, with their standard errors."""
    rng = np.random.default_rng(20261202)
    n = 400_000
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    proposal = stats.gamma(r + x, scale=1 / (alpha + t_x))  # wider than the posterior, centred near it
    lam = proposal.rvs(n, random_state=rng)
    p = rng.beta(a, b, n)
    mbg = isinstance(params, MBGNBDParams)
    log_alive = (x + mbg) * np.log1p(-p) + x * np.log(lam) - lam * t_obs
    dead_possible = x > 0 or mbg
    log_dead = (
        np.log(p) + (x - 1 + mbg) * np.log1p(-p) + x * np.log(lam) - lam * t_x if dead_possible else np.full(n, -np.inf)
    )
    log_like = np.logaddexp(log_alive, log_dead)
    log_w = stats.gamma(r, scale=1 / alpha).logpdf(lam) - proposal.logpdf(lam) + log_like
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    alive = rng.random(n) < np.exp(log_alive - log_like)
    q = p * scenario.dropout_factor
    opportunities = rng.poisson(lam * scenario.rate_factor * horizon)
    dropout_at = rng.geometric(np.maximum(q, 1e-300))
    purchases = alive * np.minimum(opportunities, dropout_at)
    alive_after = alive & (dropout_at > opportunities)
    ess = 1 / np.sum(w**2)

    def mean_se(values: np.ndarray) -> tuple[float, float]:
        mean = float(np.sum(w * values))
        return mean, float(np.sqrt(np.sum(w * (values - mean) ** 2) / ess))

    return (*mean_se(purchases.astype(float)), *mean_se(alive_after.astype(float)))


@pytest.mark.parametrize("params", [BG, MBG])
@pytest.mark.parametrize("scenario", [Scenario("dropout", 0.0), Scenario("dropout", 0.5), Scenario("rate", 0.5)])
@pytest.mark.parametrize(("x", "t_x"), [(0.0, 0.0), (2.0, 30.0), (4.0, 12.0)])
def test_integration_agrees_with_simulation(params: BetaGeoParams, scenario: Scenario, x: float, t_x: float) -> None:
    """Within 4 simulation standard errors (seeded: the same draws every run) and 3% relative."""
    mean, se, alive_mean, alive_se = _simulate(params, scenario, x, t_x, 38.0, 52.0)
    expected = shifted_expected_purchases(params, scenario, 52.0, x, t_x, 38.0)
    alive = p_alive_after(params, scenario, 52.0, x, t_x, 38.0)
    assert abs(float(expected) - mean) < 4 * se
    assert abs(float(expected) / mean - 1) < 0.03
    assert abs(float(alive) - alive_mean) < 4 * alive_se
    assert abs(float(alive) / alive_mean - 1) < 0.03


def test_bad_scenarios_are_refused() -> None:
    with pytest.raises(ValueError, match="0 <= k <= 1"):
        Scenario("dropout", 1.5)
    with pytest.raises(ValueError, match="k > -1"):
        Scenario("rate", -1.0)
    with pytest.raises(ValueError, match="unknown lever"):
        Scenario("churn", 0.1)  # type: ignore[arg-type]
    assert Scenario("dropout", 0.05).name == "dropout -5%"
    assert Scenario("spend", 0.1).spend_factor == pytest.approx(1.1)
