"""Maximum-likelihood fits, returning parameters as data: each purchase model through its own ``mle`` hook
(lifetimes for BG/NBD, MBG/NBD and Pareto/NBD, see :mod:`models.lifetimes_fit`), Gamma-Gamma with our own
fit (:mod:`models.gamma_gamma_fit`, much faster on millions of customers).

Purchase models are fitted on the unique (frequency, recency, T) rows with their counts as weights
(:func:`models.histories.unique_histories`): the parameters are identical to a per-customer fit and the
optimisation is much faster. The total log-likelihood is recomputed in the data's own units (lifetimes
only stores a rescaled mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from models import registry
from models.fitted import FitError, FitStatistics, PurchaseFit, SpendFit
from models.gamma_gamma import GammaGammaParams
from models.gamma_gamma_fit import fit_gamma_gamma_mle
from models.histories import unique_histories
from models.purchase import log_likelihood

__all__ = [
    "check_mean_spend",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_purchase",
    "fit_purchase_histories",
    "repeat_spend",
]


def fit_purchase(
    model: str,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    penalizer: float = 0.0,
    start: Literal["default", "median_age"] = "default",
) -> PurchaseFit:
    """Fit a registered purchase model by maximum likelihood on weighted unique histories.

    ``start="median_age"`` restarts the optimiser at shapes of 1 and rates (alpha, beta) at the median
    customer age instead of the fitter's own start: a remedy when the default start runs into a region
    where the optimiser fails.
    """
    return fit_purchase_histories(model, unique_histories(frequency, recency, T), penalizer, start)


def fit_purchase_histories(
    model: str,
    rows: pd.DataFrame,
    penalizer: float = 0.0,
    start: Literal["default", "median_age"] = "default",
    warm_start: Mapping[str, float] | None = None,
) -> PurchaseFit:
    """:func:`fit_purchase` on unique histories: ``frequency``, ``recency``, ``T`` and ``weight`` (the
    customers sharing each), sorted as :func:`unique_histories` sorts them (what a distributed engine collects).

    ``warm_start``: start values in the data's time unit, one per parameter (an earlier fit's parameters, e.g.
    the calibration fit's for the refit on the whole history); it replaces ``start``."""
    definition = registry.get(model)
    label = definition.label
    if definition.mle is None:
        raise ValueError(f"{label} has no maximum-likelihood fitter")
    if rows.empty:
        raise FitError(f"{label}: no customers to fit")
    if (rows["frequency"] == 0).all():
        raise FitError(f"{label}: no customer has a repeat purchase, so the purchase model cannot be fitted")
    initial: NDArray[np.float64] | None = None
    if warm_start is not None:
        initial = np.asarray([float(warm_start[k]) for k in definition.param_names])
    elif start == "median_age":
        median_age = float(np.median(np.repeat(rows["T"].to_numpy(), rows["weight"].to_numpy())))
        initial = np.asarray([median_age if k in definition.rates else 1.0 for k in definition.param_names])
    fitted = definition.mle(definition, rows, penalizer, initial)
    params = definition.make_params(fitted.values)
    with np.errstate(all="ignore"):
        ll = log_likelihood(params, rows["frequency"], rows["recency"], rows["T"], rows["weight"])
    if not np.isfinite(ll):
        raise FitError(f"{label}: the fitted parameters give a non-finite log-likelihood ({params})")
    names = definition.param_names
    return PurchaseFit(
        params=params,
        standard_errors=fitted.standard_errors,
        stats=FitStatistics(log_likelihood=ll, n_observations=int(rows["weight"].sum()), n_params=len(names)),
        n_unique_rows=len(rows),
    )


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, penalizer: float = 0.0) -> PurchaseFit:
    """Fit BG/NBD by maximum likelihood on the weighted unique histories."""
    return fit_purchase("bgnbd", frequency, recency, T, penalizer)


def repeat_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gamma-Gamma's data: the customers with a repeat purchase and positive spend (at least two)."""
    f = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    keep = (f > 0) & (m > 0)
    if keep.sum() < 2:
        raise FitError(
            f"Gamma-Gamma: needs customers with a repeat purchase and positive spend, found {int(keep.sum())}"
        )
    return f[keep], m[keep]


def check_mean_spend(params: GammaGammaParams, cause: str) -> GammaGammaParams:
    """Refuse q <= 1: the mean spend p v / (q - 1) is then undefined."""
    if params.q <= 1:
        raise FitError(
            f"Gamma-Gamma fitted q = {params.q:.4g} <= 1, so the mean spend is undefined ({cause}); "
            "check spend outliers (prepare.max_amount)"
        )
    return params


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike, penalizer: float = 0.0) -> SpendFit:
    """Fit Gamma-Gamma by maximum likelihood on customers with a repeat purchase and positive spend.

    ``penalizer`` is lifetimes' L2 penalty on (p, q, v). Raises FitError when the optimum is not reached
    or q <= 1; ``pipeline.spend_fit`` adds the remedies and the fallback.
    """
    f, m = repeat_spend(frequency, monetary_value)
    fitted = fit_gamma_gamma_mle(f, m, penalizer=penalizer)
    if not fitted.converged:
        raise FitError(f"Gamma-Gamma did not converge (penalizer {penalizer}): {fitted.message}")
    params = check_mean_spend(fitted.params, f"heavy-tailed spend, or a penalizer of {penalizer} too strong")
    return SpendFit(
        params=params,
        standard_errors=fitted.standard_errors,
        stats=FitStatistics(log_likelihood=fitted.log_likelihood, n_observations=len(f), n_params=3),
    )
