"""Maximum-likelihood fits, returning parameters as data: purchase models through lifetimes, Gamma-Gamma
with our own fit (:mod:`models.gamma_gamma_fit`, much faster on millions of customers).

Purchase models (BG/NBD, MBG/NBD, Pareto/NBD) are fitted on the unique (frequency, recency, T) rows
with their counts as weights: the parameters are identical to a per-customer fit and the
optimisation is much faster. The total
log-likelihood is recomputed in the data's own units (lifetimes only stores a rescaled mean).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from models.gamma_gamma import GammaGammaParams
from models.gamma_gamma_fit import fit_gamma_gamma_mle
from models.purchase import LABELS, PARAM_NAMES, PurchaseParams, log_likelihood, make_params, model_name
from models.spend import SpendModel, SpendParams, spend_model_name

with warnings.catch_warnings():
    # lifetimes mutes FutureWarning process-wide when imported; keep the caller's filters intact.
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    from lifetimes.utils import ConvergenceError


class FitError(RuntimeError):
    """A model could not be fitted to the data."""


@dataclass(frozen=True)
class FitStatistics:
    log_likelihood: float
    n_observations: int
    n_params: int

    @property
    def aic(self) -> float:
        return 2 * self.n_params - 2 * self.log_likelihood

    @property
    def bic(self) -> float:
        return self.n_params * math.log(self.n_observations) - 2 * self.log_likelihood


@dataclass(frozen=True)
class PurchaseFit:
    params: PurchaseParams
    standard_errors: dict[str, float]
    stats: FitStatistics
    n_unique_rows: int

    @property
    def model(self) -> str:
        return model_name(self.params)


@dataclass(frozen=True)
class SpendFit:
    """A fitted spend model: Gamma-Gamma's parameters or the pooled mean spend (see :mod:`models.spend`)."""

    params: SpendParams
    standard_errors: dict[str, float]
    stats: FitStatistics

    @property
    def model(self) -> SpendModel:
        return spend_model_name(self.params)


def _run_fit(fitter: Any, name: str, penalizer: float, *data: Any, **kwargs: Any) -> None:
    """``fitter.fit(*data)`` with lifetimes' numerical warnings muted and its ConvergenceError as FitError."""
    try:
        # lifetimes prints scipy's result to stdout when it gives up: keep stdout for our own output.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", RuntimeWarning)
            fitter.fit(*data, **kwargs)
    except ConvergenceError as exc:
        raise FitError(f"{name} did not converge (penalizer {penalizer}): {str(exc).strip()}") from exc


