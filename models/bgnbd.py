"""BG/NBD purchase model (Fader, Hardie & Lee 2005) evaluated from its four parameters.

Every function takes the parameters as data and arrays of customer histories, so the same
code scores in the batch job, in the MLflow pyfunc model and in notebooks. Time is in the
model's unit (weeks by default): ``frequency`` is the number of repeat purchase periods,
``recency`` the age at the last purchase and ``T`` the age at the end of observation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betainc, betaln, expit, gammaln, hyp2f1, roots_jacobi, xlogy

from models.bgnbd_fit import BetaGeoMle
from models.definition import PurchaseModel, PymcSpec
from models.histories import once_per_distinct

__all__ = [
    "MODEL",
    "BetaGeoParams",
    "beta_geo_priors",
    "expected_purchases",
    "expected_purchases_if_alive",
    "expected_purchases_new_customer",
    "log_likelihood",
    "log_likelihood_rows",
    "p_alive",
    "p_no_purchase",
    "repeat_count_pmf",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BetaGeoParams:
    """r, alpha: gamma heterogeneity of purchase rates; a, b: beta heterogeneity of dropout."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _arrays(*values: ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in values)


def p_alive(params: BetaGeoParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(customer is still alive at T | x, t_x, T). Equal to 1 for customers without a repeat purchase."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (r + x) * np.log((alpha + t_obs) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.asarray(np.where(x == 0, 1.0, expit(-log_odds_dead)), dtype=np.float64)


def p_no_purchase(
    params: BetaGeoParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(no purchase in (T, T + t] | x, t_x, T) = 1 - P(alive) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x)."""
    horizon, x, _, t_obs = _arrays(t, frequency, recency, T)
    alive = p_alive(params, frequency, recency, T)
    survive_silent = np.exp((params.r + x) * np.log((params.alpha + t_obs) / (params.alpha + t_obs + horizon)))
    return np.asarray(1.0 - alive + alive * survive_silent, dtype=np.float64)


def expected_purchases(
    params: BetaGeoParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[X(T, T + t) | x, t_x, T]: expected purchases in the next ``t`` time units (FHL 2005, eq. 10).

    The closed form uses the Gauss hypergeometric function. Where it breaks down (a within 1e-6 of 1,
    where (a + b + x - 1) / (a - 1) is 0/0, or a + b < 1 with a young one-time buyer, lifetimes #442)
    the same expectation is evaluated by quadrature instead, so the result is always finite.
    """
    horizon, x, t_x, t_obs = np.broadcast_arrays(*_arrays(t, frequency, recency, T))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = horizon / (alpha + t_obs + horizon)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the hypergeometric term depends on (x, z) alone: computed once per distinct pair, the same numbers
        ln_hyp = once_per_distinct(lambda xs, zs: _log_hyp2f1(r + xs, b + xs, a + b + xs - 1, zs), x, z)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + t_obs) / (alpha + horizon + t_obs)))
        denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * ((alpha + t_obs) / (alpha + t_x)) ** (r + x)
        expected = np.asarray(first * second / denominator, dtype=np.float64)
    unstable = ~np.isfinite(expected) | (abs(a - 1) < 1e-6) | (expected < 0)
    if unstable.any():
        alive = p_alive(params, x[unstable], t_x[unstable], t_obs[unstable])
        expected[unstable] = alive * expected_purchases_if_alive(
            params, horizon[unstable], x[unstable], t_obs[unstable]
        )
    return expected


def _log_hyp2f1(hyp_a: FloatArray, hyp_b: FloatArray, hyp_c: FloatArray, z: FloatArray) -> FloatArray:
    """log 2F1(hyp_a, hyp_b; hyp_c; z), by Euler's transformation where the direct series overflows (as
    lifetimes does)."""
    ln_hyp = np.asarray(np.log(hyp2f1(hyp_a, hyp_b, hyp_c, z)), dtype=np.float64)
    overflow = np.isinf(ln_hyp)
    if overflow.any():
        a_, b_, c_, z_ = hyp_a[overflow], hyp_b[overflow], hyp_c[overflow], z[overflow]
        ln_hyp[overflow] = np.log(hyp2f1(c_ - a_, c_ - b_, c_, z_)) + (c_ - a_ - b_) * np.log1p(-z_)
    return ln_hyp


