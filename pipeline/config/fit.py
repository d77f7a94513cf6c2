"""``fit``: which purchase models are fitted and how (maximum likelihood, MAP or MCMC), and the spend model.

Model names are checked against :mod:`models.registry` (so a registered plug-in is a valid name) and each
candidate's method against what the model supports. The MCMC defaults are the sampler's own
(:class:`models.pymc_fit.Sampler`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from models import registry
from models.bayes import Priors
from models.pymc_fit import Sampler
from pipeline.config.base import StrictModel

__all__ = [
    "CandidateConfig",
    "DiagnosticsConfig",
    "FitConfig",
    "FitMethod",
    "McmcConfig",
    "PurchaseModelName",
    "RemediesConfig",
]

_SAMPLER = Sampler()


def _registered(name: str) -> str:
    """A purchase model's name must be registered (see :mod:`models.registry`)."""
    known = [repr(n) for n in registry.names()]
    if name not in registry.names():
        choices = known[0] if len(known) == 1 else f"{', '.join(known[:-1])} or {known[-1]}"
        raise ValueError(f"Input should be {choices} (got {name!r})")
    return name


def _check_method(model: str, method: str) -> None:
    supported = registry.get(model).methods
    if method not in supported:
        raise ValueError(
            f"{registry.get(model).label} cannot be fitted by {method!r}; it supports {', '.join(supported)}"
        )


PurchaseModelName = Annotated[str, AfterValidator(_registered)]
"""The name of a registered purchase model (``bgnbd``, ``mbgnbd``, ``pareto_nbd``, or a plug-in's)."""
FitMethod = Literal["mle", "map", "mcmc"]


class CandidateConfig(StrictModel):
    """A purchase model and how to fit it: ``mle`` (lifetimes), ``map`` or ``mcmc`` (PyMC)."""

    model: PurchaseModelName
    method: FitMethod = "mle"

    @property
    def name(self) -> str:
        return f"{self.model}_{self.method}"

    @model_validator(mode="after")
    def _method_supported(self) -> CandidateConfig:
        _check_method(self.model, self.method)
        return self


class RemediesConfig(StrictModel):
    """What the maximum-likelihood fit tries, in order, when a plain fit fails or degenerates.

    1. ``restart``: start the optimiser at the data's time scale (alpha, beta at the median age) instead
       of lifetimes' all-ones start on its internally rescaled time.
    2. ``penalizers``: L2 penalties, each fitted on the calibration period; the one with the best holdout
       log-likelihood wins.
    A fit is degenerate when a shape parameter (r, a, b, s) leaves [``min_shape``, ``max_shape``].
    """

    restart: bool = True
    penalizers: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    max_shape: float = Field(default=1e4, gt=1)
    min_shape: float = Field(default=1e-6, gt=0, lt=1)

    @field_validator("penalizers")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(p <= 0 for p in value):
            raise ValueError("fit.remedies.penalizers must be positive")
        return value


class McmcConfig(StrictModel):
    """NUTS settings; ``keep_draws`` joint draws travel with the model for per-customer credible intervals."""

    chains: int = Field(default=_SAMPLER.chains, ge=2, le=16, description="at least 2: r-hat compares chains")
    draws: int = Field(default=_SAMPLER.draws, ge=10)
    tune: int = Field(default=_SAMPLER.tune, ge=0)
    target_accept: float = Field(default=_SAMPLER.target_accept, gt=0, lt=1)
    seed: int = _SAMPLER.seed
    keep_draws: int = Field(default=_SAMPLER.keep_draws, ge=2, le=5000)
    cores: int = Field(default=_SAMPLER.cores, ge=1)


class DiagnosticsConfig(StrictModel):
    """Limits on MCMC diagnostics: a run that breaks one fails its gate and is not registered."""

    max_rhat: float = Field(default=1.05, gt=1)
    min_ess: float = Field(default=100, gt=0)
    max_divergences: int = Field(default=0, ge=0)


class FitConfig(StrictModel):
    """How the models are fitted.

    One model (``purchase_model`` x ``method``) or several ``candidates``: each candidate is fitted on
    the calibration period, validated on the holdout and logged as a child run; the best on
    ``selection_metric`` (``selection_direction``) is refitted on the full history and registered.
    """

    purchase_model: PurchaseModelName = "bgnbd"
    method: FitMethod = "mle"
    candidates: tuple[CandidateConfig, ...] = ()
    selection_metric: str = "purchases_holdout_log_likelihood"
    selection_direction: Literal["higher", "lower"] | None = Field(
        default=None, description="None: lower for errors (mae, rmse, error, brier), higher otherwise"
    )
    spend_model: Literal["gamma_gamma", "pooled_mean", "none"] | None = Field(
        default=None,
        description="gamma_gamma (falling back to pooled_mean when spend does not vary across customers), "
        "pooled_mean, or none (no money columns: expected order value, CLV); null: gamma_gamma when the feed has "
        "amounts, none when it has not (data.columns.amount: null)",
    )
    purchase_penalizer: float = Field(default=0.0, ge=0)
    spend_penalizer: float = Field(default=0.0, ge=0)
    remedies: RemediesConfig = RemediesConfig()
    priors: Priors = "flat"
    mcmc: McmcConfig = McmcConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    interval: tuple[float, float] = (0.05, 0.95)
    spend_correlation_threshold: float = Field(default=0.3, gt=0, le=1)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1] <= 1:
            raise ValueError("fit.interval must be two quantiles with 0 <= lower < upper <= 1")
        return value

    @model_validator(mode="after")
    def _one_way_to_choose(self) -> FitConfig:
        if self.candidates and self.model_fields_set & {"purchase_model", "method"}:
            raise ValueError("set fit.candidates, or fit.purchase_model and fit.method, not both")
        names = [c.name for c in self.candidates]
        if len(names) != len(set(names)):
            raise ValueError("fit.candidates lists the same model and method twice")
        if not self.candidates:
            _check_method(self.purchase_model, self.method)
        return self

    def candidate_list(self) -> tuple[CandidateConfig, ...]:
        return self.candidates or (CandidateConfig(model=self.purchase_model, method=self.method),)
