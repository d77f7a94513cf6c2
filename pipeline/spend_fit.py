"""Spend model of the fit stage: Gamma-Gamma with remedies in a fixed order, a spread test, and a
documented fallback, so that a valid feed never stops on the spend model.

Every step is recorded as a :class:`~pipeline.attempts.FitAttempt`, in this order:

1. ``plain``: Gamma-Gamma by maximum likelihood from the moment estimate, with ``fit.spend_penalizer``.
2. ``restart`` (``fit.remedies.restart``), when plain is not acceptable: from p = 1, q = 2 and v at the
   mean spend.
3. No heterogeneity: when q (or v) ran off in plain and restart, customers' spend rates do not vary
   (q > max_shape means a coefficient of variation below 1%): fall back (step 5). The spread test
   (:func:`models.gamma_gamma_fit.spread_test`) is the other trigger: the likelihood ratio of the best
   Gamma-Gamma fit so far against its no-heterogeneity limit (q -> infinity, every customer with the same
   spend rate); without evidence of heterogeneity at ``SPREAD_TEST_LEVEL``, fall back even when plain
   converged (its q is then large, and its shrinkage weights say the same thing).
4. ``penalizer X`` for each of ``fit.remedies.penalizers``, smallest first, when heterogeneity is real but
   no fit so far is acceptable (q <= 1, p running off, or a failure): the first acceptable one is used
   (the least penalty that works). Penalties are never tried against a q that ran off: they would
   invent the heterogeneity the data lack.
5. ``pooled_mean`` (outcome ``fallback``): the population mean spend per transaction for everyone,
   sum(x m) / sum(x) over the repeat customers with positive spend (0 when there is none: every repeat
   order free, or refunded by an equal negative row; that fit has 0 observations and NaN log-likelihood,
   AIC and BIC). It is Gamma-Gamma's own limit
   without heterogeneity. Per-customer shrinkage toward it with an estimated weight is what Gamma-Gamma
   itself is; when Gamma-Gamma degenerates, the summary (one mean per customer) has nothing else from
   which to estimate that weight honestly, so the fallback is the pooled mean alone.

A fit is acceptable when it converged with 1 < q <= max_shape, min_shape <= p <= max_shape and
min_shape <= v / (mean spend) <= max_shape (``fit.remedies``); otherwise it is ``degenerate`` (q <= 1:
the mean spend p v / (q - 1) is undefined; q or v running off: no heterogeneity; p running off, v to 0:
no variation within customers) or ``failed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from models.fitted import FitStatistics, SpendFit
from models.gamma_gamma import GammaGammaParams
from models.gamma_gamma_fit import NEUTRAL_START, GammaGammaMLE, SpendData, Start, fit_spend_data
from models.spend import PooledMeanParams
from models.spend_spread import SpreadTest, fit_no_heterogeneity, spread_test
from pipeline.attempts import FitAttempt
from pipeline.config import RemediesConfig

__all__ = [
    "MIN_SPEND_CUSTOMERS",
    "SPREAD_TEST_LEVEL",
    "SpendOutcome",
    "fit_spend",
    "pooled_mean_outcome",
    "spend_problem",
]

SPREAD_TEST_LEVEL = 0.05
"""Below this p-value the spread test finds spend heterogeneity across customers."""
MIN_SPEND_CUSTOMERS = 3
"""Gamma-Gamma has three parameters: with fewer repeat customers with positive spend, the pooled mean."""
POOLED = "pooled_mean"
NO_HETEROGENEITY = "no spend heterogeneity across customers"
NO_POSITIVE_SPEND = "no repeat customer has a positive net spend: every repeat order is free or refunded"
"""The fallback's reason when no customer is left to fit: the pooled mean is 0, with no fit statistics."""


@dataclass(frozen=True)
class SpendOutcome:
    """The spend model the fit stage settled on, and how."""

    fit: SpendFit
    attempts: tuple[FitAttempt, ...]
    chosen: FitAttempt
    fallback: str
    """Why the pooled mean replaced Gamma-Gamma ("" when Gamma-Gamma is used)."""
    spread_test: SpreadTest | None = None


def spend_problem(params: GammaGammaParams, mean_spend: float, remedies: RemediesConfig) -> str:
    """Why Gamma-Gamma parameters are not acceptable, in words ("" when they are)."""
    low, high = remedies.min_shape, remedies.max_shape
    p, q, v = params.p, params.q, params.v
    if not all(math.isfinite(value) and value > 0 for value in (p, q, v)):
        return f"non-finite parameters (p {p:.3g}, q {q:.3g}, v {v:.3g})"
    if q <= 1:
        return (
            f"q = {q:.3g} <= 1: the mean spend p v / (q - 1) is undefined "
            "(heavy-tailed spend; prepare.max_amount quarantines outliers)"
        )
    if q > high:
        return f"q ran off to {q:.3g}: {NO_HETEROGENEITY}"
    if p > high:
        return f"p ran off to {p:.3g} (no spend variation within customers)"
    if p < low:
        return f"p ran off to {p:.3g}"
    relative = v / mean_spend
    if relative > high:
        return f"v ran off to {v:.3g} ({relative:.3g} times the mean spend): {NO_HETEROGENEITY}"
    if relative < low:
        return f"v ran off to {v:.3g} ({relative:.3g} times the mean spend)"
    return ""