def expected_purchases_if_alive(
    params: BetaGeoParams, t: FloatArray, x: FloatArray, T: FloatArray, dropout_shift: int = 0, nodes: int = 96
) -> FloatArray:
    """E[X(T, T+t) | alive at T, x, T] = E[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p], p ~ Beta(a, b+x+shift).

    Given alive, the purchase rate is Gamma(r+x, alpha+T) and the dropout probability Beta(a, b+x) (MBG/NBD,
    which also has a dropout chance at the first purchase, passes ``dropout_shift=1``); a customer with rate
    lambda and dropout p makes (1 - exp(-lambda p t)) / p purchases in t on average. The Beta expectation is
    a Gauss-Jacobi sum, exact for the weight p^(a-1) (1-p)^(b+x+shift-1).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.empty_like(t)
    for frequency in np.unique(x):
        rows = x == frequency
        u, w = roots_jacobi(nodes, b + frequency + dropout_shift - 1, a - 1)
        p = (1 + u) / 2  # nodes on (0, 1)
        base = (alpha + T[rows])[:, None]
        shape = r + frequency
        inner = -np.expm1(shape * np.log(base / (base + p[None, :] * t[rows][:, None]))) / p[None, :]
        out[rows] = inner @ w / w.sum()
    return out


def expected_purchases_new_customer(params: BetaGeoParams, t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases in (0, t] of a randomly chosen new customer (FHL 2005, eq. 9)."""
    (horizon,) = _arrays(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    hyp = hyp2f1(r, b, a + b - 1, horizon / (alpha + horizon))
    return np.asarray((a + b - 1) / (a - 1) * (1 - hyp * (alpha / (alpha + horizon)) ** r), dtype=np.float64)


def log_likelihood(
    params: BetaGeoParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
) -> float:
    """Total log-likelihood in the units of the data (comparable to the published -9582.43 on CDNOW)."""
    per_row = log_likelihood_rows(params, frequency, recency, T)
    w = np.ones_like(per_row) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.sum(w * per_row))


def log_likelihood_rows(params: BetaGeoParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Each history's log-likelihood (FHL 2005, eq. 6)."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + t_obs)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(x > 0, a4, -np.inf)
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=np.float64)


def repeat_count_pmf(params: BetaGeoParams, counts: ArrayLike, t: ArrayLike) -> FloatArray:
    """P(X(t) = x): the chance that a new customer makes x repeat purchases in (0, t] (FHL 2005, eq. 8).

    At t = 0 (a customer whose first purchase is on the calibration end) P(X(0) = 0) = 1: x log(t / (alpha + t))
    is taken as 0 for x = 0 (``xlogy``), not 0 * -inf.
    """
    x, horizon = np.broadcast_arrays(*_arrays(counts, t))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_nb = gammaln(r + x) - gammaln(r) - gammaln(x + 1) + r * np.log(alpha / (alpha + horizon))
    log_nb = log_nb + xlogy(x, horizon / (alpha + horizon))
    alive = np.exp(betaln(a, b + x) - betaln(a, b) + log_nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        # P(N(t) >= x) for the gamma-Poisson count: I_{t/(alpha+t)}(x, r)
        at_least = np.where(x > 0, betainc(np.maximum(x, 1), r, horizon / (alpha + horizon)), 0.0)
        died = np.where(x > 0, np.exp(betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b)), 0.0) * at_least
    return np.asarray(alive + died, dtype=np.float64)


def beta_geo_priors() -> dict[str, Any]:
    """pymc-marketing 0.19's default priors of BG/NBD (and MBG/NBD): Weibull r and alpha, and a, b through the
    dropout's mean phi and concentration kappa."""
    import pymc as pm

    variables: dict[str, Any] = {
        "r": pm.Weibull("r", alpha=2, beta=1),
        "alpha": pm.Weibull("alpha", alpha=2, beta=10),
    }
    phi = pm.Uniform("phi_dropout", lower=0, upper=1)
    kappa = pm.Pareto("kappa_dropout", alpha=1, m=1)
    variables["a"] = pm.Deterministic("a", phi * kappa)
    variables["b"] = pm.Deterministic("b", (1 - phi) * kappa)
    return variables


def _pymc_distribution(v: Mapping[str, Any], T: FloatArray) -> Any:
    from pymc_marketing.clv.distributions import BetaGeoNBD

    return BetaGeoNBD.dist(a=v["a"], b=v["b"], r=v["r"], alpha=v["alpha"], T=T)  # type: ignore[no-untyped-call]


MODEL = PurchaseModel(
    name="bgnbd",
    label="BG/NBD",
    params_type=BetaGeoParams,
    rates=("alpha",),
    p_alive=p_alive,
    p_no_purchase=p_no_purchase,
    expected_purchases=expected_purchases,
    expected_purchases_new_customer=expected_purchases_new_customer,
    log_likelihood_rows=log_likelihood_rows,
    repeat_count_pmf=repeat_count_pmf,
    mle=BetaGeoMle(),
    pymc=PymcSpec(beta_geo_priors, _pymc_distribution),
)
