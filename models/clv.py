"""Discounted customer lifetime value from a purchase model and an expected order value.

CLV over H months = sum over m = 1..H of E[order value] * E[purchases in month m] / (1 + d)^(m / 12),
with d the annual discount rate and a month of 30.4375 days (365.25 / 12). Purchases in month m
are the difference of the model's cumulative expectation at the end and the start of the month,
so the arithmetic is the same as lifetimes' ``customer_lifetime_value`` with an annual rate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["DAYS_PER_MONTH", "DAYS_PER_UNIT", "days_to_units", "discounted_clv"]

FloatArray = NDArray[np.float64]

DAYS_PER_MONTH = 30.4375
DAYS_PER_UNIT: dict[str, float] = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH}


def days_to_units(days: float, time_unit: str) -> float:
    """Convert a horizon in days to the model's time unit (day, week or month)."""
    return days / DAYS_PER_UNIT[time_unit]


def discounted_clv(
    cumulative_purchases: Callable[[float], FloatArray],
    order_value: FloatArray,
    horizon_months: int,
    annual_discount_rate: float,
    time_unit: str,
) -> FloatArray:
    """Discounted value of the purchases expected in the next ``horizon_months`` months.

    ``cumulative_purchases(t)`` returns each customer's expected purchases in the next ``t`` model
    time units.
    """
    value = np.zeros_like(order_value, dtype=np.float64)
    previous = np.zeros_like(order_value, dtype=np.float64)
    for month in range(1, horizon_months + 1):
        current = cumulative_purchases(days_to_units(month * DAYS_PER_MONTH, time_unit))
        value += order_value * (current - previous) / (1 + annual_discount_rate) ** (month / 12)
        previous = current
    return value
