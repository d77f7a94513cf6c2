"""Maximum likelihood over positive parameters, for the models whose likelihood we write ourselves.

The sBG and BG/BB fits are our own (lifetimes has no sBG, and its BG/BB fitter has no analytic gradient
and stores a rescaled mean log-likelihood). The optimiser works on the log-parameters, so every
parameter stays positive, with the caller's analytic gradient; the objective is divided by the number of
customers so that the tolerances mean the same for 10k or 10M customers. Standard errors come from the
inverse of the observed information: the Hessian of the log-likelihood in the log-parameters, by central
differences of the analytic gradient, mapped back with the delta method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from models.fitted import FitError

__all__ = ["LOG_BOUND", "MaximumLikelihood", "maximize_log_likelihood"]

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]
"""Parameters -> (total log-likelihood, its gradient with respect to the parameters)."""

LOG_BOUND = float(np.log(1e9))
"""Every parameter is kept in [1e-9, 1e9]: beyond that the models' predictions no longer change."""


@dataclass(frozen=True)
class MaximumLikelihood:
    """The maximum: parameters, their standard errors (NaN where the information is singular or at a
    bound), the total log-likelihood, and the names of the parameters that ended at a bound."""

    values: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    at_bound: tuple[str, ...]


def maximize_log_likelihood(
    objective: Objective, names: tuple[str, ...], n_observations: float, label: str, start: FloatArray | None = None
) -> MaximumLikelihood:
    """Maximise ``objective`` over positive parameters named ``names`` (start: all 1)."""
    scale = 1.0 / max(float(n_observations), 1.0)

    def negative(log_values: FloatArray) -> tuple[float, FloatArray]:
        values = np.exp(log_values)
        ll, gradient = objective(values)
        if not np.isfinite(ll) or not np.all(np.isfinite(gradient)):
            return float("inf"), np.zeros_like(log_values)
        return -ll * scale, -gradient * values * scale

    x0 = np.zeros(len(names)) if start is None else np.log(np.asarray(start, dtype=np.float64))
    with np.errstate(all="ignore"):
        result = minimize(
            negative,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(names),
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
        )
    log_values = np.asarray(result.x, dtype=np.float64)
    values = np.exp(log_values)
    ll, gradient = objective(values)
    at_bound = tuple(k for k, u in zip(names, log_values, strict=True) if abs(u) >= LOG_BOUND - 1e-6)
    inside = [abs(u) < LOG_BOUND - 1e-6 for u in log_values]
    stationary = np.all(np.abs(gradient * values * scale)[inside] < 1e-5)
    if not np.isfinite(ll) or not stationary:
        raise FitError(f"{label}: the maximum-likelihood fit did not converge ({result.message}; parameters {values})")
    errors = _standard_errors(objective, log_values, inside)
    return MaximumLikelihood(
        values={k: float(v) for k, v in zip(names, values, strict=True)},
        standard_errors={k: float(v) for k, v in zip(names, errors, strict=True)},
        log_likelihood=float(ll),
        at_bound=at_bound,
    )


def _standard_errors(
    objective: Objective, log_values: FloatArray, inside: list[bool], step: float = 1e-5
) -> FloatArray:
    """sqrt(diag(inverse observed information)), delta method from the log-parameters; NaN where singular."""
    errors = np.full(len(log_values), np.nan)
    free = np.flatnonzero(inside)
    if free.size == 0:
        return errors

    def log_gradient(u: FloatArray) -> FloatArray:
        values = np.exp(u)
        return objective(values)[1] * values

    hessian = np.empty((free.size, free.size))
    for row, i in enumerate(free):
        shift = np.zeros_like(log_values)
        shift[i] = step
        hessian[row] = (log_gradient(log_values + shift) - log_gradient(log_values - shift))[free] / (2 * step)
    information = -(hessian + hessian.T) / 2
    with np.errstate(all="ignore"):
        try:
            np.linalg.cholesky(information)  # positive definite, or the errors are undefined
            covariance = np.linalg.inv(information)
        except np.linalg.LinAlgError:
            return errors
    errors[free] = np.exp(log_values[free]) * np.sqrt(np.diag(covariance))
    return errors
