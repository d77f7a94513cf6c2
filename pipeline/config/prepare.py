"""``prepare``: how transactions become per-customer summaries."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import StrictModel

__all__ = ["PrepareConfig"]


class PrepareConfig(StrictModel):
    """How transactions become per-customer summaries (lifetimes' calibration_and_holdout_data).

    ``period``: purchases by a customer in the same period merge into one transaction.
    ``time_unit``: the unit of recency and T (a month is 30.4375 days).
    ``calibration_end``: last day of the calibration period (inclusive).
    ``observation_end``: last day of the holdout (the as-of date); defaults to the last transaction date.
    ``timezone``: timestamps with an offset (text or TIMESTAMPTZ) are converted to this zone before
    periods are cut; timestamps without one are taken to be in it already.
    ``returns``: negative amounts or quantities, and orders whose id starts with ``cancel_prefix``, are
    returns. ``net`` subtracts them from the customer's spend (see prepare.py), ``drop`` quarantines them.
    ``zero_amount``: ``keep`` zero-value purchases (CDNOW has 80), or ``quarantine`` them; in every
    ``business.type`` (kept, a contractual charge of 0 is a billing period paid, a discrete purchase of 0 uses
    its opportunity).
    ``min_date``: timestamps before it are data-entry errors (``timestamp_out_of_range``).
    ``max_amount``: when set, purchases or returns larger than it are quarantined (``amount_too_large``);
    by default huge amounts are kept (Gamma-Gamma's per-customer weight shrinks them toward the mean).
    ``duplicates``: rows identical in every column of the source, mapped or not (two products on one
    invoice at the same quantity and price are two lines, not a duplicate). ``auto`` quarantines them
    when an order id is mapped (a repeated invoice line is a double load) and keeps them otherwise (two
    identical purchases on one day can be real: CDNOW has 255); ``quarantine`` always, ``keep`` never.
    ``duplicate_key``: source column names (e.g. ``[InvoiceNo, StockCode]``); when set, rows that repeat
    on these columns are duplicates (the first in the order of the other columns is kept).
    """

    period: Literal["day", "week"] = "day"
    time_unit: Literal["day", "week", "month"] = "week"
    calibration_end: dt.date = dt.date(1997, 9, 30)
    observation_end: dt.date | None = None
    timezone: str = Field(default="UTC", description="zone that timestamps with an offset are converted to")
    returns: Literal["net", "drop"] = "net"
    cancel_prefix: str | None = Field(default="C", description="order ids starting with this are cancellations")
    zero_amount: Literal["keep", "quarantine"] = "keep"
    min_date: dt.date = dt.date(1900, 1, 1)
    max_amount: float | None = Field(default=None, gt=0)
    duplicates: Literal["auto", "quarantine", "keep"] = "auto"
    duplicate_key: tuple[str, ...] | None = None

    @field_validator("duplicate_key")
    @classmethod
    def _key(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError("must list one or more distinct column names")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PrepareConfig:
        if self.duplicate_key is not None and self.duplicates == "keep":
            raise ValueError("prepare.duplicate_key has no effect with prepare.duplicates 'keep'")
        if self.period == "week" and self.time_unit == "day":
            raise ValueError("prepare.time_unit 'day' is finer than prepare.period 'week'")
        if self.observation_end is not None and self.observation_end <= self.calibration_end:
            raise ValueError(
                f"prepare.observation_end {self.observation_end} must be after "
                f"prepare.calibration_end {self.calibration_end}"
            )
        return self
