"""``score``: the horizons, churn horizon, risk tiers and CLV horizon of the scores.

The defaults are the scoring definitions' own (:class:`models.bundle.ScoringSpec`), which travel with a
registered model.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from models.bundle import RiskTier, ScoringSpec
from pipeline.config.base import StrictModel

__all__ = ["RiskTierConfig", "ScoreConfig"]

_SPEC = ScoringSpec()


class RiskTierConfig(StrictModel):
    name: str
    upper: float = Field(gt=0, le=1)


class ScoreConfig(StrictModel):
    horizons_days: tuple[int, ...] = _SPEC.horizons_days
    churn_horizon_days: int = Field(default=_SPEC.churn_horizon_days, gt=0)
    risk_tiers: tuple[RiskTierConfig, ...] = tuple(RiskTierConfig(name=t.name, upper=t.upper) for t in _SPEC.risk_tiers)
    clv_horizon_months: int = Field(default=_SPEC.clv_horizon_months, gt=0, le=600)
    annual_discount_rate: float = Field(default=_SPEC.annual_discount_rate, ge=0, lt=10)

    @field_validator("horizons_days")
    @classmethod
    def _positive_horizons(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(h <= 0 for h in value):
            raise ValueError("score.horizons_days must be a non-empty list of positive day counts")
        return value

    @field_validator("risk_tiers")
    @classmethod
    def _ordered_tiers(cls, value: tuple[RiskTierConfig, ...]) -> tuple[RiskTierConfig, ...]:
        uppers = [t.upper for t in value]
        if not value or uppers != sorted(set(uppers)) or uppers[-1] != 1.0:
            raise ValueError("score.risk_tiers must have strictly increasing 'upper' bounds ending at 1.0")
        return value

    def scoring_spec(self, time_unit: str) -> ScoringSpec:
        return ScoringSpec(
            time_unit=time_unit,
            horizons_days=self.horizons_days,
            churn_horizon_days=self.churn_horizon_days,
            risk_tiers=tuple(RiskTier(t.name, t.upper) for t in self.risk_tiers),
            clv_horizon_months=self.clv_horizon_months,
            annual_discount_rate=self.annual_discount_rate,
        )
