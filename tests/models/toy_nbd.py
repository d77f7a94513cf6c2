"""A toy purchase model added in one file: NBD, purchases at a gamma-distributed Poisson rate and no dropout.

Each customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha) (alpha in time units) and never
leaves, so P(alive) = 1. Given x repeat purchases over an age T, lambda ~ Gamma(r + x, alpha + T) (Ehrenberg's
NBD; the BG/NBD with no dropout). Registering ``MODEL`` (see tests/models/test_toy_nbd.py) is all the job
needs to fit, validate, register and score it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, gammaln, xlogy

from models.definition import MleFit, PurchaseModel
from models.positive_mle import maximize_log_likelihood

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NBDParams:
    """r, alpha: gamma heterogeneity of the purchase rates."""

    r: float
    alpha: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _arrays(*values: ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values))


def p_alive(params: NBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """No dropout: every customer is alive."""
    x, _, _ = _arrays(frequency, recency, T)
    return np.ones_like(x)


def p_no_purchase(
    params: NBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[exp(-lambda t)] with lambda ~ Gamma(r + x, alpha + T): ((alpha + T) / (alpha + T + t))^(r + x)."""
    horizon, x, _, t_obs = _arrays(t, frequency, recency, T)
    return np.exp((params.r + x) * np.log((params.alpha + t_obs) / (params.alpha + t_obs + horizon)))


def expected_purchases(
    params: NBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[lambda] t = (r + x) / (alpha + T) t."""
    horizon, x, _, t_obs = _arrays(t, frequency, recency, T)
    return (params.r + x) / (params.alpha + t_obs) * horizon


def expected_purchases_new_customer(params: NBDParams, t: ArrayLike) -> FloatArray:
    (horizon,) = _arrays(t)
    return params.r / params.alpha * horizon


def log_likelihood_rows(params: NBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Gamma(r+x)/Gamma(r) alpha^r / (alpha+T)^(r+x): the purchase times' density, lambda integrated out."""
    x, _, t_obs = _arrays(frequency, recency, T)
    r, alpha = params.r, params.alpha
    return np.asarray(
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + t_obs), dtype=np.float64
    )


def repeat_count_pmf(params: NBDParams, counts: ArrayLike, t: ArrayLike) -> FloatArray:
    """The negative binomial: P(X(t) = x) = Gamma(r+x)/(Gamma(r) x!) (alpha/(alpha+t))^r (t/(alpha+t))^x."""
    x, horizon = _arrays(counts, t)
    r, alpha = params.r, params.alpha
    log_pmf = gammaln(r + x) - gammaln(r) - gammaln(x + 1) + r * np.log(alpha / (alpha + horizon))
    return np.asarray(np.exp(log_pmf + xlogy(x, horizon / (alpha + horizon))), dtype=np.float64)


def fit_mle(model: PurchaseModel[Any], rows: pd.DataFrame, penalizer: float, start: FloatArray | None) -> MleFit:
    """Maximum likelihood with the analytic gradient (and an L2 penalty ``penalizer`` |params|^2)."""
    x, t_obs, w = (rows[c].to_numpy(dtype=np.float64) for c in ("frequency", "T", "weight"))

    def objective(values: FloatArray) -> tuple[float, FloatArray]:
        r, alpha = values
        ll = float(np.sum(w * log_likelihood_rows(NBDParams(r, alpha), x, x, t_obs))) - penalizer * float(
            values @ values
        )
        d_r = np.sum(w * (digamma(r + x) - digamma(r) + np.log(alpha) - np.log(alpha + t_obs)))
        d_alpha = np.sum(w * (r / alpha - (r + x) / (alpha + t_obs)))
        return ll, np.asarray([d_r, d_alpha]) - 2 * penalizer * values

    found = maximize_log_likelihood(objective, model.param_names, float(w.sum()), model.label, start)
    return MleFit(found.values, found.standard_errors)


MODEL = PurchaseModel(
    name="toy_nbd",
    label="NBD (toy)",
    params_type=NBDParams,
    rates=("alpha",),
    p_alive=p_alive,
    p_no_purchase=p_no_purchase,
    expected_purchases=expected_purchases,
    expected_purchases_new_customer=expected_purchases_new_customer,
    log_likelihood_rows=log_likelihood_rows,
    repeat_count_pmf=repeat_count_pmf,
    mle=fit_mle,
)
