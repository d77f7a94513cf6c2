"""sBG by cohort with PyMC: MAP or NUTS on :func:`models.sbg.sbg_pymc_model`, one (alpha, beta) per cohort.

``map`` returns the posterior mode (with ``flat`` priors, the maximum likelihood); ``mcmc`` the posterior
means, standard deviations and the worst convergence diagnostics over every cohort's alpha and beta.
PyMC and ArviZ are imported when a fit runs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from models import sbg
from models.fitted import FitError
from models.pymc_fit import Diagnostics, Method, Sampler, diagnostics_of, pymc_failures, sample_nuts

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
    import pymc as pm

    cohorts = list(counts)
    with pymc_failures("sBG", method), sbg.sbg_pymc_model(counts, priors):
        if method == "map":
            found = pm.find_MAP(progressbar=False, seed=sampler.seed, options={"ftol": 1e-14, "gtol": 1e-10})
            values = {k: np.asarray(found[k], dtype=np.float64) for k in _NAMES}
            if not all(np.isfinite(v).all() and (v > 0).all() for v in values.values()):
                raise FitError(f"sBG (PyMC map): the MAP estimate is not finite and positive ({values})")
            nan = dict.fromkeys(_NAMES, float("nan"))
            return SBGBayesFit(_by_cohort(cohorts, values), {c: dict(nan) for c in cohorts}, None)
        idata = sample_nuts(sampler)
        diagnostics = diagnostics_of(idata, _NAMES, sampler.chains)
    posterior = idata.posterior[list(_NAMES)]
    means = {k: posterior[k].mean(dim=("chain", "draw")).to_numpy() for k in _NAMES}
    sds = {k: posterior[k].std(dim=("chain", "draw"), ddof=1).to_numpy() for k in _NAMES}
    sd = {c: {k: float(sds[k][i]) for k in _NAMES} for i, c in enumerate(cohorts)}
    return SBGBayesFit(_by_cohort(cohorts, means), sd, diagnostics)


def _by_cohort(cohorts: list[Hashable], values: Mapping[str, np.ndarray]) -> dict[Hashable, sbg.ShiftedBetaGeoParams]:
    return {
        c: sbg.ShiftedBetaGeoParams(float(values["alpha"][i]), float(values["beta"][i])) for i, c in enumerate(cohorts)
    }
