"""sBG by cohort with PyMC: MAP or NUTS on :func:`models.sbg.sbg_pymc_model`, one (alpha, beta) per cohort.

``map`` returns the posterior mode (with ``flat`` priors, the maximum likelihood); ``mcmc`` the posterior
means, standard deviations and the worst convergence diagnostics over every cohort's alpha and beta.
PyMC and ArviZ are imported when a fit runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from models import sbg
from models.fitted import FitError
from models.pymc_fit import Diagnostics, Method, Sampler

__all__ = ["SBGBayesFit", "fit_sbg_pymc"]

_NAMES = ("alpha", "beta")
_SAMPLER = Sampler()


@dataclass(frozen=True)
class SBGBayesFit:
    """Per cohort: the point parameters (MAP or posterior means) and the posterior sd (NaN for MAP)."""

    params: dict[Hashable, sbg.ShiftedBetaGeoParams]
    posterior_sd: dict[Hashable, dict[str, float]]
    diagnostics: Diagnostics | None


def fit_sbg_pymc(
    counts: Mapping[Hashable, sbg.RenewalCounts],
    method: Method,
    priors: Literal["flat", "pymc_marketing"] = "flat",
    sampler: Sampler = _SAMPLER,
) -> SBGBayesFit:
    """One PyMC model over all ``counts`` (cohorts), fitted by ``method``; PyMC's failures are FitErrors."""
    if not counts:
        raise FitError("sBG (PyMC): no cohorts to fit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _fit(counts, method, priors, sampler)
    except FitError:
        raise
    except (RuntimeError, ValueError, FloatingPointError) as exc:  # e.g. pymc's SamplingError
        first = str(exc).strip().splitlines()
        raise FitError(f"sBG (PyMC {method}) failed: {first[0] if first else type(exc).__name__}") from exc


def _fit(
    counts: Mapping[Hashable, sbg.RenewalCounts],
    method: Method,
    priors: Literal["flat", "pymc_marketing"],
    sampler: Sampler,
) -> SBGBayesFit:
    import arviz as az
    import pymc as pm

    cohorts = list(counts)
    with sbg.sbg_pymc_model(counts, priors):
        if method == "map":
            found = pm.find_MAP(progressbar=False, seed=sampler.seed, options={"ftol": 1e-14, "gtol": 1e-10})
            values = {k: np.asarray(found[k], dtype=np.float64) for k in _NAMES}
            if not all(np.isfinite(v).all() and (v > 0).all() for v in values.values()):
                raise FitError(f"sBG (PyMC map): the MAP estimate is not finite and positive ({values})")
            nan = dict.fromkeys(_NAMES, float("nan"))
            return SBGBayesFit(_by_cohort(cohorts, values), {c: dict(nan) for c in cohorts}, None)
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
    posterior = idata.posterior[list(_NAMES)]
    rhat = az.rhat(posterior)  # type: ignore[no-untyped-call]
    ess_bulk = az.ess(posterior, method="bulk")  # type: ignore[no-untyped-call]
    ess_tail = az.ess(posterior, method="tail")  # type: ignore[no-untyped-call]
    diagnostics = Diagnostics(
        max_rhat=float(max(np.max(rhat[k].to_numpy()) for k in _NAMES)),
        min_ess_bulk=float(min(np.min(ess_bulk[k].to_numpy()) for k in _NAMES)),
        min_ess_tail=float(min(np.min(ess_tail[k].to_numpy()) for k in _NAMES)),
        divergences=int(idata.sample_stats["diverging"].sum().item()),
    )
    means = {k: posterior[k].mean(dim=("chain", "draw")).to_numpy() for k in _NAMES}
    sds = {k: posterior[k].std(dim=("chain", "draw"), ddof=1).to_numpy() for k in _NAMES}
    sd = {c: {k: float(sds[k][i]) for k in _NAMES} for i, c in enumerate(cohorts)}
    return SBGBayesFit(_by_cohort(cohorts, means), sd, diagnostics)


def _by_cohort(cohorts: list[Hashable], values: Mapping[str, np.ndarray]) -> dict[Hashable, sbg.ShiftedBetaGeoParams]:
    return {
        c: sbg.ShiftedBetaGeoParams(float(values["alpha"][i]), float(values["beta"][i])) for i, c in enumerate(cohorts)
    }
