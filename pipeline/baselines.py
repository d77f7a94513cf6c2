"""The naive forecasts a model must beat on the holdout.

Baselines predict each customer's holdout revenue (over the holdout length H) from calibration
spending alone:

- ``historical_clv``: the traditional formula, average order value x purchase frequency x expected
  lifespan, over the holdout: AOV x purchases per unit of time x L. L is the expected time a customer
  stays within the holdout under a constant retention rate: with r the share of customers who bought
  in the last W of calibration among those whose first purchase was before it (W = the holdout length,
  at most half the longest customer age), rho = r^(1/W) per unit of time and L = (rho^H - 1) / ln rho;
- ``spend_rate``: total calibration spend per unit of time observed (first purchase to the end of
  calibration, inclusive), carried forward over the holdout (historical CLV with everyone retained);
- ``repeat_spend_rate``: the same with repeat purchases only (frequency x monetary_value);
- ``last_period``: "the last period repeats": what the customer spent in the last H of calibration.

The purchase baselines (``PURCHASE_BASELINES``) are the same ideas in counts: what a model must beat on a
feed without amounts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["BASELINES", "PURCHASE_BASELINES", "lifespan"]

BASELINES: tuple[str, ...] = ("historical_clv", "spend_rate", "repeat_spend_rate", "last_period")
PURCHASE_BASELINES: tuple[str, ...] = ("historical", "purchase_rate", "repeat_purchase_rate", "last_period")
"""Baselines of holdout purchases (the same ideas in counts): what the model must beat without amounts."""


def lifespan(calibration: pd.DataFrame, horizon: float) -> tuple[float, float]:
    """Retention over the holdout and the expected time retained within it (historical-CLV baseline)."""
    window = min(horizon, float(calibration["T"].max()) / 2)
    started_before = calibration["T"] > window
    if window <= 0 or not started_before.any():
        return 1.0, horizon
    last_purchase_age = calibration["T"] - calibration["recency"]
    retained = float((last_purchase_age[started_before] <= window).mean())
    if retained >= 1.0:
        return 1.0, horizon
    if retained <= 0.0:
        return 0.0, 0.0
    log_rho = np.log(retained) / window
    return float(np.exp(log_rho * horizon)), float(np.expm1(log_rho * horizon) / log_rho)
