"""``validate``: the promotion gate's built-in checks and criteria."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import StrictModel

__all__ = ["Criterion", "ValidateConfig"]


class Criterion(StrictModel):
    """A validation criterion: the run passes when ``metric`` is ``direction`` than ``threshold``."""

    metric: str
    threshold: float
    direction: Literal["higher", "lower"]


class ValidateConfig(StrictModel):
    """The promotion gate.

    Besides ``criteria``, two built-in checks: ``beats_historical_baseline`` requires the model's
    per-customer holdout ``baseline_metric`` to be better than that of every baseline, and
    ``does_not_lose_to_champion`` requires it to be at most ``champion_tolerance`` (relative) worse than
    the current champion's calibration model on the same holdout.

    ``baseline_metric`` and ``criteria`` left unset (null) take the defaults of the spend model: on
    revenue with a spend model, on purchases without one (a feed with no amounts).
    """

    baseline_metric: Literal["revenue_mae", "revenue_rmse", "purchases_mae", "purchases_rmse"] | None = None
    champion_tolerance: float = Field(default=0.01, ge=0, le=1)
    criteria: tuple[Criterion, ...] | None = None

    def baseline_metric_for(self, has_spend: bool) -> str:
        """The built-in baseline check's metric: the configured one, or revenue MAE (purchases MAE without spend)."""
        if self.baseline_metric is not None:
            return self.baseline_metric
        return "revenue_mae" if has_spend else "purchases_mae"

    def criteria_for(self, has_spend: bool) -> tuple[Criterion, ...]:
        """The configured criteria, or the defaults: churn AUC >= 0.70, total purchases within 20%, and a
        skill of at least 5% over the best baseline (on revenue, or on purchases without a spend model)."""
        if self.criteria is not None:
            return self.criteria
        skill = "revenue_mae_skill" if has_spend else "purchases_mae_skill"
        return (
            Criterion(metric="churn_auc", threshold=0.70, direction="higher"),
            Criterion(metric="purchases_total_abs_pct_error", threshold=20.0, direction="lower"),
            Criterion(metric=skill, threshold=0.05, direction="higher"),
        )
