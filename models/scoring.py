"""Per-customer scores from a fitted CLV model: the one function that batch, REST and Spark share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import bgnbd, gamma_gamma
from models.bundle import CLVModelParams, RiskTier
from models.clv import days_to_units, discounted_clv
from models.contract import CUSTOMER_ID, check_customer_summary


def horizon_column(days: int) -> str:
    return f"expected_purchases_{days}d"


def score_columns(model: CLVModelParams) -> list[str]:
    """The output columns of :func:`score_customers`, in order."""
    return [
        CUSTOMER_ID,
        "p_alive",
        "churn_risk",
        "risk_tier",
        *[horizon_column(d) for d in model.spec.horizons_days],
        "expected_order_value",
        "clv",
    ]


def assign_risk_tier(churn_risk: np.ndarray, tiers: tuple[RiskTier, ...]) -> np.ndarray:
    """Tier i holds churn risks in [upper_{i-1}, upper_i); the last tier takes everything above."""
    bounds = np.asarray([t.upper for t in tiers[:-1]], dtype=np.float64)
    names = np.asarray([t.name for t in tiers], dtype=object)
    return np.asarray(names[np.searchsorted(bounds, churn_risk, side="right")])


def score_customers(model: CLVModelParams, customers: pd.DataFrame) -> pd.DataFrame:
    """Score a per-customer summary (customer_id, frequency, recency, T, monetary_value).

    - ``p_alive``: P(alive at T).
    - ``churn_risk``: P(no purchase in the next ``churn_horizon_days``), not 1 - p_alive: BG/NBD gives
      P(alive) = 1 to every customer without a repeat purchase.
    - ``expected_purchases_<N>d``: expected purchases in the next N days.
    - ``expected_order_value``: Gamma-Gamma conditional expected spend per purchase.
    - ``clv``: discounted value over ``clv_horizon_months`` at ``annual_discount_rate``.
    """
    check_customer_summary(customers)
    spec = model.spec
    f = customers["frequency"].to_numpy(dtype=np.float64)
    r = customers["recency"].to_numpy(dtype=np.float64)
    t = customers["T"].to_numpy(dtype=np.float64)
    m = customers["monetary_value"].to_numpy(dtype=np.float64)

    churn_risk = bgnbd.p_no_purchase(
        model.purchase, days_to_units(spec.churn_horizon_days, spec.time_unit), f, r, t
    )
    order_value = gamma_gamma.expected_order_value(model.spend, f, m)
    out: dict[str, object] = {
        CUSTOMER_ID: customers[CUSTOMER_ID].to_numpy(),
        "p_alive": bgnbd.p_alive(model.purchase, f, r, t),
        "churn_risk": churn_risk,
        "risk_tier": assign_risk_tier(churn_risk, spec.risk_tiers),
    }
    for days in spec.horizons_days:
        out[horizon_column(days)] = bgnbd.expected_purchases(
            model.purchase, days_to_units(days, spec.time_unit), f, r, t
        )
    out["expected_order_value"] = order_value
    out["clv"] = discounted_clv(
        lambda horizon: bgnbd.expected_purchases(model.purchase, horizon, f, r, t),
        order_value,
        spec.clv_horizon_months,
        spec.annual_discount_rate,
        spec.time_unit,
    )
    return pd.DataFrame(out, index=customers.index)
