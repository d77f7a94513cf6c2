"""Bayesian fits with PyMC, using pymc-marketing's purchase-model likelihoods.

The purchase models are fitted on the unique (frequency, recency, T) histories, each history's
log-likelihood weighted by the number of customers that share it, so the cost of a fit does not grow
with the customer count. ``map`` finds the posterior mode; ``mcmc`` samples with NUTS and returns a
thinned set of joint draws (never chain x draw x customer arrays, pymc-marketing #374).

Priors: ``flat`` (HalfFlat on every parameter: MAP equals maximum likelihood) or ``pymc_marketing``
(the defaults of pymc-marketing 0.19's models).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.gamma_gamma import GammaGammaParams
from models.mle import FitError, check_mean_spend, repeat_spend, unique_histories
from models.purchase import LABELS, PARAM_NAMES, PurchaseParams, make_params

Method = Literal["map", "mcmc"]
Priors = Literal["flat", "pymc_marketing"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Sampler:
    chains: int = 2
    draws: int = 500
    tune: int = 500
    target_accept: float = 0.9
    seed: int = 20261122
    keep_draws: int = 100
    cores: int = 1


@dataclass(frozen=True)
class Diagnostics:
    """NUTS convergence diagnostics over the model's parameters (worst value)."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int

    def as_dict(self) -> dict[str, float]:
        return {
            "max_rhat": self.max_rhat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "divergences": float(self.divergences),
        }


@dataclass(frozen=True)
class BayesFit:
    """A MAP or MCMC fit: point parameters (MAP, or posterior means) and, for MCMC, draws and diagnostics."""

    params: dict[str, float]
    posterior_sd: dict[str, float]
    draws: dict[str, FloatArray] | None
    diagnostics: Diagnostics | None


