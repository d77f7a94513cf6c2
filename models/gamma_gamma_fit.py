"""Maximum-likelihood fit of the Gamma-Gamma spend model (Fader & Hardie 2013), in numpy and scipy.

Why our own fit rather than lifetimes' ``GammaGammaFitter``:

- speed: lifetimes minimises the per-customer likelihood with BFGS and autograd, which traces every
  customer on every step. Here the likelihood separates: the gamma-function terms depend on a customer
  only through the frequency x (a few distinct values) and the ``(p x - 1) log m`` terms add up to
  sufficient statistics, so only ``(p x + q) log(x m + v)`` needs a pass over the customers. One pass
  gives the value, the analytic gradient (digamma) and the analytic Hessian (trigamma), and a Newton
  trust region on the log-parameters converges in about ten passes;
- dependencies: the spend model stays in numpy and scipy like the rest of ``models`` (lifetimes is
  archived and brings autograd); the same code gives the standard errors and the spread test.

Spend is divided by the pooled mean spend per transaction before fitting (p and q do not change, v
scales with the money unit), so the optimiser works on numbers near 1 in any currency. Whether spend
varies across customers at all is :mod:`models.spend_spread`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, polygamma

from models.gamma_gamma import GammaGammaParams

__all__ = [
    "NEUTRAL_START",
    "GammaGammaMLE",
    "SpendData",
    "Start",
    "fit_gamma_gamma_mle",
    "fit_spend_data",
    "gamma_gamma_log_likelihood",
]

FloatArray = NDArray[np.float64]
Start = tuple[float, float, float]
MAX_ITERATIONS = 200
GRADIENT_TOLERANCE = 1e-9
ACCEPTED_GRADIENT = 1e-6
MOMENT_ROWS = 200_000
"""Largest gradient of the mean log-likelihood (per log-parameter) accepted at a stop short of GRADIENT_TOLERANCE."""
RUN_OFF = 1e12
"""A parameter beyond this (relative to the spend scale) has run off: the optimiser stops there."""


@dataclass(frozen=True)
class SpendData:
    """Repeat customers' spend, reduced once to what the likelihood needs (in units of ``scale``)."""

    x: FloatArray
    """Repeat purchases per customer."""
    y: FloatArray
    """Total repeat spend x * m per customer, divided by ``scale``."""
    w: FloatArray
    """Customers sharing each row (1 for a per-customer summary)."""
    weights: FloatArray
    """``w`` and ``w * x`` as the rows of one matrix: each pass is a single matrix product."""
    scale: float
    """Pooled mean spend per transaction, sum(w x m) / sum(w x): the unit of ``y``."""
    n: float
    total_x: float
    x_values: FloatArray
    x_weights: FloatArray
    """The distinct frequencies and the customers at each."""
    sum_x_log_y: float
    sum_log_m: float

    @classmethod
    def from_arrays(
        cls, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> SpendData:
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
        if x.shape != m.shape or x.shape != w.shape or x.ndim != 1:
            raise ValueError("frequency, monetary_value and weights must be 1-d arrays of one length")
        if len(x) == 0 or not (x > 0).all() or not (m > 0).all() or not np.isfinite(m).all() or not (w > 0).all():
            raise ValueError("Gamma-Gamma needs customers with frequency > 0 and finite monetary_value > 0")
        stacked = np.empty((2, len(x)))
        stacked[0] = w
        wx = np.multiply(w, x, out=stacked[1])
        total_x = float(wx.sum())
        scale = float(np.dot(wx, m) / total_x)
        y = x * (m / scale)
        x_values, x_weights = _distinct_frequencies(x, None if weights is None else w)
        log_y = np.log(y)
        sum_log_y = float(np.dot(w, log_y))
        return cls(
            x=x,
            y=y,
            w=w,
            weights=stacked,
            scale=scale,
            n=float(w.sum()),
            total_x=total_x,
            x_values=x_values,
            x_weights=x_weights,
            sum_x_log_y=float(np.dot(wx, log_y)),
            # log m = log y - log x, and log x takes few values
            sum_log_m=sum_log_y - float(np.dot(x_weights, np.log(x_values))),
        )

    @property
    def constant_spend(self) -> bool:
        """Every customer's mean spend is the same (to rounding): no spread to model at all."""
        m = self.y / self.x
        return bool(m.max() - m.min() <= 1e-9 * m.max())


def _distinct_frequencies(x: FloatArray, w: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    """The distinct values of x and the customers at each (``w``: weights, None for one each); whole
    numbers are counted directly, without sorting the customers."""
    whole = x.astype(np.int64)
    if whole.max() <= 4 * len(x) + 1024 and (whole == x).all():
        counts = np.bincount(whole, weights=w).astype(np.float64)
        values = np.flatnonzero(counts)
        return values.astype(np.float64), counts[values]
    values, inverse = np.unique(x, return_inverse=True)
    return np.asarray(values, dtype=np.float64), np.bincount(inverse, weights=w).astype(np.float64)


def _per_customer_sums(data: SpendData, v: float, hessian: bool, scratch: FloatArray) -> tuple[float, ...]:
    """The one pass over customers: sums of w log(y + v), w / (y + v) and w / (y + v)^2, and the same
    with w x (as (w, w x) @ (log t, 1/t, 1/t^2) with t = y + v)."""
    rows = 3 if hessian else 2
    log_t, inverse = scratch[0], scratch[1]
    np.add(data.y, v, out=log_t)
    np.reciprocal(log_t, out=inverse)
    if hessian:
        np.multiply(inverse, inverse, out=scratch[2])
    np.log(log_t, out=log_t)
    sums = data.weights @ scratch[:rows].T  # (w, w x) x (log, inverse[, inverse^2])
    ordered = [sums[0, 0], sums[1, 0], sums[0, 1], sums[1, 1]]
    if hessian:
        ordered += [sums[0, 2], sums[1, 2]]
    return tuple(float(s) for s in ordered)


def _log_likelihood_terms(
    data: SpendData, p: float, q: float, v: float, hessian: bool = True, scratch: FloatArray | None = None
) -> tuple[float, FloatArray, FloatArray]:
    """Total log-likelihood (in scaled units), its gradient and Hessian in (p, q, v)."""
    n, xk, wk = data.n, data.x_values, data.x_weights
    px = p * xk
    scratch = np.empty((3, len(data.y))) if scratch is None else scratch
    sums = _per_customer_sums(data, v, hessian, scratch)
    s_log, s_xlog, s_inv, s_xinv = sums[:4]
    value = (
        float(np.dot(wk, gammaln(px + q) - gammaln(px)))
        - n * gammaln(q)
        + n * q * math.log(v)
        + p * data.sum_x_log_y
        - data.sum_log_m
        - p * s_xlog
        - q * s_log
    )
    psi_pxq = digamma(px + q)
    gradient = np.array(
        [
            float(np.dot(wk * xk, psi_pxq - digamma(px))) + data.sum_x_log_y - s_xlog,
            float(np.dot(wk, psi_pxq)) - n * digamma(q) + n * math.log(v) - s_log,
            n * q / v - p * s_xinv - q * s_inv,
        ]
    )
    if not hessian:
        return value, gradient, np.full((3, 3), np.nan)
    s_inv2, s_xinv2 = sums[4:]
    tri_pxq = polygamma(1, px + q)
    pp = float(np.dot(wk * xk * xk, tri_pxq - polygamma(1, px)))
    pq = float(np.dot(wk * xk, tri_pxq))
    qq = float(np.dot(wk, tri_pxq)) - n * float(polygamma(1, q))
    pv, qv = -s_xinv, n / v - s_inv
    vv = -n * q / v**2 + p * s_xinv2 + q * s_inv2
    return value, gradient, np.array([[pp, pq, pv], [pq, qq, qv], [pv, qv, vv]])


def gamma_gamma_log_likelihood(params: GammaGammaParams, data: SpendData) -> float:
    """Total log-likelihood in the data's money unit (as :func:`models.gamma_gamma.log_likelihood`)."""
    value, _, _ = _log_likelihood_terms(data, params.p, params.q, params.v / data.scale, hessian=False)
    return value - data.n * math.log(data.scale)


class _Objective:
    """Mean negative log-likelihood on the log-parameters, plus lifetimes' penalty
    ``penalizer * (p^2 + q^2 + v^2)`` (v in the data's money unit, as lifetimes has it); the value,
    gradient and Hessian of the last point are kept, since scipy asks for them separately."""

    def __init__(self, data: SpendData, penalizer: float) -> None:
        self.data, self.penalizer = data, penalizer
        self.unit = np.array([1.0, 1.0, data.scale])
        self.scratch = np.empty((3, len(data.y)))
        self._at: FloatArray | None = None
        self._value, self._gradient, self._hessian = math.nan, np.zeros(3), np.zeros((3, 3))
        self.log_likelihood, self.natural_hessian = math.nan, np.zeros((3, 3))
        """The unpenalized total log-likelihood (scaled units) and its Hessian in (p, q, v) at the last point."""
        self.passes = 0

    def _evaluate(self, theta: FloatArray) -> None:
        if self._at is not None and np.array_equal(theta, self._at):
            return
        params = np.exp(theta)
        p, q, v = (float(t) for t in params)
        value, gradient, hessian = _log_likelihood_terms(self.data, p, q, v, scratch=self.scratch)
        self.log_likelihood, self.natural_hessian = value, hessian
        self.passes += 1
        n = self.data.n
        # d/d theta = params * d/d params; the second derivative picks up the gradient on its diagonal.
        g_theta = gradient * params
        h_theta = hessian * np.outer(params, params) + np.diag(g_theta)
        natural = params * self.unit
        self._value = -value / n + self.penalizer * float(np.sum(natural**2))
        self._gradient = -g_theta / n + 2 * self.penalizer * natural**2
        self._hessian = -h_theta / n + np.diag(4 * self.penalizer * natural**2)
        self._at = theta.copy()

    def value_and_gradient(self, theta: FloatArray) -> tuple[float, FloatArray]:
        self._evaluate(theta)
        return self._value, self._gradient.copy()

    def hessian(self, theta: FloatArray) -> FloatArray:
        self._evaluate(theta)
        return self._hessian.copy()


def moment_start(data: SpendData) -> Start:
    """Starting (p, q, v) in scaled units from moments: across customers, Var(m / mean) is
    1 / (q - 2) + (q - 1) / (p (q - 2)) / x under Gamma-Gamma, so a weighted regression of the squared
    relative deviation on 1 / x gives the between part 1 / (q - 2) and the within part."""
    every = max(1, len(data.x) // MOMENT_ROWS)  # a start needs no more than a systematic sample
    x, y, w = data.x[::every], data.y[::every], data.w[::every]
    deviation = (y / x - 1.0) ** 2
    design = np.column_stack([np.ones_like(x), 1.0 / x])
    weighted = design * w[:, None]
    try:
        between, within = np.linalg.solve(design.T @ weighted, weighted.T @ deviation)
    except np.linalg.LinAlgError:  # every customer has the same frequency: the split is not identified
        between = within = float(np.dot(w, deviation) / w.sum()) / 2
    between = float(np.clip(between, 1e-3, 1e3))
    within = float(np.clip(within, 1e-3, 1e3))
    q = 2.0 + 1.0 / between
    p = (q - 1.0) * between / within
    return p, q, (q - 1.0) / p


NEUTRAL_START: Start = (1.0, 2.0, 1.0)
"""p = 1, q = 2 and v at the mean spend: the restart's point, away from the moment estimate."""


@dataclass(frozen=True)
class GammaGammaMLE:
    """A Gamma-Gamma maximum-likelihood fit. ``converged``: a finite optimum that scipy accepted, or where
    it stopped at rounding level with a gradient below ACCEPTED_GRADIENT, no parameter having run off."""

    params: GammaGammaParams
    standard_errors: dict[str, float]
    log_likelihood: float
    """Unpenalized total log-likelihood in the data's money unit (published CDNOW value: -4055.92)."""
    n_customers: float
    converged: bool
    message: str
    passes: int
    """Passes over the customers (likelihood evaluations)."""


def fit_gamma_gamma_mle(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
    start: Start | None = None,
) -> GammaGammaMLE:
    """Fit Gamma-Gamma by maximum likelihood (Newton trust region on log p, log q, log v) to repeat
    customers (frequency > 0, monetary_value > 0; ``weights``: customers per row).

    ``start`` is (p, q, v) with v relative to the pooled mean spend (default: :func:`moment_start`).
    ``penalizer`` adds lifetimes' L2 penalty. Standard errors come from the inverse of the analytic
    Hessian at the optimum (NaN when it is not negative definite).
    """
    return fit_spend_data(SpendData.from_arrays(frequency, monetary_value, weights), penalizer, start)


def fit_spend_data(data: SpendData, penalizer: float = 0.0, start: Start | None = None) -> GammaGammaMLE:
    """:func:`fit_gamma_gamma_mle` on data already reduced (to try several starts or penalties)."""
    objective = _Objective(data, penalizer)
    theta0 = np.log(np.asarray(start if start is not None else moment_start(data), dtype=np.float64))
    limit = math.log(RUN_OFF)

    def stop_when_run_off(intermediate_result: object) -> None:
        if np.abs(getattr(intermediate_result, "x", theta0)).max() > limit:
            raise StopIteration

    with np.errstate(all="ignore"):
        result = minimize(
            objective.value_and_gradient,
            theta0,
            jac=True,
            hess=objective.hessian,
            method="trust-exact",
            callback=stop_when_run_off,
            options={"maxiter": MAX_ITERATIONS, "gtol": GRADIENT_TOLERANCE},
        )
    theta = np.asarray(result.x, dtype=np.float64)
    # trust-exact can stop at rounding level ("bad approximation") right at the optimum: judge the gradient.
    with np.errstate(all="ignore"):
        _, gradient = objective.value_and_gradient(theta)
    stationary = bool(result.success) or float(np.abs(gradient).max()) <= ACCEPTED_GRADIENT
    p, q, v_scaled = (float(t) for t in np.exp(theta))
    params = GammaGammaParams(p=p, q=q, v=v_scaled * data.scale)
    hessian = objective.natural_hessian
    log_likelihood = objective.log_likelihood - data.n * math.log(data.scale)
    finite = bool(np.isfinite(theta).all() and np.isfinite(log_likelihood))
    ran_off = bool(np.abs(theta).max() > limit)
    converged = stationary and finite and not ran_off
    message = "" if converged else ("a parameter ran off" if ran_off else str(result.message))
    return GammaGammaMLE(
        params=params,
        standard_errors=_standard_errors(hessian, data.scale) if finite else dict.fromkeys("pqv", math.nan),
        log_likelihood=log_likelihood if finite else math.nan,
        n_customers=data.n,
        converged=converged,
        message=message,
        passes=objective.passes,
    )


def _standard_errors(hessian: FloatArray, scale: float) -> dict[str, float]:
    """Square roots of the diagonal of the inverse observed information (the negative Hessian)."""
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return dict.fromkeys("pqv", math.nan)
    variances = np.diag(covariance) * np.array([1.0, 1.0, scale**2])
    if not np.isfinite(variances).all() or (variances <= 0).any():
        return dict.fromkeys("pqv", math.nan)
    return dict(zip("pqv", (float(s) for s in np.sqrt(variances)), strict=True))
