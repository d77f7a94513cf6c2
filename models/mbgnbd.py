"""MBG/NBD purchase model (Batislam, Denizel & Filiztekin 2007) evaluated from its parameters.

Like BG/NBD, but a customer can also drop out right after the first purchase, so customers without a
repeat purchase are not certain to be alive. Time is in the model's unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betainc, betaln, expit, gammaln, hyp2f1, xlogy

from models.bgnbd import BetaGeoParams, beta_geo_priors, expected_purchases_if_alive
from models.definition import PurchaseModel, PymcSpec
from models.histories import once_per_distinct
from models.lifetimes_fit import LifetimesFitter

__all__ = [
    "MODEL",
    "MBGNBDParams",
    "expected_purchases",
    "expected_purchases_new_customer",
    "log_likelihood_rows",
    "p_alive",
    "p_no_purchase",
    "repeat_count_pmf",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MBGNBDParams:
    """r, alpha: gamma heterogeneity of purchase rates; a, b: beta heterogeneity of dropout."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def as_beta_geo(self) -> BetaGeoParams:
        return BetaGeoParams(self.r, self.alpha, self.a, self.b)


def _arrays(*values: ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values))


def p_alive(params: MBGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = np.log(a / (b + x)) + (r + x) * np.log((alpha + t_obs) / (alpha + t_x))
    return np.asarray(expit(-log_odds_dead), dtype=np.float64)


def p_no_purchase(
    params: MBGNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(no purchase in (T, T+t]): dropout only happens at purchases, so as for BG/NBD."""
    horizon, x, t_x, t_obs = _arrays(t, frequency, recency, T)
    alive = p_alive(params, x, t_x, t_obs)
    silent = np.exp((params.r + x) * np.log((params.alpha + t_obs) / (params.alpha + t_obs + horizon)))
    return np.asarray(1.0 - alive + alive * silent, dtype=np.float64)


def expected_purchases(
    params: MBGNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[X(T, T+t) | x, t_x, T] = P(alive) (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)].

    z = t / (alpha+T+t). Where the closed form breaks down (a near 1, overflow) quadrature takes over.
    """
    horizon, x, t_x, t_obs = _arrays(t, frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    alive = p_alive(params, x, t_x, t_obs)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = horizon / (alpha + t_obs + horizon)  # the hypergeometric term once per distinct (x, z): the same numbers
        hyp = once_per_distinct(lambda xs, zs: hyp2f1(r + xs, b + xs + 1, a + b + xs, zs), *np.broadcast_arrays(x, z))
        silent = np.exp((r + x) * np.log((alpha + t_obs) / (alpha + t_obs + horizon)))
        expected = np.asarray(alive * (a + b + x) / (a - 1) * (1 - silent * hyp), dtype=np.float64)
    unstable = ~np.isfinite(expected) | (abs(a - 1) < 1e-6) | (expected < 0)
    if unstable.any():
        expected[unstable] = alive[unstable] * expected_purchases_if_alive(
            params.as_beta_geo(), horizon[unstable], x[unstable], t_obs[unstable], dropout_shift=1
        )
    return expected


def expected_purchases_new_customer(params: MBGNBDParams, t: ArrayLike) -> FloatArray:
    """E[X(t)] for a new customer: b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]."""
    zeros = np.zeros_like(np.asarray(t, dtype=np.float64))
    return expected_purchases(params, t, zeros, zeros, zeros)


def log_likelihood_rows(params: MBGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Each history's log-likelihood (Batislam et al. 2007, eq. 4)."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + t_obs)
    died = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
    return np.asarray(head + np.logaddexp(alive, died), dtype=np.float64)


def repeat_count_pmf(params: MBGNBDParams, counts: ArrayLike, t: ArrayLike) -> FloatArray:
    """P(X(t) = x) for a new customer: alive through x + 1 dropout chances, or dropped after the x-th.

    At t = 0, P(X(0) = 0) = 1 (x log(t / (alpha + t)) is 0 for x = 0).
    """
    x, horizon = _arrays(counts, t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_nb = gammaln(r + x) - gammaln(r) - gammaln(x + 1) + r * np.log(alpha / (alpha + horizon))
    log_nb = log_nb + xlogy(x, horizon / (alpha + horizon))
    alive = np.exp(betaln(a, b + x + 1) - betaln(a, b) + log_nb)
    # P(N(t) >= x) for the gamma-Poisson count; 1 when x = 0
    at_least = np.where(x > 0, betainc(np.maximum(x, 1), r, horizon / (alpha + horizon)), 1.0)
    died = np.exp(betaln(a + 1, b + x) - betaln(a, b)) * at_least
    return np.asarray(alive + died, dtype=np.float64)


def _pymc_distribution(v: Mapping[str, Any], T: FloatArray) -> Any:
    from pymc_marketing.clv.distributions import ModifiedBetaGeoNBD

    return ModifiedBetaGeoNBD.dist(a=v["a"], b=v["b"], r=v["r"], alpha=v["alpha"], T=T)  # type: ignore[no-untyped-call]


MODEL = PurchaseModel(
    name="mbgnbd",
    label="MBG/NBD",
    params_type=MBGNBDParams,
    rates=("alpha",),
    p_alive=p_alive,
    p_no_purchase=p_no_purchase,
    expected_purchases=expected_purchases,
    expected_purchases_new_customer=expected_purchases_new_customer,
    log_likelihood_rows=log_likelihood_rows,
    repeat_count_pmf=repeat_count_pmf,
    mle=LifetimesFitter("ModifiedBetaGeoFitter"),
    pymc=PymcSpec(beta_geo_priors, _pymc_distribution),
)
