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


def _unique_histories(f: np.ndarray, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the distinct (frequency, recency, T) histories, and each customer's history index.

    Purchase-model quantities depend only on the history, and real customer bases repeat histories a
    lot, so the (expensive) hypergeometric terms are evaluated once per distinct history.
    """
    codes = pd.MultiIndex.from_arrays([f, r, t]).factorize()[0] if len(f) else np.zeros(0, dtype=np.int64)
    first = np.full(codes.max() + 1 if len(codes) else 0, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first, codes


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
    f_all = customers["frequency"].to_numpy(dtype=np.float64)
    r_all = customers["recency"].to_numpy(dtype=np.float64)
    t_all = customers["T"].to_numpy(dtype=np.float64)
    m = customers["monetary_value"].to_numpy(dtype=np.float64)
    rows, codes = _unique_histories(f_all, r_all, t_all)
    f, r, t = f_all[rows], r_all[rows], t_all[rows]

    churn_risk = bgnbd.p_no_purchase(model.purchase, days_to_units(spec.churn_horizon_days, spec.time_unit), f, r, t)
    order_value = gamma_gamma.expected_order_value(model.spend, f_all, m)
    out: dict[str, object] = {
        CUSTOMER_ID: customers[CUSTOMER_ID].to_numpy(),
        "p_alive": bgnbd.p_alive(model.purchase, f, r, t)[codes],
        "churn_risk": churn_risk[codes],
        "risk_tier": assign_risk_tier(churn_risk, spec.risk_tiers)[codes],
    }
    for days in spec.horizons_days:
        expected = bgnbd.expected_purchases(model.purchase, days_to_units(days, spec.time_unit), f, r, t)
        out[horizon_column(days)] = expected[codes]
    out["expected_order_value"] = order_value
    # CLV is linear in the order value: discount the expected purchases per history, then scale.
    discounted_purchases = discounted_clv(
        lambda horizon: bgnbd.expected_purchases(model.purchase, horizon, f, r, t),
        np.ones_like(f),
        spec.clv_horizon_months,
        spec.annual_discount_rate,
        spec.time_unit,
    )
    out["clv"] = order_value * discounted_purchases[codes]
    scores = pd.DataFrame(out, index=customers.index)
    numeric = scores.select_dtypes("number").to_numpy()
    if not np.isfinite(numeric).all():
        bad = int((~np.isfinite(numeric)).any(axis=1).sum())
        raise NonFiniteScoresError(f"{bad} customers got NaN or infinite scores; the fitted parameters are degenerate")
    return scores


class NonFiniteScoresError(ValueError):
    """Raised instead of letting NaN or infinity reach a scores table."""
