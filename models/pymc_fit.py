"""Running a PyMC model: the sampler settings, MAP or NUTS, and the result as data.

``map`` finds the posterior mode; ``mcmc`` samples with NUTS and returns a thinned set of joint draws
(never chain x draw x customer arrays, pymc-marketing #374) with the convergence diagnostics, which the
promotion gate checks. PyMC and ArviZ are imported when a fit runs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from models.fitted import FitError

__all__ = [
    "BayesFit",
    "Diagnostics",
    "Method",
    "Sampler",
    "diagnostics_of",
    "pymc_failures",
    "run_pymc",
    "sample_nuts",
]

Method = Literal["map", "mcmc"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Sampler:
    """NUTS settings (the defaults of ``fit.mcmc``); ``keep_draws`` joint draws are kept for credible intervals."""

    chains: int = 2
    draws: int = 500
    tune: int = 500
    target_accept: float = 0.9
    seed: int = 20261122
    keep_draws: int = 100
    cores: int = 2


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


@contextmanager
def pymc_failures(label: str, method: Method) -> Iterator[None]:
    """PyMC's and ArviZ's log lines and warnings silenced, and their failures (e.g. pymc's SamplingError) raised
    as FitErrors that name ``label``."""
    _quiet()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except FitError:
        raise
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        first = str(exc).strip().splitlines()
        raise FitError(f"{label}: PyMC {method} failed: {first[0] if first else type(exc).__name__}") from exc


def sample_nuts(sampler: Sampler) -> Any:
    """NUTS draws (an ArviZ InferenceData) of the PyMC model whose context is open, with ``sampler``'s settings."""
    import pymc as pm

    return pm.sample(
        draws=sampler.draws,
        tune=sampler.tune,
        chains=sampler.chains,
        cores=sampler.cores,
        target_accept=sampler.target_accept,
        random_seed=sampler.seed,
        progressbar=False,
        compute_convergence_checks=False,
    )


def diagnostics_of(idata: Any, names: tuple[str, ...], chains: int) -> Diagnostics:
    """The worst r-hat (NaN with one chain), bulk and tail ESS over every element of ``names``, and the
    divergences."""
    import arviz as az

    posterior = idata.posterior[list(names)]
    rhat = az.rhat(posterior)  # type: ignore[no-untyped-call]
    ess_bulk = az.ess(posterior, method="bulk")  # type: ignore[no-untyped-call]
    ess_tail = az.ess(posterior, method="tail")  # type: ignore[no-untyped-call]
    return Diagnostics(
        max_rhat=float(max(np.max(rhat[k].to_numpy()) for k in names)) if chains > 1 else float("nan"),
        min_ess_bulk=float(min(np.min(ess_bulk[k].to_numpy()) for k in names)),
        min_ess_tail=float(min(np.min(ess_tail[k].to_numpy()) for k in names)),
        divergences=int(idata.sample_stats["diverging"].sum().item()),
    )


def run_pymc(pymc_model: Any, names: tuple[str, ...], method: Method, sampler: Sampler, label: str) -> BayesFit:
    """Fit ``pymc_model`` by MAP or NUTS; the point parameters and draws of ``names``. PyMC's failures are
    FitErrors that name ``label``."""
    import pymc as pm

    with pymc_failures(label, method), pymc_model:
        if method == "map":
            found = pm.find_MAP(progressbar=False, seed=sampler.seed)
            params = {k: float(found[k]) for k in names}
            if not all(np.isfinite(v) and v > 0 for v in params.values()):
                raise FitError(f"{label}: the MAP estimate is not finite and positive ({params})")
            return BayesFit(params, dict.fromkeys(names, float("nan")), None, None)
        idata = sample_nuts(sampler)
        diagnostics = diagnostics_of(idata, names, sampler.chains)
    posterior = idata.posterior[list(names)]
    stacked = {k: posterior[k].to_numpy().reshape(-1) for k in names}
    total = len(stacked[names[0]])
    keep = np.unique(np.linspace(0, total - 1, min(sampler.keep_draws, total)).round().astype(int))
    return BayesFit(
        params={k: float(v.mean()) for k, v in stacked.items()},
        posterior_sd={k: float(v.std(ddof=1)) for k, v in stacked.items()},
        draws={k: np.asarray(v[keep], dtype=np.float64) for k, v in stacked.items()},
        diagnostics=diagnostics,
    )