def unique_histories(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> pd.DataFrame:
    """The distinct (frequency, recency, T) rows with the number of customers that share each."""
    histories = pd.DataFrame(
        {
            "frequency": np.asarray(frequency, dtype=np.float64),
            "recency": np.asarray(recency, dtype=np.float64),
            "T": np.asarray(T, dtype=np.float64),
        }
    )
    return histories.groupby(["frequency", "recency", "T"], sort=True).size().rename("weight").reset_index()


_FITTERS: dict[str, Any] = {
    "bgnbd": BetaGeoFitter,
    "mbgnbd": ModifiedBetaGeoFitter,
    "pareto_nbd": ParetoNBDFitter,
}
_TIME_SCALED = {"alpha", "beta"}
"""Rate parameters of the gamma mixing distributions: in time units."""


def fit_purchase(
    model: str,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    penalizer: float = 0.0,
    start: Literal["default", "median_age"] = "default",
) -> PurchaseFit:
    """Fit a purchase model (bgnbd, mbgnbd, pareto_nbd) by maximum likelihood on weighted unique histories.

    lifetimes divides time by the largest T and starts every log-parameter at 0.1. ``start="median_age"``
    restarts instead at shapes of 1 and rates (alpha, beta) at the median customer age: a remedy when the
    default start runs into a region where the optimiser fails.
    """
    return fit_purchase_histories(model, unique_histories(frequency, recency, T), penalizer, start)


def fit_purchase_histories(
    model: str,
    rows: pd.DataFrame,
    penalizer: float = 0.0,
    start: Literal["default", "median_age"] = "default",
) -> PurchaseFit:
    """:func:`fit_purchase` on unique histories: ``frequency``, ``recency``, ``T`` and ``weight`` (the
    customers sharing each), sorted as :func:`unique_histories` sorts them (what a distributed engine collects)."""
    if model not in _FITTERS:
        raise ValueError(f"unknown purchase model {model!r}")
    label = LABELS[model]
    if rows.empty:
        raise FitError(f"{label}: no customers to fit")
    if (rows["frequency"] == 0).all():
        raise FitError(f"{label}: no customer has a repeat purchase, so the purchase model cannot be fitted")
    names = PARAM_NAMES[model]
    fitter = _FITTERS[model](penalizer_coef=penalizer)
    # lifetimes' Pareto/NBD starts from the unseeded global random generator: start it at 1 instead.
    initial = np.ones(len(names)) if model == "pareto_nbd" else None
    if start == "median_age":
        ages = rows["T"].to_numpy()
        median_scaled = float(np.median(np.repeat(ages, rows["weight"].to_numpy())) / ages.max())
        natural = [median_scaled if k in _TIME_SCALED else 1.0 for k in names]
        # lifetimes' Pareto/NBD optimises the parameters themselves; the others their logarithms.
        initial = np.asarray(natural) if model == "pareto_nbd" else np.log(natural)
    _run_fit(
        fitter,
        label,
        penalizer,
        rows["frequency"],
        rows["recency"],
        rows["T"],
        weights=rows["weight"],
        initial_params=initial,
    )
    if model == "pareto_nbd" and not _pareto_converged(fitter, rows, penalizer):
        raise FitError(f"{label} did not converge (penalizer {penalizer}): Nelder-Mead stopped away from an optimum")
    params = make_params(model, {k: float(fitter.params_[k]) for k in names})
    with np.errstate(all="ignore"):
        ll = log_likelihood(params, rows["frequency"], rows["recency"], rows["T"], rows["weight"])
    if not np.isfinite(ll):
        raise FitError(f"{label}: the fitted parameters give a non-finite log-likelihood ({params})")
    return PurchaseFit(
        params=params,
        standard_errors=_standard_errors(fitter, names),
        stats=FitStatistics(log_likelihood=ll, n_observations=int(rows["weight"].sum()), n_params=len(names)),
        n_unique_rows=len(rows),
    )


def _pareto_converged(fitter: Any, rows: pd.DataFrame, penalizer: float, tolerance: float = 1e-4) -> bool:
    """lifetimes' Pareto/NBD ignores whether Nelder-Mead succeeded: check the optimum ourselves.

    The gradient of lifetimes' own objective with respect to the log-parameters, by central
    differences, must be tiny relative to the objective (about 1e-7 at CDNOW's optimum, 1e-2 when a
    parameter is 10% off).
    """
    scale = fitter._scale
    point = np.asarray(
        [fitter.params_["r"], fitter.params_["alpha"] * scale, fitter.params_["s"], fitter.params_["beta"] * scale]
    )
    args = (
        rows["frequency"].to_numpy(),
        rows["recency"].to_numpy() * scale,
        rows["T"].to_numpy() * scale,
        rows["weight"].to_numpy(),
        penalizer,
    )

    def objective(log_params: NDArray[np.float64]) -> float:
        with np.errstate(all="ignore"):
            return float(fitter._negative_log_likelihood(np.exp(log_params), *args))

    centre, step = np.log(point), 1e-5
    value = objective(centre)
    gradient = [(objective(centre + step * e) - objective(centre - step * e)) / (2 * step) for e in np.eye(4)]
    return bool(np.isfinite(value) and max(abs(g) for g in gradient) <= tolerance * max(abs(value), 1.0))


def _standard_errors(fitter: Any, names: tuple[str, ...]) -> dict[str, float]:
    """lifetimes' standard errors from the inverse Hessian (not every fitter stores them; NaN if singular)."""
    errors = getattr(fitter, "standard_errors_", None)
    if errors is None:
        try:
            errors = fitter._compute_standard_errors()
        except (AttributeError, ValueError, np.linalg.LinAlgError):
            return dict.fromkeys(names, float("nan"))
    return {k: float(errors[k]) for k in names}


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
