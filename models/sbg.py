"""Shifted beta-geometric (sBG) retention model for subscriptions (Fader & Hardie 2007), by acquisition cohort.

Each customer has a churn probability theta ~ Beta(alpha, beta), constant over time: at every renewal
decision an active customer leaves with probability theta. A customer pays at the start of every period
they are active; ``renewals`` counts the renewals made (a customer in the first period has 0) and
``churned`` says whether the customer had left by the end of observation (otherwise right-censored).
The lifetime T (periods paid) has P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta) and survival
S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta) (FH 2007, eqs. 5-6).

The formulas are ours, in numpy/scipy, so serving needs nothing else. S is evaluated as a cumulative sum
of log(1 - alpha / (alpha + beta + i)) over a grid of whole periods, exact for any alpha and beta; scipy's
``hyp2f1``, the textbook route to DERL, returns NaN or wrong values once beta + n or alpha is large (checked
against direct sums), so the series is summed on the same grid instead.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from models.fitted import FitStatistics

__all__ = [
    "RenewalCounts",
    "SBGFit",
    "ShiftedBetaGeoParams",
    "churn_risk",
    "clv",
    "cohort_counts",
    "derl",
    "discounted_expected_lifetime",
    "expected_remaining_lifetime",
    "fit_sbg",
    "fit_sbg_cohorts",
    "lifetime_pmf",
    "log_likelihood",
    "log_likelihood_rows",
    "p_renew",
    "payback_periods",
    "renewal_counts",
    "retention_rate",
    "survival",
    "survivor_counts",
    "whole_periods",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
MAX_GRID = 1 << 22
"""Longest grid of periods evaluated (4.2M): bounds memory at ~100 MB for one call."""
_TAIL = 37.0
"""Series are summed until the discount factor has fallen below e^-37 (1e-16) of the sum."""


@dataclass(frozen=True)
class ShiftedBetaGeoParams:
    """alpha, beta: Beta heterogeneity of the per-period churn probability (mean alpha / (alpha + beta))."""

    alpha: float
    beta: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def whole_periods(values: ArrayLike, name: str) -> IntArray:
    """Whole, non-negative period counts (renewals, horizons)."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0) or np.any(array != np.floor(array)):
        raise ValueError(f"{name} must be whole numbers >= 0")
    return array.astype(np.int64)


def _flags(churned: ArrayLike, size: int) -> NDArray[np.bool_]:
    """``churned`` as booleans (True/False or 1/0), one per customer."""
    values = np.asarray(churned)
    if values.shape != (size,) or not np.all((values == 0) | (values == 1)):
        raise ValueError("churned must hold one 0/1 (or boolean) flag per customer")
    return values.astype(bool)


def _log_survival_grid(params: ShiftedBetaGeoParams, top: int) -> FloatArray:
    """log S(m) for m = 0..top: -sum_{i<m} log1p(alpha / (beta + i)) (FH 2007, eq. 6 as a product)."""
    if top + 1 > MAX_GRID:
        raise ValueError(f"sBG: {top} periods is beyond the {MAX_GRID}-period grid")
    grid = np.zeros(top + 1)
    np.cumsum(-np.log1p(params.alpha / (params.beta + np.arange(top))), out=grid[1:])
    return grid


def survival(params: ShiftedBetaGeoParams, t: ArrayLike) -> FloatArray:
    """S(t) = B(alpha, beta + t) / B(alpha, beta): the share of a cohort still active after t renewals."""
    periods = whole_periods(t, "t")
    grid = _log_survival_grid(params, int(periods.max(initial=0)))
    return np.asarray(np.exp(grid[periods]), dtype=np.float64)


def lifetime_pmf(params: ShiftedBetaGeoParams, t: ArrayLike) -> FloatArray:
    """P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta), t >= 1: a new customer pays exactly t periods
    (FH 2007, eq. 5), computed as S(t - 1) * alpha / (alpha + beta + t - 1)."""
    periods = whole_periods(t, "t")
    if np.any(periods < 1):
        raise ValueError("t must be >= 1")
    grid = _log_survival_grid(params, int(periods.max(initial=1)) - 1)
    return np.asarray(
        np.exp(grid[periods - 1]) * params.alpha / (params.alpha + params.beta + periods - 1), dtype=np.float64
    )


def retention_rate(params: ShiftedBetaGeoParams, t: ArrayLike) -> FloatArray:
    """r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1), t >= 1 (FH 2007, eq. 8)."""
    periods = whole_periods(t, "t")
    if np.any(periods < 1):
        raise ValueError("t must be >= 1")
    return np.asarray((params.beta + periods - 1) / (params.alpha + params.beta + periods - 1), dtype=np.float64)


