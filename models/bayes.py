"""Bayesian fits with PyMC, using each purchase model's PyMC likelihood (pymc-marketing's distributions).

The purchase models are fitted on the unique (frequency, recency, T) histories, each history's
log-likelihood weighted by the number of customers that share it, so the cost of a fit does not grow
with the customer count. How the model runs (MAP or NUTS) is :mod:`models.pymc_fit`.

Priors: ``flat`` (HalfFlat on every parameter: MAP equals maximum likelihood) or ``pymc_marketing``
(the defaults of pymc-marketing 0.19's models, declared by each model, see :class:`models.definition.PymcSpec`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models import registry
from models.fitted import FitError
from models.gamma_gamma import GammaGammaParams
from models.histories import unique_histories
from models.mle import check_mean_spend, repeat_spend
from models.purchase import PurchaseParams
from models.pymc_fit import BayesFit, Method, Sampler, run_pymc

__all__ = ["Priors", "fit_gamma_gamma_bayes", "fit_purchase_bayes", "fit_purchase_bayes_histories"]

Priors = Literal["flat", "pymc_marketing"]
FloatArray = NDArray[np.float64]
DEFAULT_SAMPLER = Sampler()


def _purchase_model(model: str, rows: pd.DataFrame, priors: Priors) -> Any:
    import pymc as pm

    definition = registry.get(model)
    if definition.pymc is None:
        raise ValueError(f"{definition.label} has no PyMC model")
    value = np.column_stack([rows["recency"].to_numpy(), rows["frequency"].to_numpy()])
    T = rows["T"].to_numpy()
    weight = rows["weight"].to_numpy(dtype=np.float64)
    with pm.Model() as pymc_model:
        if priors == "flat":
            variables = {name: pm.HalfFlat(name) for name in definition.param_names}
        else:
            variables = definition.pymc.priors()
        dist = definition.pymc.distribution(variables, T)
        pm.Potential("likelihood", (weight * pm.logp(dist, value)).sum())
    return pymc_model


def _spend_model(frequency: FloatArray, monetary_value: FloatArray) -> Any:
    """Gamma-Gamma on the repeat customers' mean spend (as pymc-marketing's GammaGammaModel), flat priors."""
    import pymc as pm
    import pytensor.tensor as pt

    x, z = frequency, monetary_value
    with pm.Model() as pymc_model:
        p, q, v = pm.HalfFlat("p"), pm.HalfFlat("q"), pm.HalfFlat("v")
        pm.Potential(
            "likelihood",
            (
                pt.gammaln(p * x + q)
                - pt.gammaln(p * x)
                - pt.gammaln(q)
                + q * pt.log(v)
                + (p * x - 1) * np.log(z)
                + (p * x) * np.log(x)
                - (p * x + q) * pt.log(x * z + v)
            ).sum(),
        )
    return pymc_model


def fit_purchase_bayes(
    model: str,
    frequency: Any,
    recency: Any,
    T: Any,
    method: Method,
    priors: Priors = "flat",
    sampler: Sampler = DEFAULT_SAMPLER,
) -> tuple[PurchaseParams, BayesFit, int]:
    """A Bayesian purchase-model fit; returns the point parameters, the fit, and the unique-history count."""
    return fit_purchase_bayes_histories(model, unique_histories(frequency, recency, T), method, priors, sampler)


def fit_purchase_bayes_histories(
    model: str, rows: pd.DataFrame, method: Method, priors: Priors = "flat", sampler: Sampler = DEFAULT_SAMPLER
) -> tuple[PurchaseParams, BayesFit, int]:
    """:func:`fit_purchase_bayes` on unique histories with their ``weight``."""
    definition = registry.get(model)
    if (rows["frequency"] == 0).all():
        raise FitError(f"{definition.label}: no customer has a repeat purchase, so the purchase model cannot be fitted")
    fit = run_pymc(_purchase_model(model, rows, priors), definition.param_names, method, sampler, definition.label)
    return definition.make_params(fit.params), fit, len(rows)


def fit_gamma_gamma_bayes(
    frequency: Any, monetary_value: Any, method: Method, sampler: Sampler = DEFAULT_SAMPLER
) -> tuple[GammaGammaParams, BayesFit]:
    """Gamma-Gamma with flat priors on customers with a repeat purchase and positive spend."""
    f, m = repeat_spend(frequency, monetary_value)
    fit = run_pymc(_spend_model(f, m), ("p", "q", "v"), method, sampler, "Gamma-Gamma")
    return check_mean_spend(GammaGammaParams(*(fit.params[k] for k in ("p", "q", "v"))), "heavy-tailed spend"), fit