def _attempt(
    data: SpendData, remedy: str, penalizer: float, start: Start | None, remedies: RemediesConfig
) -> tuple[FitAttempt, GammaGammaMLE | None]:
    restart = start is not None
    try:
        fitted = fit_spend_data(data, penalizer, start)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return FitAttempt(remedy, penalizer, "failed", str(exc).splitlines()[0], restart=restart), None
    problem = spend_problem(fitted.params, data.scale, remedies)
    if problem:
        outcome, message = "degenerate", problem
    elif not fitted.converged:
        outcome, message = "failed", f"did not converge: {fitted.message}"
    else:
        outcome, message = "ok", ""
    return FitAttempt(remedy, penalizer, outcome, message, fitted.log_likelihood, restart=restart), fitted


def _gamma_gamma_outcome(fitted: GammaGammaMLE, attempts: list[FitAttempt], test: SpreadTest | None) -> SpendOutcome:
    fit = SpendFit(
        params=fitted.params,
        standard_errors=fitted.standard_errors,
        stats=FitStatistics(fitted.log_likelihood, round(fitted.n_customers), 3),
    )
    return SpendOutcome(fit, tuple(attempts), attempts[-1], "", test)


def pooled_mean_outcome(
    data: SpendData | None, reason: str, attempts: list[FitAttempt], test: SpreadTest | None = None
) -> SpendOutcome:
    """The fallback: the pooled mean spend per transaction (0 without any positive repeat spend)."""
    if data is None:
        params, errors, stats = PooledMeanParams(0.0), {"mean": 0.0}, FitStatistics(math.nan, 0, 2)
    else:
        pooled = fit_no_heterogeneity(data)
        log_likelihood = pooled.log_likelihood if math.isfinite(pooled.log_likelihood) else math.nan
        params, errors = PooledMeanParams(pooled.mean), {"mean": pooled.mean_se}
        stats = FitStatistics(log_likelihood, round(data.n), 2)
    chosen = FitAttempt(POOLED, 0.0, "fallback", reason, stats.log_likelihood)
    return SpendOutcome(SpendFit(params, errors, stats), (*attempts, chosen), chosen, reason, test)


def fit_spend(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    penalizer: float,
    remedies: RemediesConfig,
    weights: ArrayLike | None = None,
) -> SpendOutcome:
    """The spend model for repeat customers (frequency > 0, monetary_value > 0), by the steps above."""
    f = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    keep = (f > 0) & (m > 0) & np.isfinite(m)
    if not keep.any():
        return pooled_mean_outcome(None, NO_POSITIVE_SPEND, [])
    data = SpendData.from_arrays(f[keep], m[keep], None if w is None else w[keep])
    if data.n < MIN_SPEND_CUSTOMERS:
        reason = f"only {data.n:g} repeat customers with positive spend (Gamma-Gamma needs {MIN_SPEND_CUSTOMERS})"
        return pooled_mean_outcome(data, reason, [])
    if data.constant_spend:
        reason = f"every repeat customer's mean spend is {data.scale:.6g}: spend does not vary"
        return pooled_mean_outcome(data, reason, [])
    attempts: list[FitAttempt] = []
    attempt, fitted = _attempt(data, "plain", penalizer, None, remedies)
    attempts.append(attempt)
    if attempt.outcome != "ok" and remedies.restart:
        attempt, fitted = _attempt(data, "restart", penalizer, NEUTRAL_START, remedies)
        attempts.append(attempt)
    found = [a.log_likelihood for a in attempts if math.isfinite(a.log_likelihood)]
    test = spread_test(max(found), fit_no_heterogeneity(data)) if found else None
    ran_off = [a.message for a in attempts if a.message.endswith(NO_HETEROGENEITY)]
    if attempt.outcome != "ok" and ran_off:
        return pooled_mean_outcome(data, ran_off[-1], attempts, test)
    if test is not None and test.p_value > SPREAD_TEST_LEVEL:
        reason = f"{NO_HETEROGENEITY} (likelihood-ratio test p = {test.p_value:.3g})"
        return pooled_mean_outcome(data, reason, attempts, test)
    if attempt.outcome == "ok" and fitted is not None:
        return _gamma_gamma_outcome(fitted, attempts, test)
    for extra in sorted(remedies.penalizers):
        attempt, fitted = _attempt(data, f"penalizer {extra:g}", extra, None, remedies)
        attempts.append(attempt)
        if attempt.outcome == "ok" and fitted is not None:
            return _gamma_gamma_outcome(fitted, attempts, test)
    unpenalized = [f"{a.remedy}: {a.outcome} ({a.message})" for a in attempts if not a.remedy.startswith("penalizer")]
    penalized = len(attempts) - len(unpenalized)
    reason = f"Gamma-Gamma could not be fitted: {'; '.join(unpenalized)}; {penalized} penalizers: none acceptable"
    return pooled_mean_outcome(data, reason, attempts, test)
