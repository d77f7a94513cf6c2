"""``business``: the business views of the production scores (at-risk customers, CAC)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from pipeline.config.base import StrictModel

__all__ = ["BusinessConfig"]


class BusinessConfig(StrictModel):
    """Business views of the production scores.

    CAC (customer acquisition cost) is optional: one ``cac`` for everyone, or ``cac_file``, a CSV with
    ``customer_id`` and either ``cac`` (per customer) or ``channel`` (the acquisition channel, priced
    by ``cac_by_channel``).
    """

    at_risk_clv_quantile: float = Field(default=0.8, ge=0, lt=1)
    at_risk_churn_risk: float = Field(default=0.8, ge=0, le=1)
    cac: float | None = Field(default=None, ge=0)
    cac_file: Path | None = None
    cac_by_channel: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> BusinessConfig:
        if self.cac is not None and self.cac_file is not None:
            raise ValueError("set business.cac or business.cac_file, not both")
        return self
