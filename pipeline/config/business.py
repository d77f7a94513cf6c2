"""``business``: the kind of business (which models fit it) and the business views of the scores (at-risk
customers, CAC)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from pipeline.config.base import StrictModel

__all__ = ["BILLING_PERIOD_DAYS", "BusinessConfig", "BusinessType", "ContractualInput"]

BusinessType = Literal["non_contractual", "contractual", "discrete"]
ContractualInput = Literal["billing", "subscriptions"]
BILLING_PERIOD_DAYS = {"week": 7.0, "month": 30.4375, "year": 365.25}
"""Average length of one billing period in days (for "churn risk over N days")."""


class BusinessConfig(StrictModel):
    """The kind of business, and the business views of the production scores.

    ``type``: ``non_contractual`` (purchases at any time, no contract: BG/NBD and its peers; the default),
    ``contractual`` (subscriptions: a billing feed of customer, charge date and amount, modelled by the
    shifted beta-geometric by acquisition cohort) or ``discrete`` (fixed purchase opportunities: BG/BB).
    ``billing_period``: how often a subscriber is charged; ``grace_days``: a renewal is missed (the
    subscriber churned) once its due date is this many days past with no charge. ``churn_risk_days``: the
    horizon of a subscriber's churn risk; ``score.annual_discount_rate`` discounts their future payments (DERL).

    ``input`` (contractual only): ``billing`` (the default: one row per charge) or ``subscriptions``, one row
    per subscription: customer, start (``data.columns.timestamp``), end (``end_column``; empty while the
    subscription runs), plan and price (``data.columns.amount``, charged every billing period from the start
    until the end). It needs ``prepare.observation_end``: an open subscription has no last date of its own.

    CAC (customer acquisition cost) is optional: one ``cac`` for everyone, or ``cac_file``, a CSV with
    ``customer_id`` and either ``cac`` (per customer) or ``channel`` (the acquisition channel, priced
    by ``cac_by_channel``).
    """

    type: BusinessType = "non_contractual"
    billing_period: Literal["week", "month", "year"] = "month"
    grace_days: int = Field(default=7, ge=0)
    churn_risk_days: int = Field(default=90, gt=0)
    input: ContractualInput = "billing"
    end_column: str = Field(default="end", min_length=1)
    at_risk_clv_quantile: float = Field(default=0.8, ge=0, lt=1)
    at_risk_churn_risk: float = Field(default=0.8, ge=0, le=1)
    cac: float | None = Field(default=None, ge=0)
    cac_file: Path | None = None
    cac_by_channel: dict[str, float] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_default_type(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """The business-type keys are written only when one differs from its default: a non-contractual
        config dumps (and hashes) as it did before they existed, so its runs still compare as reruns."""
        data: dict[str, object] = handler(self)
        if all(getattr(self, key) == default for key, default in _TYPE_DEFAULTS.items()):
            for key in _TYPE_DEFAULTS:
                data.pop(key, None)
        for key in ("input", "end_column"):  # added later: contractual configs from before dump as they did
            if getattr(self, key) == BusinessConfig.model_fields[key].default:
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _one_source(self) -> BusinessConfig:
        if self.cac is not None and self.cac_file is not None:
            raise ValueError("set business.cac or business.cac_file, not both")
        if self.input == "subscriptions" and self.type != "contractual":
            raise ValueError("business.input: subscriptions needs business.type: contractual")
        return self

    @property
    def period_days(self) -> float:
        return BILLING_PERIOD_DAYS[self.billing_period]

    def discount_rate_per_period(self, annual_discount_rate: float) -> float:
        """An annual discount rate (``score.annual_discount_rate``) as a rate per billing period."""
        return float((1.0 + annual_discount_rate) ** (self.period_days / 365.25) - 1.0)

    @property
    def churn_risk_periods(self) -> int:
        """Renewal decisions within ``churn_risk_days`` (rounded; at least one)."""
        return max(1, round(self.churn_risk_days / self.period_days))


_TYPE_DEFAULTS: dict[str, object] = {
    key: BusinessConfig.model_fields[key].default for key in ("type", "billing_period", "grace_days", "churn_risk_days")
}
