"""sBG by cohort with PyMC: MAP or NUTS on :func:`sbg_pymc_model`, one (alpha, beta) per cohort.

``map`` returns the posterior mode (with ``flat`` priors, the maximum likelihood); ``mcmc`` the posterior
means, standard deviations and the worst convergence diagnostics over every cohort's alpha and beta.
PyMC and ArviZ are imported when a fit runs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from models import sbg
from models.fitted import FitError
from models.pymc_fit import Diagnostics, Method, Sampler, diagnostics_of, pymc_failures, sample_nuts

__all__ = ["SBGBayesFit", "fit_sbg_pymc", "sbg_pymc_model"]

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
    with pymc_failures("sBG", method), sbg_pymc_model(counts, priors):
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


def sbg_pymc_model(
    counts: Mapping[Hashable, sbg.RenewalCounts], priors: Literal["flat", "pymc_marketing"] = "flat"
) -> Any:
    """A PyMC model with one (alpha, beta) per cohort (dims "cohort"), weighted by the counts.

    Churned cells use pymc-marketing's ``ShiftedBetaGeometric`` log-pmf at T = n + 1; censored cells the
    log-survival log S(n) (the same gammaln form pymc-marketing's ``ShiftedBetaGeoModel`` uses through
    ``pm.Censored``, written directly so that n = 0 has a finite gradient). ``flat``: HalfFlat priors (MAP =
    maximum likelihood); ``pymc_marketing``: that model's defaults, alpha = phi kappa, beta = (1 - phi) kappa
    with phi ~ Uniform(0, 1), kappa ~ Pareto(1, 1).
    """
    import pymc as pm
    import pytensor.tensor as pt
    from pymc_marketing.clv.distributions import ShiftedBetaGeometric

    cohorts = list(counts)
    cells = [(i, n, c.churned[n], c.active[n]) for i, c in enumerate(counts.values()) for n in range(len(c.churned))]
    index, n, churned, active = (np.array(v) for v in zip(*cells, strict=True))
    index = index.astype(np.int64)
    with pm.Model(coords={"cohort": cohorts}) as model:
        if priors == "flat":
            alpha = pm.HalfFlat("alpha", dims="cohort")
            beta = pm.HalfFlat("beta", dims="cohort")
        else:
            phi = pm.Uniform("phi", lower=0, upper=1, dims="cohort")
            kappa = pm.Pareto("kappa", alpha=1, m=1, dims="cohort")
            alpha = pm.Deterministic("alpha", phi * kappa, dims="cohort")
            beta = pm.Deterministic("beta", (1 - phi) * kappa, dims="cohort")
        a, b = alpha[index], beta[index]
        churn = pm.logp(ShiftedBetaGeometric.dist(a, b), n + 1)  # type: ignore[no-untyped-call]
        log_survival = pt.gammaln(b + n) - pt.gammaln(b) + pt.gammaln(a + b) - pt.gammaln(a + b + n)
        pm.Potential("likelihood", (churned * churn).sum() + (active * log_survival).sum())
    return model
