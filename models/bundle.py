"""A fitted CLV model as plain data: parameters plus the definitions that scoring must reuse.

This is what travels inside the registered MLflow model as JSON (no pickles): the purchase and
spend parameters, and the scoring definitions of the training config (time unit, horizons, churn
horizon, risk tiers, CLV horizon and discount rate). The spend model is Gamma-Gamma, the pooled mean
spend (the fallback without spend heterogeneity) or none (a feed without amounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.gamma_gamma import GammaGammaParams
from models.purchase import PARAM_NAMES, PurchaseParams, make_params, model_name
from models.spend import SpendModel, SpendParams, make_spend_params, spend_model_name

__all__ = ["FORMAT_VERSION", "READABLE_VERSIONS", "CLVModelParams", "PosteriorDraws", "RiskTier", "ScoringSpec"]

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
"""Version 2 added other purchase models and posterior draws; version 3 the spend models ``pooled_mean``
and ``none`` (``spend_params`` null). Versions 1 (BG/NBD only) and 2 (Gamma-Gamma only) still load."""


@dataclass(frozen=True)
class RiskTier:
    """Customers whose churn risk is below ``upper`` (and not in an earlier tier) get ``name``."""

    name: str
    upper: float


@dataclass(frozen=True)
class ScoringSpec:
    time_unit: str = "week"
    horizons_days: tuple[int, ...] = (30, 90, 365)
    churn_horizon_days: int = 90
    risk_tiers: tuple[RiskTier, ...] = (RiskTier("low", 0.5), RiskTier("medium", 0.8), RiskTier("high", 1.0))
    clv_horizon_months: int = 12
    annual_discount_rate: float = 0.10


@dataclass(frozen=True)
class PosteriorDraws:
    """Joint posterior draws of the purchase and spend parameters (from MCMC), for credible intervals.

    ``purchase`` and ``spend`` map each parameter name to an array with one value per draw; draw i of
    both models is used together. ``spend`` is empty when the spend model is not Gamma-Gamma (the pooled
    mean is a point estimate). ``interval`` is the (lower, upper) quantile pair reported per customer.
    """

    purchase: dict[str, NDArray[np.float64]]
    spend: dict[str, NDArray[np.float64]]
    interval: tuple[float, float] = (0.05, 0.95)

    def __post_init__(self) -> None:
        sizes = {len(v) for v in (*self.purchase.values(), *self.spend.values())}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError("posterior draws must be non-empty and have one length for every parameter")
        lower, upper = self.interval
        if not 0 <= lower < upper <= 1:
            raise ValueError(f"credible interval quantiles must satisfy 0 <= lower < upper <= 1, got {self.interval}")

    @property
    def n_draws(self) -> int:
        return len(next(iter(self.purchase.values())))

    def purchase_draw(self, model: str, i: int) -> PurchaseParams:
        return make_params(model, {k: float(v[i]) for k, v in self.purchase.items()})

    def spend_draw(self, i: int) -> GammaGammaParams:
        return GammaGammaParams(*(float(self.spend[k][i]) for k in ("p", "q", "v")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval": list(self.interval),
            "purchase": {k: v.tolist() for k, v in self.purchase.items()},
            "spend": {k: v.tolist() for k, v in self.spend.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PosteriorDraws:
        lower, upper = (float(q) for q in data["interval"])
        return cls(
            purchase={k: np.asarray(v, dtype=np.float64) for k, v in data["purchase"].items()},
            spend={k: np.asarray(v, dtype=np.float64) for k, v in data["spend"].items()},
            interval=(lower, upper),
        )


@dataclass(frozen=True)
class CLVModelParams:
    """A purchase model (BG/NBD, MBG/NBD or Pareto/NBD) with a spend model, and how to score it.

    ``spend`` is Gamma-Gamma's parameters, the pooled mean spend, or None (no spend model: no money
    columns). ``posterior`` holds MCMC draws when the model was fitted with ``fit.method: mcmc``;
    scoring then reports posterior means with credible intervals.
    """

    purchase: PurchaseParams
    spend: SpendParams | None
    spec: ScoringSpec
    posterior: PosteriorDraws | None = None

    @property
    def purchase_model(self) -> str:
        return model_name(self.purchase)

    @property
    def spend_model(self) -> SpendModel:
        """``gamma_gamma``, ``pooled_mean`` or ``none``."""
        return spend_model_name(self.spend)

    @property
    def has_spend(self) -> bool:
        """Whether the model values orders (money columns are scored)."""
        return self.spend is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "purchase_model": self.purchase_model,
            "purchase_params": self.purchase.as_dict(),
            "spend_model": self.spend_model,
            "spend_params": None if self.spend is None else self.spend.as_dict(),
            "posterior": None if self.posterior is None else self.posterior.to_dict(),
            "scoring": {
                "time_unit": self.spec.time_unit,
                "horizons_days": list(self.spec.horizons_days),
                "churn_horizon_days": self.spec.churn_horizon_days,
                "risk_tiers": [{"name": t.name, "upper": t.upper} for t in self.spec.risk_tiers],
                "clv_horizon_months": self.spec.clv_horizon_months,
                "annual_discount_rate": self.spec.annual_discount_rate,
            },
        }

    @classmethod
    def from_params(
        cls,
        params: dict[str, float],
        spec: ScoringSpec,
        purchase_model: str = "bgnbd",
        spend_model: str = "gamma_gamma",
    ) -> CLVModelParams:
        """From flat parameter names: the purchase model's (e.g. r, alpha, a, b) and the spend model's
        (p, q, v for Gamma-Gamma, mean for the pooled mean, none for ``none``)."""
        return cls(
            purchase=make_params(purchase_model, params),
            spend=make_spend_params(spend_model, params),
            spec=spec,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CLVModelParams:
        version = data.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"unsupported model format_version {version!r}")
        spend_models = ("gamma_gamma", "pooled_mean", "none") if version == 3 else ("gamma_gamma",)
        if data["purchase_model"] not in PARAM_NAMES or data["spend_model"] not in spend_models:
            raise ValueError(f"unsupported models {data['purchase_model']!r} x {data['spend_model']!r}")
        scoring = data["scoring"]
        spec = ScoringSpec(
            time_unit=scoring["time_unit"],
            horizons_days=tuple(int(h) for h in scoring["horizons_days"]),
            churn_horizon_days=int(scoring["churn_horizon_days"]),
            risk_tiers=tuple(RiskTier(t["name"], float(t["upper"])) for t in scoring["risk_tiers"]),
            clv_horizon_months=int(scoring["clv_horizon_months"]),
            annual_discount_rate=float(scoring["annual_discount_rate"]),
        )
        return cls(
            purchase=make_params(data["purchase_model"], data["purchase_params"]),
            spend=make_spend_params(data["spend_model"], data.get("spend_params")),
            spec=spec,
            posterior=None if data.get("posterior") is None else PosteriorDraws.from_dict(data["posterior"]),
        )
