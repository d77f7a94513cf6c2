"""Maximum likelihood over positive parameters, for the models whose likelihood we write ourselves.

The sBG and BG/BB fits are our own (lifetimes has no sBG, and its BG/BB fitter has no analytic gradient
and stores a rescaled mean log-likelihood). The optimiser works on the log-parameters, so every
parameter stays positive, with the caller's analytic gradient; the objective is divided by the number of
customers so that the tolerances mean the same for 10k or 10M customers. Standard errors come from the
inverse of the observed information: the Hessian of the log-likelihood in the log-parameters, by central
differences of the analytic gradient, mapped back with the delta method (:func:`central_hessian` and
:func:`delta_method_errors`, which the BG/NBD fit in :mod:`models.bgnbd_fit` uses too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from models.fitted import FitError

__all__ = ["LOG_BOUND", "MaximumLikelihood", "central_hessian", "delta_method_errors", "maximize_log_likelihood"]

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]
"""Parameters -> (total log-likelihood, its gradient with respect to the parameters)."""
Gradient = Callable[[FloatArray], FloatArray]
"""A point -> the analytic gradient of a function there."""

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

    information = -central_hessian(log_gradient, log_values, step, free)
    found = delta_method_errors(information, np.exp(log_values[free]))
    if found is not None:
        errors[free] = found
    return errors


def central_hessian(
    gradient: Gradient, point: FloatArray, step: float = 1e-5, free: Sequence[int] | NDArray[np.int64] | None = None
) -> FloatArray:
    """The Hessian at ``point`` by central differences of the analytic ``gradient`` (two calls per coordinate),
    symmetrised as (H + H^T) / 2. With ``free``, only those coordinates are moved, and the Hessian is theirs
    (rows and columns in that order); the others stay where they are."""
    index = np.arange(len(point)) if free is None else np.asarray(free, dtype=np.int64)
    hessian = np.empty((index.size, index.size))
    for row, i in enumerate(index):
        shift = np.zeros_like(point)
        shift[i] = step
        hessian[row] = (gradient(point + shift) - gradient(point - shift))[index] / (2 * step)
    return np.asarray((hessian + hessian.T) / 2, dtype=np.float64)


def delta_method_errors(information: FloatArray, values: FloatArray, n: float = 1.0) -> FloatArray | None:
    """Standard errors of positive parameters ``values`` from the information matrix of their logarithms:
    values * sqrt(diag(information^-1) / n), the delta method (d theta = theta d log theta).

    ``information``: the negative Hessian of a log-likelihood in the log-parameters (the Hessian of a negative
    one), of the total (``n`` = 1) or of the mean over ``n`` observations. None where it is not positive
    definite: the errors are then undefined.
    """
    with np.errstate(all="ignore"):
        try:
            np.linalg.cholesky(information)
            covariance = np.linalg.inv(information)
        except np.linalg.LinAlgError:
            return None
        return np.asarray(values * np.sqrt(np.diag(covariance) / n), dtype=np.float64)
