"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987) evaluated from its parameters.

Purchases are Poisson(lambda) while alive; the lifetime is exponential(mu); lambda ~ Gamma(r, alpha)
and mu ~ Gamma(s, beta) across customers. Formulas follow Fader & Hardie's notes "A note on deriving
the Pareto/NBD model" (2005) and lifetimes' implementation; time is in the model's unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, gammaincc, gammaln, hyp2f1, roots_genlaguerre, roots_legendre, xlogy

from models.definition import PurchaseModel, PymcSpec
from models.lifetimes_fit import LifetimesFitter

__all__ = [
    "MODEL",
    "ParetoNBDParams",
    "expected_purchases",
    "expected_purchases_new_customer",
    "log_likelihood_rows",
    "p_alive",
    "p_no_purchase",
    "repeat_count_pmf",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ParetoNBDParams:
    """r, alpha: gamma heterogeneity of purchase rates; s, beta: gamma heterogeneity of dropout rates."""

    r: float
    alpha: float
    s: float
    beta: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _arrays(*values: ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values))


def _log_a0(params: ParetoNBDParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """log A_0 (equations 19 and 20 of the note); -inf where t_x == T (no time to die unseen)."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    if alpha < beta:
        low, high, second = alpha, beta, r + x
    else:
        low, high, second = beta, alpha, s + 1 + 0 * x
    rsx = r + s + x
    q1, q2 = high + t_x, high + T
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p1 = np.log(hyp2f1(rsx, second, rsx + 1, (high - low) / q1)) - rsx * np.log(q1)
        log_p2 = np.log(hyp2f1(rsx, second, rsx + 1, (high - low) / q2)) - rsx * np.log(q2)
        # log(exp(log_p1) - exp(log_p2)), with p1 >= p2 because q1 <= q2
        out = log_p1 + np.log(-np.expm1(log_p2 - log_p1))
    return np.asarray(np.where(t_x >= T, -np.inf, out), dtype=np.float64)


def _log_odds_dead(params: ParetoNBDParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    return np.asarray(
        np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T) + _log_a0(params, x, t_x, T),
        dtype=np.float64,
    )


def p_alive(params: ParetoNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T) (equation 37 of the note)."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    return np.asarray(expit(-_log_odds_dead(params, x, t_x, t_obs)), dtype=np.float64)


def expected_purchases(
    params: ParetoNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[X(T, T+t) | x, t_x, T] = P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)].

    At s = 1 the bracket over (s - 1) is its limit, log((beta+T+t)/(beta+T)).
    """
    horizon, x, t_x, t_obs = _arrays(t, frequency, recency, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_ratio = np.log((beta + t_obs + horizon) / (beta + t_obs))
    bracket = log_ratio if abs(s - 1) < 1e-9 else -np.expm1(-(s - 1) * log_ratio) / (s - 1)
    rate = (r + x) * (beta + t_obs) / (alpha + t_obs)
    return np.asarray(p_alive(params, x, t_x, t_obs) * rate * bracket, dtype=np.float64)


def p_no_purchase(
    params: ParetoNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, nodes: int = 48
) -> FloatArray:
    """P(no purchase in (T, T+t] | x, t_x, T).

    Given alive at T, lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T) independently, and a
    customer buys in the window with probability int_0^t lambda exp(-(lambda+mu) u) du. Its expectation
    is int_0^t E[lambda e^(-lambda u)] E[e^(-mu u)] du, a smooth one-dimensional integral (Gauss-Legendre).
    """
    horizon, x, t_x, t_obs = _arrays(t, frequency, recency, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    nodes_u, weights = roots_legendre(nodes)
    u = (horizon[..., None] / 2) * (nodes_u + 1)  # nodes on (0, t)
    k, rate, rate_mu = (r + x)[..., None], (alpha + t_obs)[..., None], (beta + t_obs)[..., None]
    integrand = (k / rate) * np.exp((k + 1) * np.log(rate / (rate + u)) + s * np.log(rate_mu / (rate_mu + u)))
    buys_if_alive = (integrand @ weights) * horizon / 2
    return np.asarray(1.0 - p_alive(params, x, t_x, t_obs) * buys_if_alive, dtype=np.float64)


def expected_purchases_new_customer(params: ParetoNBDParams, t: ArrayLike) -> FloatArray:
    """E[X(t)] for a new customer: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)], the conditional
    expectation of a history with no time observed (x = t_x = T = 0, so P(alive) = 1)."""
    zeros = np.zeros_like(np.asarray(t, dtype=np.float64))
    return expected_purchases(params, t, zeros, zeros, zeros)


def log_likelihood_rows(params: ParetoNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Each history's log-likelihood (equation 22 of the note)."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    a2 = np.logaddexp(
        -(r + x) * np.log(alpha + t_obs) - s * np.log(beta + t_obs),
        np.log(s) + _log_a0(params, x, t_x, t_obs) - np.log(r + s + x),
    )
    return np.asarray(a1 + a2, dtype=np.float64)


def repeat_count_pmf(params: ParetoNBDParams, counts: ArrayLike, t: ArrayLike, nodes: int = 64) -> FloatArray:
    """P(X(t) = x) for a new customer observed for ``t``, by generalised Gauss-Laguerre quadrature.

    Given (lambda, mu): P(X(t)=x) = (lambda t)^x e^(-(lambda+mu) t) / x!
    + lambda^x mu / (lambda+mu)^(x+1) [1 - e^(-(lambda+mu) t) sum_{i<=x} ((lambda+mu) t)^i / i!].
    At t = 0, P(X(0) = 0) = 1 ((lambda t)^0 is 1, via ``xlogy``).
    """
    x, horizon = _arrays(counts, t)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    g_l, w_l = roots_genlaguerre(nodes, r - 1)
    g_m, w_m = roots_genlaguerre(nodes, s - 1)
    lam = (g_l / alpha)[:, None]
    mu = (g_m / beta)[None, :]
    weight = (w_l / w_l.sum())[:, None] * (w_m / w_m.sum())[None, :]
    out = np.empty(x.shape)
    for i, (count, length) in enumerate(zip(x.ravel(), horizon.ravel(), strict=True)):
        total = lam + mu
        alive_part = np.exp(xlogy(count, lam * length) - total * length - gammaln(count + 1))
        # 1 - e^{-z} sum_{i<=x} z^i/i! is the regularised lower incomplete gamma P(x+1, z)
        dead_part = np.exp(count * np.log(lam / total) + np.log(mu / total)) * (
            1 - gammaincc(count + 1, total * length)
        )
        out.flat[i] = float(np.sum(weight * (alive_part + dead_part)))
    return np.asarray(out, dtype=np.float64)


def _pymc_priors() -> dict[str, Any]:
    """pymc-marketing 0.19's default priors of Pareto/NBD: Weibull on every parameter."""
    import pymc as pm

    return {
        "r": pm.Weibull("r", alpha=2, beta=1),
        "alpha": pm.Weibull("alpha", alpha=2, beta=10),
        "s": pm.Weibull("s", alpha=2, beta=1),
        "beta": pm.Weibull("beta", alpha=2, beta=10),
    }


def _pymc_distribution(v: Mapping[str, Any], T: FloatArray) -> Any:
    from pymc_marketing.clv.distributions import ParetoNBD

    return ParetoNBD.dist(r=v["r"], alpha=v["alpha"], s=v["s"], beta=v["beta"], T=T)  # type: ignore[no-untyped-call]


MODEL = PurchaseModel(
    name="pareto_nbd",
    label="Pareto/NBD",
    params_type=ParetoNBDParams,
    rates=("alpha", "beta"),
    p_alive=p_alive,
    p_no_purchase=p_no_purchase,
    expected_purchases=expected_purchases,
    expected_purchases_new_customer=expected_purchases_new_customer,
    log_likelihood_rows=log_likelihood_rows,
    repeat_count_pmf=repeat_count_pmf,
    mle=LifetimesFitter("ParetoNBDFitter", natural_params=True),
    pymc=PymcSpec(_pymc_priors, _pymc_distribution),
)
