"""Does spend vary across customers? Gamma-Gamma's no-heterogeneity limit and a likelihood-ratio test.

Without heterogeneity (q -> infinity with q / v fixed) every customer has the same spend rate nu0, and a
customer's mean spend over x purchases is Gamma(p x, x nu0): the population mean spend per transaction
then predicts every customer's order value. The likelihood ratio of the free Gamma-Gamma against that
limit is compared with its distribution on the boundary 1 / q = 0: half chi-square(0), half
chi-square(1) (Self & Liang 1987).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma, gammaln
from scipy.stats import chi2

from models.gamma_gamma_fit import SpendData

__all__ = ["NoHeterogeneityFit", "SpreadTest", "fit_no_heterogeneity", "spread_test"]


@dataclass(frozen=True)
class NoHeterogeneityFit:
    """Gamma-Gamma's q -> infinity limit: one spend rate for all, so each customer's mean spend over x
    purchases is Gamma(p x, x nu0); ``mean`` = p / nu0 is the pooled mean spend per transaction."""

    p: float
    mean: float
    mean_se: float
    """Standard error of ``mean`` under this model: mean / sqrt(p * total repeat purchases)."""
    log_likelihood: float
    """+inf when every customer's mean spend is the same (a point mass)."""


def fit_no_heterogeneity(data: SpendData) -> NoHeterogeneityFit:
    """Maximum likelihood of the no-heterogeneity limit: nu0 = p / mean in closed form, p by a root search
    (its score is X log p + sum w x log(x m / mean) - sum w x digamma(p x), decreasing in p)."""
    if data.constant_spend:
        return NoHeterogeneityFit(math.inf, data.scale, 0.0, math.inf)
    xk, wk, total_x, sum_x_log_y = data.x_values, data.x_weights, data.total_x, data.sum_x_log_y

    # ``score`` holds the few distinct frequencies, not ``data``: brentq's wrapper of it is a reference cycle,
    # which would keep the per-customer arrays (0.2 GB at 5M repeat customers) until Python's cyclic collector ran
    def score(log_p: float) -> float:
        p = math.exp(log_p)
        return total_x * log_p + sum_x_log_y - float(np.dot(wk * xk, digamma(p * xk)))

    low, high = math.log(1e-12), math.log(1e15)
    # score(high) > 0: spend so close to constant that p is beyond any useful range
    log_p = high if score(high) > 0 else float(brentq(score, low, high, xtol=1e-12))
    p = math.exp(log_p)
    value = (
        p * total_x * log_p
        + p * data.sum_x_log_y
        - data.sum_log_m
        - p * total_x
        - float(np.dot(wk, gammaln(p * xk)))
        - data.n * math.log(data.scale)
    )
    return NoHeterogeneityFit(p, data.scale, data.scale / math.sqrt(p * total_x), value)


@dataclass(frozen=True)
class SpreadTest:
    """Likelihood-ratio test of spend heterogeneity (free Gamma-Gamma against q -> infinity)."""

    statistic: float
    p_value: float
    log_likelihood_gamma_gamma: float
    log_likelihood_pooled: float

    def as_dict(self) -> dict[str, float]:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "log_likelihood_gamma_gamma": self.log_likelihood_gamma_gamma,
            "log_likelihood_pooled": self.log_likelihood_pooled,
        }


def spread_test(log_likelihood_gamma_gamma: float, pooled: NoHeterogeneityFit) -> SpreadTest:
    """2 (LL_GG - LL_pooled) against half chi-square(0) + half chi-square(1); no evidence of
    heterogeneity gives p = 1."""
    statistic = 2.0 * (log_likelihood_gamma_gamma - pooled.log_likelihood)
    if math.isnan(statistic):
        return SpreadTest(math.nan, 1.0, log_likelihood_gamma_gamma, pooled.log_likelihood)
    if statistic <= 0:  # the limit fits at least as well (a point mass, for constant spend, fits infinitely well)
        return SpreadTest(0.0, 1.0, log_likelihood_gamma_gamma, pooled.log_likelihood)
    p_value = 0.5 * float(chi2.sf(statistic, 1)) if math.isfinite(statistic) else 0.0
    return SpreadTest(statistic, p_value, log_likelihood_gamma_gamma, pooled.log_likelihood)
