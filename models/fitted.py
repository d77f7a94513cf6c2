"""Fitted models as data, whatever the method: the parameters, their standard errors and fit statistics.

:class:`FitError` is what every fitter (maximum likelihood, PyMC, our own optimisers) raises when a model
cannot be fitted to the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.spend import SpendModel, SpendParams, spend_model_name

if TYPE_CHECKING:
    from models.definition import PurchaseParams

__all__ = ["FitError", "FitStatistics", "PurchaseFit", "SpendFit"]


class FitError(RuntimeError):
    """A model could not be fitted to the data."""


@dataclass(frozen=True)
class FitStatistics:
    """A fit's log-likelihood and size. Without observations (e.g. the pooled-mean spend fallback when no repeat
    customer has a positive spend) there is nothing to compare: the information criteria are NaN, never an error."""

    log_likelihood: float
    n_observations: int
    n_params: int

    @property
    def aic(self) -> float:
        if self.n_observations <= 0:
            return math.nan
        return 2 * self.n_params - 2 * self.log_likelihood

    @property
    def bic(self) -> float:
        if self.n_observations <= 0:
            return math.nan
        return self.n_params * math.log(self.n_observations) - 2 * self.log_likelihood


@dataclass(frozen=True)
class PurchaseFit:
    params: PurchaseParams
    standard_errors: dict[str, float]
    stats: FitStatistics
    n_unique_rows: int

    @property
    def model(self) -> str:
        from models.purchase import model_name  # the model files import this module: look them up late

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
