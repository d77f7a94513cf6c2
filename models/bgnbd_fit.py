"""Maximum-likelihood fit of BG/NBD (Fader, Hardie & Lee 2005) with an analytic gradient, in numpy and scipy.

Why our own fit rather than lifetimes' ``BetaGeoFitter``: lifetimes minimises with BFGS and an autograd
gradient (and an autograd Hessian for the standard errors), which traces every history on every step. Here:

- the gamma-function terms depend on a history only through its frequency x (a few hundred distinct values),
  so they are evaluated once per frequency and weighted by the customers at each;
- the rest is one vectorised pass over the distinct (frequency, recency, T) histories that gives the value
  and the analytic gradient together (digamma for the shapes), and BFGS on the log-parameters (as lifetimes) converges
  in a few dozen passes;
- the standard errors come from the Hessian by central differences of the analytic gradient (8 passes).

The objective is lifetimes' own, so the optimum is the same: time divided by the largest T, the mean negative
log-likelihood over the customers plus ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` in those scaled units,
and the same start (every log-parameter at 0.1) unless a start is given. lifetimes' standard errors are
``params * sqrt(diag(inverse Hessian) / n)`` in the log-parameters; so are ours.

Where our optimum is not a clean interior one (a parameter running off, a Hessian that is not positive
definite, a gradient that is not small), :class:`BetaGeoMle` hands the fit to lifetimes with the same start,
so the remedies of the fit stage see exactly what they saw before (lifetimes' failures and degenerate fits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from models.definition import MleFit
from models.histories import in_parts
from models.lifetimes_fit import LifetimesFitter
from models.positive_mle import central_hessian, delta_method_errors

if TYPE_CHECKING:
    from models.definition import PurchaseModel

__all__ = ["ACCEPTED_GRADIENT", "RATE_RANGE", "SHAPE_RANGE", "BetaGeoMle", "BetaGeoObjective", "OwnFit", "fit_beta_geo"]

FloatArray = NDArray[np.float64]
NAMES = ("r", "alpha", "a", "b")
LIFETIMES_START = 0.1
"""lifetimes starts every log-parameter (time scaled to the largest T) at 0.1."""
ACCEPTED_GRADIENT = 1e-8
"""Largest gradient of the mean objective (per log-parameter) at which our optimum is accepted."""
BFGS_GRADIENT = 1e-7
"""BFGS stops here (lifetimes' own tolerance); Newton steps then polish the optimum."""
POLISHED = 1e-11
"""The gradient the Newton steps aim for."""
SHAPE_RANGE = (1e-3, 1e3)
"""Our optimum is accepted only with the shapes r, a, b in this range; outside it the fit is near a degenerate
corner (a run-off), where lifetimes decides as before."""
RATE_RANGE = (1e-6, 1e6)
"""The same for alpha in scaled time (the largest T is 1): a rate scale, wider apart (frequent buyers have a small
alpha in days)."""


class BetaGeoObjective:
    """lifetimes' penalized mean negative log-likelihood of BG/NBD on weighted histories, as a function of the
    log-parameters (time scaled by ``scale``), with its analytic gradient."""

    def __init__(self, rows: pd.DataFrame, penalizer: float, scale: float) -> None:
        x = rows["frequency"].to_numpy(dtype=np.float64)
        w = rows["weight"].to_numpy(dtype=np.float64)
        t_x = rows["recency"].to_numpy(dtype=np.float64) * scale
        t_obs = rows["T"].to_numpy(dtype=np.float64) * scale
        self.penalizer = penalizer
        self.n = float(w.sum())
        repeat = x > 0
        # Customers without a repeat purchase: only T matters.
        self.w0, self.T0 = w[~repeat], t_obs[~repeat]
        whole = x.astype(np.int64)
        self.x_values = np.unique(whole)
        self.x_weights = np.bincount(np.searchsorted(self.x_values, whole), weights=w).astype(np.float64)
        repeat_values = self.x_values[self.x_values > 0]
        self.k = np.searchsorted(repeat_values, whole[repeat])  # each repeat history's frequency index
        self.xr_values = repeat_values.astype(np.float64)
        self.x, self.w, self.t_x, self.T = x[repeat], w[repeat], t_x[repeat], t_obs[repeat]
        self.evaluations = 0

    def log_likelihood(self, params: FloatArray) -> tuple[float, FloatArray]:
        """Total (unpenalized) log-likelihood in scaled time and its gradient in (r, alpha, a, b)."""
        self.evaluations += 1
        r, alpha, a, b = (float(v) for v in params)
        xk, wk, n = self.x_values.astype(np.float64), self.x_weights, self.n
        # Per frequency: gammaln(r + x) - gammaln(r) + r log(alpha) + log B(a, b + x) - log B(a, b).
        ll = _dot(wk, gammaln(r + xk) + gammaln(b + xk) - gammaln(a + b + xk))
        ll += n * (gammaln(a + b) - gammaln(r) - gammaln(b) + r * np.log(alpha))
        g_r = _dot(wk, digamma(r + xk)) + n * (np.log(alpha) - digamma(r))
        g_alpha = n * r / alpha
        g_a = n * digamma(a + b) - _dot(wk, digamma(a + b + xk))
        g_b = g_a + _dot(wk, digamma(b + xk)) - n * digamma(b)
        # Never repeat buyers: -r log(alpha + T).
        log_t0 = np.log(alpha + self.T0)
        ll -= r * _dot(self.w0, log_t0)
        g_r -= _dot(self.w0, log_t0)
        g_alpha -= r * _dot(self.w0, 1.0 / (alpha + self.T0))
        # Repeat buyers: A3 + log(1 + exp(d)) with A3 = -(r + x) log(alpha + T) and the dropped-out branch
        # A4 = A3 + d, d = log a - log(b + x - 1) - (r + x) (log(alpha + t_x) - log(alpha + T)).
        w = self.w
        terms = self._repeat_terms(r, alpha, a, b)
        ll += _dot(w, terms["log_likelihood"])
        wd = terms["weight_died"]
        g_r -= _dot(w, terms["log_t"]) + _dot(wd, terms["gap"])
        g_alpha -= _dot(terms["weight_rx"], terms["alpha_term"])
        g_a += float(wd.sum()) / a
        g_b -= _dot(wd, terms["inv_b"])
        return ll, np.array([g_r, g_alpha, g_a, g_b])

    def _repeat_terms(self, r: float, alpha: float, a: float, b: float) -> dict[str, FloatArray]:
        """The repeat buyers' elementwise terms, part by part on every core (:func:`models.histories.in_parts`)
        into whole arrays: the sums over them are then taken as before, so the numbers do not depend on the
        number of parts (tested bit-equal to one part)."""
        n = len(self.w)
        names = ("log_t", "gap", "log_likelihood", "weight_died", "weight_rx", "alpha_term", "inv_b")
        out = {name: np.empty(n) for name in names}
        log_ab = np.log(a) - np.log(b + self.xr_values - 1)
        inv_b = 1.0 / (b + self.xr_values - 1)

        def part(start: int, stop: int) -> None:
            rows = slice(start, stop)
            w, k, t_obs, t_x = self.w[rows], self.k[rows], self.T[rows], self.t_x[rows]
            log_t = np.log(alpha + t_obs)
            gap = np.log(alpha + t_x) - log_t
            rx = r + self.x[rows]
            d = log_ab[k] - rx * gap
            small = np.exp(-np.abs(d))
            share = 1.0 / (1.0 + small)  # expit(|d|)
            died = np.where(d >= 0, share, small * share)  # expit(d): the weight of the branch A4
            inv_t = 1.0 / (alpha + t_obs)
            out["log_t"][rows], out["gap"][rows] = log_t, gap
            out["log_likelihood"][rows] = np.maximum(d, 0.0) - np.log(share) - rx * log_t
            out["weight_died"][rows] = w * died
            out["weight_rx"][rows] = w * rx
            out["alpha_term"][rows] = inv_t + died * (1.0 / (alpha + t_x) - inv_t)
            out["inv_b"][rows] = inv_b[k]

        in_parts(part, n)
        return out

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        """The penalized mean negative log-likelihood and its gradient in the log-parameters."""
        params = np.exp(log_params)
        ll, gradient = self.log_likelihood(params)
        value = -ll / self.n + self.penalizer * float(np.sum(params**2))
        log_gradient = -gradient * params / self.n + 2 * self.penalizer * params**2
        if not np.isfinite(value) or not np.all(np.isfinite(log_gradient)):
            return float("inf"), np.zeros_like(log_params)
        return value, log_gradient

    def hessian(self, log_params: FloatArray, step: float = 1e-5) -> FloatArray:
        """The Hessian of :meth:`__call__` in the log-parameters, by central differences of the gradient."""
        return central_hessian(lambda u: self(u)[1], log_params, step)


def _dot(u: FloatArray, v: FloatArray) -> float:
    """sum(u * v) without BLAS: a threaded BLAS dot on a loaded machine spins for milliseconds."""
    return float(np.multiply(u, v).sum())


@dataclass(frozen=True)
class OwnFit:
    """Our optimum in the data's time unit, whether it is a clean interior one (``accepted``) and why not."""

    params: dict[str, float]
    standard_errors: dict[str, float]
    accepted: bool
    reason: str
    evaluations: int


def fit_beta_geo(rows: pd.DataFrame, penalizer: float = 0.0, start: FloatArray | None = None) -> OwnFit:
    """BG/NBD by maximum likelihood on weighted histories (``frequency``, ``recency``, ``T``, ``weight``).

    ``start``: (r, alpha, a, b) in the data's time unit, or None for lifetimes' start.
    """
    scale = 1.0 / float(rows["T"].to_numpy().max())
    objective = BetaGeoObjective(rows, penalizer, scale)
    if start is None:
        u0 = np.full(4, LIFETIMES_START)
    else:
        u0 = np.log(np.asarray(start, dtype=np.float64) * np.array([1.0, scale, 1.0, 1.0]))
    with np.errstate(all="ignore"):
        result = minimize(
            objective,
            u0,
            jac=True,
            method="BFGS",
            options={"maxiter": 1000, "gtol": BFGS_GRADIENT},
        )
        u, value, gradient, hessian = _polish(objective, np.asarray(result.x, dtype=np.float64))
    params = np.exp(u)
    values = dict(zip(NAMES, (float(v) for v in params / np.array([1.0, scale, 1.0, 1.0])), strict=True))
    errors, positive_definite = _standard_errors(hessian, values, objective.n)
    reason = ""
    if not np.isfinite(value):
        reason = "the log-likelihood is not finite"
    elif _outside(params):
        reason = f"a parameter left its range in scaled time ({dict(zip(NAMES, params.round(6), strict=True))})"
    elif float(np.abs(gradient).max()) > ACCEPTED_GRADIENT:
        reason = f"the gradient is not small ({float(np.abs(gradient).max()):.2g}; {result.message})"
    elif not positive_definite:
        reason = "the Hessian is not positive definite"
    return OwnFit(values, errors, not reason, reason, objective.evaluations)


def _outside(params: FloatArray) -> bool:
    """A parameter (r, alpha in scaled time, a, b) outside SHAPE_RANGE (RATE_RANGE for alpha)."""
    low = np.array([SHAPE_RANGE[0], RATE_RANGE[0], SHAPE_RANGE[0], SHAPE_RANGE[0]])
    high = np.array([SHAPE_RANGE[1], RATE_RANGE[1], SHAPE_RANGE[1], SHAPE_RANGE[1]])
    return bool((params < low).any() or (params > high).any())


def _polish(
    objective: BetaGeoObjective, u: FloatArray, steps: int = 4
) -> tuple[FloatArray, float, FloatArray, FloatArray]:
    """Newton steps from BFGS's stop (Hessian by differences of the analytic gradient) down to a gradient of
    POLISHED: quadratic convergence where BFGS would creep; a step that makes nothing better is not taken.
    Returns the point, its value, gradient and Hessian."""
    value, gradient = objective(u)
    hessian = objective.hessian(u)
    for _ in range(steps):
        if not np.isfinite(value) or float(np.abs(gradient).max()) <= POLISHED:
            break
        try:
            np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            break
        candidate = u - np.linalg.solve(hessian, gradient)
        new_value, new_gradient = objective(candidate)
        if not (np.isfinite(new_value) and float(np.abs(new_gradient).max()) < float(np.abs(gradient).max())):
            break
        u, value, gradient = candidate, new_value, new_gradient
        hessian = objective.hessian(u)
    return u, value, gradient, hessian


def _standard_errors(hessian: FloatArray, values: dict[str, float], n: float) -> tuple[dict[str, float], bool]:
    """lifetimes' standard errors: params * sqrt(diag(inverse Hessian of the mean objective) / n)."""
    errors = delta_method_errors(hessian, np.asarray(list(values.values())), n)
    if errors is None:
        return dict.fromkeys(NAMES, float("nan")), False
    return dict(zip(NAMES, (float(e) for e in errors), strict=True)), True


@dataclass(frozen=True)
class BetaGeoMle:
    """The maximum-likelihood hook of BG/NBD: our own fit, and lifetimes' (same start, same objective) where
    ours does not reach a clean interior optimum."""

    fallback: LifetimesFitter = field(default_factory=lambda: LifetimesFitter("BetaGeoFitter"))

    def __call__(
        self, model: PurchaseModel[Any], rows: pd.DataFrame, penalizer: float, start: FloatArray | None
    ) -> MleFit:
        if _valid(rows):
            own = fit_beta_geo(rows, penalizer, start)
            if own.accepted:
                return MleFit(own.params, own.standard_errors)
        return self.fallback(model, rows, penalizer, start)


def _valid(rows: pd.DataFrame) -> bool:
    """Histories lifetimes accepts as they are: whole non-negative frequencies, 0 <= recency <= T, recency 0
    without a repeat purchase, some T > 0 (time is divided by the largest). Anything else goes to lifetimes,
    which refuses it (or truncates a fractional frequency) as before."""
    x, t_x, t_obs = (rows[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    return bool(
        len(x) > 0
        and (x >= 0).all()
        and (x == np.floor(x)).all()
        and (t_x >= 0).all()
        and (t_x <= t_obs).all()
        and (t_x[x == 0] == 0).all()
        and (rows["weight"].to_numpy() > 0).all()
        and np.isfinite(t_obs).all()
        and t_obs.max() > 0
    )
