"""Generated feeds that look like what data scientists bring (besides the invoice lines in ``tests.feeds``).

Each generator is deterministic by seed and returns a plain pandas frame with the source's own column
names and types, as a file would hold them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["bgnbd_purchases", "fixed_price_feed", "subscription_feed"]


def bgnbd_purchases(
    customers: int,
    start: dt.date,
    days: int,
    seed: int,
    r: float = 0.25,
    alpha: float = 4.0,
    a: float = 0.8,
    b: float = 2.5,
    birth_days: int = 90,
) -> pd.DataFrame:
    """Purchase days of customers who follow BG/NBD (rates in purchases per week), born over ``birth_days``.

    Columns: ``customer`` (int), ``day`` (date). Purchases on the same day merge into one, as prepare does.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, customers) / 7  # per day
    dropout = rng.beta(a, b, customers)
    birth = rng.integers(0, birth_days, customers)
    rows: list[tuple[int, int]] = []
    for c in range(customers):
        day = float(birth[c])
        rows.append((c, int(day)))
        while True:
            day += rng.exponential(1 / rate[c]) if rate[c] > 0 else days
            if day >= days:
                break
            rows.append((c, int(day)))
            if rng.random() < dropout[c]:
                break
    frame = pd.DataFrame(rows, columns=["customer", "offset"]).drop_duplicates()
    frame["day"] = pd.Timestamp(start) + pd.to_timedelta(frame["offset"], unit="D")
    return frame.drop(columns="offset").reset_index(drop=True)


def fixed_price_feed(customers: int = 1500, seed: int = 11) -> pd.DataFrame:
    """An app store: every purchase costs 9.99. Integer customer ids, ISO dates. Columns user_id, purchased_on,
    price."""
    purchases = bgnbd_purchases(customers, dt.date(2022, 1, 1), 365, seed, r=0.6, alpha=6.0)
    return pd.DataFrame(
        {
            "user_id": purchases["customer"].to_numpy() + 100_000,
            "purchased_on": purchases["day"].dt.strftime("%Y-%m-%d"),
            "price": 9.99,
        }
    )


def subscription_feed(
    cohorts: int = 12, per_cohort: int = 150, alpha: float = 1.2, beta: float = 6.0, seed: int = 7
) -> tuple[pd.DataFrame, dt.date]:
    """Monthly charges of a subscription business: a cohort starts each month of 2022, each subscriber pays
    the plan's constant price on the same day every month until they cancel; the cancellation probability of
    a subscriber is constant over time and varies across subscribers as Beta(alpha, beta) (sBG). Observed
    until the returned date. Columns: account (int), charged_at (ISO timestamp), amount."""
    rng = np.random.default_rng(seed)
    end = dt.date(2023, 12, 31)
    rows: list[tuple[int, str, float]] = []
    account = 0
    for cohort in range(cohorts):
        for _ in range(per_cohort):
            account += 1
            start = dt.date(2022, 1 + cohort, int(rng.integers(1, 29)))
            price = 29.0 if rng.random() < 0.7 else 99.0
            churn = rng.beta(alpha, beta)
            month = 0
            while True:
                year, month_of_year = divmod(start.month - 1 + month, 12)
                charge = dt.date(start.year + year, month_of_year + 1, start.day)
                if charge > end:
                    break
                rows.append((account, f"{charge.isoformat()}T06:00:00", price))
                if rng.random() < churn:
                    break
                month += 1
    return pd.DataFrame(rows, columns=["account", "charged_at", "amount"]), end