def _quiet() -> None:
    for name in ("pymc", "pytensor", "arviz", "pymc.sampling", "pymc.stats"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _purchase_variables(model: str, priors: Priors) -> dict[str, Any]:
    import pymc as pm

    if priors == "flat":
        return {name: pm.HalfFlat(name) for name in PARAM_NAMES[model]}
    variables: dict[str, Any] = {
        "r": pm.Weibull("r", alpha=2, beta=1),
        "alpha": pm.Weibull("alpha", alpha=2, beta=10),
    }
    if model == "pareto_nbd":
        variables["s"] = pm.Weibull("s", alpha=2, beta=1)
        variables["beta"] = pm.Weibull("beta", alpha=2, beta=10)
    else:
        phi = pm.Uniform("phi_dropout", lower=0, upper=1)
        kappa = pm.Pareto("kappa_dropout", alpha=1, m=1)
        variables["a"] = pm.Deterministic("a", phi * kappa)
        variables["b"] = pm.Deterministic("b", (1 - phi) * kappa)
    return variables


def _purchase_model(model: str, rows: pd.DataFrame, priors: Priors) -> Any:
    import pymc as pm
    from pymc_marketing.clv.distributions import BetaGeoNBD, ModifiedBetaGeoNBD, ParetoNBD

    value = np.column_stack([rows["recency"].to_numpy(), rows["frequency"].to_numpy()])
    T = rows["T"].to_numpy()
    weight = rows["weight"].to_numpy(dtype=np.float64)
    with pm.Model() as pymc_model:
        v = _purchase_variables(model, priors)
        if model == "pareto_nbd":
            dist = ParetoNBD.dist(r=v["r"], alpha=v["alpha"], s=v["s"], beta=v["beta"], T=T)
        elif model == "mbgnbd":
            dist = ModifiedBetaGeoNBD.dist(a=v["a"], b=v["b"], r=v["r"], alpha=v["alpha"], T=T)
        else:
            dist = BetaGeoNBD.dist(a=v["a"], b=v["b"], r=v["r"], alpha=v["alpha"], T=T)
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


def _fit(pymc_model: Any, names: tuple[str, ...], method: Method, sampler: Sampler, label: str) -> BayesFit:

    _quiet()
    try:
        return _run(pymc_model, names, method, sampler, label)
    except FitError:
        raise
    except (RuntimeError, ValueError, FloatingPointError) as exc:  # e.g. pymc's SamplingError
        first = str(exc).strip().splitlines()
        raise FitError(f"{label}: PyMC {method} failed: {first[0] if first else type(exc).__name__}") from exc


def _run(pymc_model: Any, names: tuple[str, ...], method: Method, sampler: Sampler, label: str) -> BayesFit:
    import arviz as az
    import pymc as pm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pymc_model:
            if method == "map":
                found = pm.find_MAP(progressbar=False, seed=sampler.seed)
                params = {k: float(found[k]) for k in names}
                if not all(np.isfinite(v) and v > 0 for v in params.values()):
                    raise FitError(f"{label}: the MAP estimate is not finite and positive ({params})")
                return BayesFit(params, dict.fromkeys(names, float("nan")), None, None)
            idata = pm.sample(
                draws=sampler.draws,
                tune=sampler.tune,
                chains=sampler.chains,
                cores=sampler.cores,
                target_accept=sampler.target_accept,
                random_seed=sampler.seed,
                progressbar=False,
                compute_convergence_checks=False,
            )
        posterior = idata.posterior[list(names)]
        rhat = az.rhat(posterior)
        ess_bulk = az.ess(posterior, method="bulk")
        ess_tail = az.ess(posterior, method="tail")
    diagnostics = Diagnostics(
        max_rhat=float(max(rhat[k].item() for k in names)) if sampler.chains > 1 else float("nan"),
        min_ess_bulk=float(min(ess_bulk[k].item() for k in names)),
        min_ess_tail=float(min(ess_tail[k].item() for k in names)),
        divergences=int(idata.sample_stats["diverging"].sum().item()),
    )
    stacked = {k: posterior[k].to_numpy().reshape(-1) for k in names}
    total = len(stacked[names[0]])
    keep = np.unique(np.linspace(0, total - 1, min(sampler.keep_draws, total)).round().astype(int))
    return BayesFit(
        params={k: float(v.mean()) for k, v in stacked.items()},
        posterior_sd={k: float(v.std(ddof=1)) for k, v in stacked.items()},
        draws={k: np.asarray(v[keep], dtype=np.float64) for k, v in stacked.items()},
        diagnostics=diagnostics,
    )


def fit_purchase_bayes(
    model: str,
    frequency: Any,
    recency: Any,
    T: Any,
    method: Method,
    priors: Priors = "flat",
    sampler: Sampler = Sampler(),
) -> tuple[PurchaseParams, BayesFit, int]:
    """A Bayesian purchase-model fit; returns the point parameters, the fit, and the unique-history count."""
    return fit_purchase_bayes_histories(model, unique_histories(frequency, recency, T), method, priors, sampler)


def fit_purchase_bayes_histories(
    model: str, rows: pd.DataFrame, method: Method, priors: Priors = "flat", sampler: Sampler = Sampler()
) -> tuple[PurchaseParams, BayesFit, int]:
    """:func:`fit_purchase_bayes` on unique histories with their ``weight``."""
    if (rows["frequency"] == 0).all():
        raise FitError(f"{LABELS[model]}: no customer has a repeat purchase, so the purchase model cannot be fitted")
    fit = _fit(_purchase_model(model, rows, priors), PARAM_NAMES[model], method, sampler, LABELS[model])
    return make_params(model, fit.params), fit, len(rows)


def fit_gamma_gamma_bayes(
    frequency: Any, monetary_value: Any, method: Method, sampler: Sampler = Sampler()
) -> tuple[GammaGammaParams, BayesFit]:
    """Gamma-Gamma with flat priors on customers with a repeat purchase and positive spend."""
    f, m = repeat_spend(frequency, monetary_value)
    fit = _fit(_spend_model(f, m), ("p", "q", "v"), method, sampler, "Gamma-Gamma")
    return check_mean_spend(GammaGammaParams(*(fit.params[k] for k in ("p", "q", "v"))), "heavy-tailed spend"), fit