def p_renew(params: ShiftedBetaGeoParams, renewals: ArrayLike) -> FloatArray:
    """P(renews at the next decision | active after n renewals) = (beta + n) / (alpha + beta + n).

    Given n renewals, theta ~ Beta(alpha, beta + n); this is the mean of 1 - theta (= r_{n+1}).
    """
    n = whole_periods(renewals, "renewals")
    return np.asarray((params.beta + n) / (params.alpha + params.beta + n), dtype=np.float64)


def churn_risk(params: ShiftedBetaGeoParams, periods: ArrayLike, renewals: ArrayLike) -> FloatArray:
    """P(churns at one of the next N renewal decisions | active after n renewals) = 1 - S(n + N) / S(n)."""
    horizon, n = np.broadcast_arrays(whole_periods(periods, "periods"), whole_periods(renewals, "renewals"))
    grid = _log_survival_grid(params, int((n + horizon).max(initial=0)))
    return np.asarray(-np.expm1(grid[n + horizon] - grid[n]), dtype=np.float64)


def derl(
    params: ShiftedBetaGeoParams, discount_rate: float, renewals: ArrayLike, horizon: ArrayLike | None = None
) -> FloatArray:
    """Discounted expected residual lifetime of an active customer with n renewals (Fader & Hardie 2010, eq. 6).

    DERL(d | alpha, beta, n) = sum_{k>=0} S(n + k + 1) / S(n) / (1 + d)^k
        = B(alpha, beta + n + 1) / B(alpha, beta + n) * 2F1(1, beta + n + 1; alpha + beta + n + 1; 1 / (1 + d)):
    the expected number of future payments, valued at the next renewal decision, that payment undiscounted
    (FH 2010 write it for "n - 1 renewals" with n in place of our n + 1). ``horizon`` counts at most that
    many future payments (k < horizon); without one, d = 0 gives (beta + n) / (alpha - 1), or inf if
    alpha <= 1 (the undiscounted lifetime has no finite mean), and 0 < d < ~1e-5 per period is refused.
    """
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(f"discount_rate must be >= 0, got {discount_rate}")
    n = whole_periods(renewals, "renewals")
    if horizon is None and discount_rate == 0:
        with np.errstate(divide="ignore"):
            mean = np.where(params.alpha > 1, (params.beta + n) / max(params.alpha - 1, 1e-300), np.inf)
        return np.asarray(mean, dtype=np.float64)
    log_z = -np.log1p(discount_rate)
    if horizon is None:
        steps = int(np.ceil((_TAIL + np.log1p(1 / discount_rate)) / -log_z))
        if int(n.max(initial=0)) + steps + 1 > MAX_GRID:
            raise ValueError(f"discount rate {discount_rate:.3g} per period is too small for an unlimited horizon")
        ahead = np.full_like(n, steps)
    else:
        n, ahead = np.broadcast_arrays(n, whole_periods(horizon, "horizon"))
    top = int((n + ahead).max(initial=0))
    # log of z^m S(m), and log sum_{m >= j} of it (a reverse cumulative log-sum-exp, padded with -inf).
    term = np.arange(top + 1) * log_z + _log_survival_grid(params, top)
    tail = np.full(top + 2, -np.inf)
    tail[:-1] = np.logaddexp.accumulate(term[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):  # only where ahead = 0 (both ends -inf), masked below
        start, stop = tail[n + 1], tail[n + ahead + 1]  # window m = n+1 .. n+ahead
        window = start + np.log(-np.expm1(np.minimum(stop - start, 0.0))) if horizon is not None else start
        return np.asarray(np.where(ahead > 0, np.exp(window - term[n] - log_z), 0.0), dtype=np.float64)


def expected_remaining_lifetime(
    params: ShiftedBetaGeoParams, renewals: ArrayLike, horizon: ArrayLike | None = None
) -> FloatArray:
    """Expected number of further renewals of an active customer (DERL with d = 0); see :func:`derl`."""
    return derl(params, 0.0, renewals, horizon)


def discounted_expected_lifetime(
    params: ShiftedBetaGeoParams, discount_rate: float, horizon: int | None = None
) -> float:
    """DEL = sum_{t>=0} S(t) / (1 + d)^t: expected discounted payments of a new customer, the first one (at
    acquisition) included and undiscounted (FH 2010, eq. 3); at most ``horizon`` payments."""
    if horizon is not None and horizon <= 0:
        return 0.0
    later = derl(params, discount_rate, 0, None if horizon is None else horizon - 1)
    return float(1.0 + later[()] / (1.0 + discount_rate))


def clv(
    params: ShiftedBetaGeoParams,
    price: ArrayLike,
    discount_rate: float,
    renewals: ArrayLike,
    horizon: ArrayLike | None = None,
) -> FloatArray:
    """Residual CLV of an active customer = price x DERL: each renewal pays ``price`` at the start of the period
    it buys; valued at the next renewal decision, that payment undiscounted; the current (paid) period is
    not counted."""
    return np.asarray(np.asarray(price, dtype=np.float64) * derl(params, discount_rate, renewals, horizon))


def payback_periods(
    params: ShiftedBetaGeoParams, price: ArrayLike, cac: ArrayLike, discount_rate: float = 0.0, max_periods: int = 600
) -> FloatArray:
    """Periods until a new customer's expected discounted payments cover the acquisition cost.

    The smallest k with price * sum_{t<k} S(t) / (1 + d)^t >= cac (payments at the start of periods 0..k-1);
    0 when cac <= 0, NaN when not reached within ``max_periods`` (as ``pipeline.business.clv_cac``).
    """
    value, cost = np.broadcast_arrays(np.asarray(price, dtype=np.float64), np.asarray(cac, dtype=np.float64))
    t = np.arange(max_periods)
    discounted = np.exp(_log_survival_grid(params, max_periods - 1) - t * np.log1p(discount_rate))
    cumulative = np.concatenate([[0.0], np.cumsum(discounted)])  # cumulative[k]: payments 0..k-1
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.where(value > 0, cost / value, np.inf)
    k = np.searchsorted(cumulative, needed, side="left").astype(np.float64)
    return np.asarray(np.where(cost <= 0, 0.0, np.where(k > max_periods, np.nan, k)), dtype=np.float64)


@dataclass(frozen=True)
class RenewalCounts:
    """The sBG's sufficient statistics: by renewal count n = 0, 1, ..., the customers who churned after n
    renewals and those still active with n renewals at the observation end (censored)."""

    churned: FloatArray
    active: FloatArray

    @property
    def customers(self) -> float:
        return float(self.churned.sum() + self.active.sum())

    @property
    def cells(self) -> int:
        """Distinct (renewals, churned) rows with customers: the cost of a fit."""
        return int(np.count_nonzero(self.churned) + np.count_nonzero(self.active))

    def __add__(self, other: RenewalCounts) -> RenewalCounts:
        size = max(len(self.churned), len(other.churned))

        def pad(values: FloatArray) -> FloatArray:
            return np.pad(values, (0, size - len(values)))

        return RenewalCounts(pad(self.churned) + pad(other.churned), pad(self.active) + pad(other.active))


def renewal_counts(renewals: ArrayLike, churned: ArrayLike, weights: ArrayLike | None = None) -> RenewalCounts:
    """Sufficient statistics of customer rows (one pass; the fit then costs the same for 10k or 10M)."""
    n = whole_periods(renewals, "renewals").reshape(-1)
    left = _flags(churned, len(n))
    w = np.ones(len(n)) if weights is None else np.asarray(weights, dtype=np.float64)
    size = int(n.max(initial=0)) + 1
    return RenewalCounts(
        np.bincount(n[left], w[left], minlength=size).astype(np.float64),
        np.bincount(n[~left], w[~left], minlength=size).astype(np.float64),
    )


def cohort_counts(
    renewals: ArrayLike, churned: ArrayLike, cohort: ArrayLike, weights: ArrayLike | None = None
) -> dict[Hashable, RenewalCounts]:
    """:func:`renewal_counts` per acquisition cohort (sorted by cohort), in one pass over the customers.

    ``cohort`` must hold one label per customer: a missing one (None, NaN, NaT) or a length that differs from
    ``renewals`` is a ValueError that says so (not a numpy error from the counting, nor a silent broadcast).
    """
    index, labels = pd.factorize(np.asarray(cohort).reshape(-1), sort=True)  # np.unique sorts all rows: 8 s at 1M
    n = whole_periods(renewals, "renewals").reshape(-1)
    if len(index) != len(n):
        raise ValueError(f"cohort must hold one label per customer: {len(index)} labels for {len(n)} customers")
    missing = np.flatnonzero(index < 0)
    if missing.size:
        raise ValueError(f"cohort is missing for {missing.size} of {len(n)} customers (first at row {missing[0]})")
    left = _flags(churned, len(n))
    w = np.ones(len(n)) if weights is None else np.asarray(weights, dtype=np.float64)
    size = int(n.max(initial=0)) + 1
    key = index.reshape(-1) * size + n
    cells = len(labels) * size
    churn = np.bincount(key[left], w[left], minlength=cells).reshape(len(labels), size).astype(np.float64)
    stay = np.bincount(key[~left], w[~left], minlength=cells).reshape(len(labels), size).astype(np.float64)
    return {label: RenewalCounts(churn[i], stay[i]) for i, label in enumerate(labels.tolist())}


def survivor_counts(alive: ArrayLike) -> RenewalCounts:
    """Counts from a survivor table: alive[t] customers still active after t renewals, alive[0] = cohort size
    (the form FH 2007 publish); those alive at the last entry are censored there."""
    counts = np.asarray(alive, dtype=np.float64)
    churned = np.append(counts[:-1] - counts[1:], 0.0)
    active = np.zeros_like(counts)
    active[-1] = counts[-1]
    if np.any(churned < 0):
        raise ValueError("a survivor table cannot increase")
    return RenewalCounts(churned, active)


def _log_likelihood_and_gradient(params: ShiftedBetaGeoParams, counts: RenewalCounts) -> tuple[float, FloatArray]:
    """LL as a product over renewal decisions: after i renewals, G_i customers renewed (prob (beta + i) /
    (alpha + beta + i)) and c_i churned (prob alpha / (alpha + beta + i)); the same as FH 2007, eq. 7."""
    a, b = params.alpha, params.beta
    c = counts.churned
    everyone = c + counts.active
    renewed = np.cumsum(everyone[::-1])[::-1][1:]  # G_i = customers with more than i renewals
    i = np.arange(len(renewed))
    n = np.arange(len(c))
    ll = -renewed @ np.log1p(a / (b + i)) - c @ np.log1p((b + n) / a)
    d_alpha = -renewed @ (1 / (a + b + i)) + c @ ((b + n) / (a * (a + b + n)))
    d_beta = renewed @ (a / ((b + i) * (a + b + i))) - c @ (1 / (a + b + n))
    return float(ll), np.array([d_alpha, d_beta])


def log_likelihood(params: ShiftedBetaGeoParams, counts: RenewalCounts) -> float:
    """Total log-likelihood of the counts (FH 2007: -1680.27 for their "regular" segment at the MLE)."""
    return _log_likelihood_and_gradient(params, counts)[0]


def log_likelihood_rows(params: ShiftedBetaGeoParams, renewals: ArrayLike, churned: ArrayLike) -> FloatArray:
    """Each customer's log-likelihood: log P(T = n + 1) if churned, log S(n) if still active."""
    n = whole_periods(renewals, "renewals").reshape(-1)
    left = _flags(churned, len(n))
    grid = _log_survival_grid(params, int(n.max(initial=0)))
    churn = -np.log1p((params.beta + n) / params.alpha)
    return np.asarray(grid[n] + np.where(left, churn, 0.0), dtype=np.float64)


@dataclass(frozen=True)
class SBGFit:
    """The sBG fit of a cohort (or of the pooled cohorts). ``standard_errors``: by maximum likelihood, from the
    observed information (the Hessian of the log-likelihood, no prior or penalty in it), NaN for a parameter at a
    bound. After a PyMC refit (``pipeline.contractual.validation``): the posterior sd for ``mcmc``; for ``map``
    the MLE's with flat priors (the MAP is the MLE) and NaN with informative priors, never the curvature of the
    log-posterior."""

    params: ShiftedBetaGeoParams
    standard_errors: dict[str, float]
    stats: FitStatistics
    n_unique_rows: int
    at_bound: tuple[str, ...]


def fit_sbg(counts: RenewalCounts, label: str = "sBG") -> SBGFit:
    """Maximum likelihood on the sufficient statistics (analytic gradient, Hessian standard errors).

    A parameter at a bound (1e-9 or 1e9) is reported in ``at_bound``: e.g. no heterogeneity (alpha and beta
    run off together, the geometric limit) or no churn at all (alpha to 0). Predictions stay finite.
    """
    from models.fitted import FitError, FitStatistics
    from models.positive_mle import maximize_log_likelihood

    if counts.customers <= 0:
        raise FitError(f"{label}: no customers to fit")

    def objective(values: FloatArray) -> tuple[float, FloatArray]:
        return _log_likelihood_and_gradient(ShiftedBetaGeoParams(*values), counts)

    found = maximize_log_likelihood(objective, ("alpha", "beta"), counts.customers, label)
    return SBGFit(
        params=ShiftedBetaGeoParams(**found.values),
        standard_errors=found.standard_errors,
        stats=FitStatistics(found.log_likelihood, round(counts.customers), 2),
        n_unique_rows=counts.cells,
        at_bound=found.at_bound,
    )


def fit_sbg_cohorts(counts: Mapping[Hashable, RenewalCounts]) -> dict[Hashable, SBGFit]:
    """One (alpha, beta) per acquisition cohort (for a pooled fit, :func:`fit_sbg` on their sum)."""
    return {cohort: fit_sbg(c, f"sBG (cohort {cohort})") for cohort, c in counts.items()}
