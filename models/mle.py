"""Maximum-likelihood fits through lifetimes, returning parameters as data.

BG/NBD is fitted on the unique (frequency, recency, T) rows with their counts as weights: the
parameters are identical to a per-customer fit and the optimisation is much faster. The total
log-likelihood is recomputed in the data's own units (lifetimes only stores a rescaled mean).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from models import bgnbd, gamma_gamma
from models.bgnbd import BetaGeoParams
from models.gamma_gamma import GammaGammaParams

with warnings.catch_warnings():
    # lifetimes mutes FutureWarning process-wide when imported; keep the caller's filters intact.
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
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
    params: BetaGeoParams
    standard_errors: dict[str, float]
    stats: FitStatistics
    n_unique_rows: int


@dataclass(frozen=True)
class SpendFit:
    params: GammaGammaParams
    standard_errors: dict[str, float]
    stats: FitStatistics


def _run_fit(fitter: Any, name: str, penalizer: float, *data: Any, **kwargs: Any) -> None:
    """``fitter.fit(*data)`` with lifetimes' numerical warnings muted and its ConvergenceError as FitError."""
    try:
        with warnings.catch_warnings():
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


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, penalizer: float = 0.0) -> PurchaseFit:
    """Fit BG/NBD by maximum likelihood on the weighted unique histories."""
    return fit_bgnbd_histories(unique_histories(frequency, recency, T), penalizer)


def fit_bgnbd_histories(rows: pd.DataFrame, penalizer: float = 0.0) -> PurchaseFit:
    """Fit BG/NBD on unique histories: ``frequency``, ``recency``, ``T`` and ``weight`` (customers sharing
    each), sorted as :func:`unique_histories` sorts them (what a distributed engine collects)."""
    if rows.empty:
        raise FitError("BG/NBD: no customers to fit")
    if (rows["frequency"] == 0).all():
        raise FitError("BG/NBD: no customer has a repeat purchase, so the purchase model cannot be fitted")
    fitter = BetaGeoFitter(penalizer_coef=penalizer)
    _run_fit(fitter, "BG/NBD", penalizer, rows["frequency"], rows["recency"], rows["T"], weights=rows["weight"])
    params = BetaGeoParams(**{k: float(fitter.params_[k]) for k in ("r", "alpha", "a", "b")})
    ll = bgnbd.log_likelihood(params, rows["frequency"], rows["recency"], rows["T"], rows["weight"])
    return PurchaseFit(
        params=params,
        standard_errors={k: float(v) for k, v in fitter.standard_errors_.items()},
        stats=FitStatistics(log_likelihood=ll, n_observations=int(rows["weight"].sum()), n_params=4),
        n_unique_rows=len(rows),
    )


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike, penalizer: float = 0.0) -> SpendFit:
    """Fit Gamma-Gamma by maximum likelihood on customers with a repeat purchase and positive spend."""
    f = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    keep = (f > 0) & (m > 0)
    if keep.sum() < 2:
        raise FitError(
            f"Gamma-Gamma: needs customers with a repeat purchase and positive spend, found {int(keep.sum())}"
        )
    fitter = GammaGammaFitter(penalizer_coef=penalizer)
    _run_fit(fitter, "Gamma-Gamma", penalizer, f[keep], m[keep])
    params = GammaGammaParams(**{k: float(fitter.params_[k]) for k in ("p", "q", "v")})
    if params.q <= 1:
        raise FitError(
            f"Gamma-Gamma fitted q = {params.q:.4g} <= 1, so the mean spend is undefined (heavy-tailed spend, "
            f"or a penalizer of {penalizer} too strong); check spend outliers (prepare.max_amount)"
        )
    return SpendFit(
        params=params,
        standard_errors={k: float(v) for k, v in fitter.standard_errors_.items()},
        stats=FitStatistics(
            log_likelihood=gamma_gamma.log_likelihood(params, f[keep], m[keep]),
            n_observations=int(keep.sum()),
            n_params=3,
        ),
    )


@dataclass(frozen=True)
class PeerFit:
    """A maximum-likelihood fit of a purchase model other than BG/NBD (parameters by name)."""

    model: str
    params: dict[str, float]
    stats: FitStatistics


def fit_pareto_nbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, penalizer: float = 0.0) -> PeerFit:
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987) on the weighted unique histories."""
    rows = unique_histories(frequency, recency, T)
    fitter = ParetoNBDFitter(penalizer_coef=penalizer)
    _run_fit(fitter, "Pareto/NBD", penalizer, rows["frequency"], rows["recency"], rows["T"], weights=rows["weight"])
    params = {k: float(fitter.params_[k]) for k in ("r", "alpha", "s", "beta")}
    per_row = ParetoNBDFitter._conditional_log_likelihood(
        [params[k] for k in ("r", "alpha", "s", "beta")], rows["frequency"], rows["recency"], rows["T"]
    )
    ll = float(np.sum(rows["weight"].to_numpy() * np.asarray(per_row)))
    return PeerFit("pareto_nbd", params, FitStatistics(ll, int(rows["weight"].sum()), 4))


def fit_mbgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, penalizer: float = 0.0) -> PeerFit:
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007) on the weighted unique histories."""
    rows = unique_histories(frequency, recency, T)
    fitter = ModifiedBetaGeoFitter(penalizer_coef=penalizer)
    _run_fit(fitter, "MBG/NBD", penalizer, rows["frequency"], rows["recency"], rows["T"], weights=rows["weight"])
    params = {k: float(fitter.params_[k]) for k in ("r", "alpha", "a", "b")}
    weights = rows["weight"].to_numpy(dtype=np.float64)
    log_params = np.log([params[k] for k in ("r", "alpha", "a", "b")])
    mean_nll = ModifiedBetaGeoFitter._negative_log_likelihood(
        log_params, rows["frequency"].to_numpy(), rows["recency"].to_numpy(), rows["T"].to_numpy(), weights, 0.0
    )
    return PeerFit("mbgnbd", params, FitStatistics(-float(mean_nll) * float(weights.sum()), int(weights.sum()), 4))
