"""A fitted CLV model as plain data: parameters plus the definitions that scoring must reuse.

This is what travels inside the registered MLflow model as JSON (no pickles): the purchase and
spend parameters, and the scoring definitions of the training config (time unit, horizons, churn
horizon, risk tiers, CLV horizon and discount rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.gamma_gamma import GammaGammaParams
from models.purchase import PARAM_NAMES, PurchaseParams, make_params, model_name

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 2 added other purchase models and posterior draws; version 1 files (BG/NBD only) still load."""


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
    both models is used together. ``interval`` is the (lower, upper) quantile pair reported per customer.
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
    """A purchase model (BG/NBD, MBG/NBD or Pareto/NBD) with Gamma-Gamma spend, and how to score it.

    ``posterior`` holds MCMC draws when the model was fitted with ``fit.method: mcmc``; scoring then
    reports posterior means with credible intervals.
    """

    purchase: PurchaseParams
    spend: GammaGammaParams
    spec: ScoringSpec
    posterior: PosteriorDraws | None = None
    spend_model: str = "gamma_gamma"

    @property
    def purchase_model(self) -> str:
        return model_name(self.purchase)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "purchase_model": self.purchase_model,
            "purchase_params": self.purchase.as_dict(),
            "spend_model": self.spend_model,
            "spend_params": self.spend.as_dict(),
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
    def from_params(cls, params: dict[str, float], spec: ScoringSpec, purchase_model: str = "bgnbd") -> CLVModelParams:
        """From flat parameter names: the purchase model's (e.g. r, alpha, a, b) and p, q, v."""
        return cls(
            purchase=make_params(purchase_model, params),
            spend=GammaGammaParams(*(float(params[k]) for k in ("p", "q", "v"))),
            spec=spec,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CLVModelParams:
        if data.get("format_version") not in READABLE_VERSIONS:
            raise ValueError(f"unsupported model format_version {data.get('format_version')!r}")
        if data["purchase_model"] not in PARAM_NAMES or data["spend_model"] != "gamma_gamma":
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
            spend=GammaGammaParams(**{k: float(v) for k, v in data["spend_params"].items()}),
            spec=spec,
            posterior=None if data.get("posterior") is None else PosteriorDraws.from_dict(data["posterior"]),
        )
