"""A fitted CLV model as plain data: parameters plus the definitions that scoring must reuse.

This is what travels inside the registered MLflow model as JSON (no pickles): the purchase and
spend parameters, and the scoring definitions of the training config (time unit, horizons, churn
horizon, risk tiers, CLV horizon and discount rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.bgnbd import BetaGeoParams
from models.gamma_gamma import GammaGammaParams

FORMAT_VERSION = 1


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
class CLVModelParams:
    purchase: BetaGeoParams
    spend: GammaGammaParams
    spec: ScoringSpec
    purchase_model: str = "bgnbd"
    spend_model: str = "gamma_gamma"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "purchase_model": self.purchase_model,
            "purchase_params": self.purchase.as_dict(),
            "spend_model": self.spend_model,
            "spend_params": self.spend.as_dict(),
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
    def from_params(cls, params: dict[str, float], spec: ScoringSpec) -> CLVModelParams:
        """From the flat parameter names r, alpha, a, b, p, q, v."""
        return cls(
            purchase=BetaGeoParams(*(float(params[k]) for k in ("r", "alpha", "a", "b"))),
            spend=GammaGammaParams(*(float(params[k]) for k in ("p", "q", "v"))),
            spec=spec,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CLVModelParams:
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format_version {data.get('format_version')!r}")
        if data["purchase_model"] != "bgnbd" or data["spend_model"] != "gamma_gamma":
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
            purchase=BetaGeoParams(**{k: float(v) for k, v in data["purchase_params"].items()}),
            spend=GammaGammaParams(**{k: float(v) for k, v in data["spend_params"].items()}),
            spec=spec,
        )
