"""A generated discrete-opportunity feed (one purchase opportunity a month) with a known BG/BB law.

Each customer makes a first purchase in an acquisition month, draws p ~ Beta(ALPHA, BETA) and
theta ~ Beta(GAMMA, DELTA), and at each later month first stays active with probability 1 - theta
(once inactive, forever) and, if active, buys with probability p, on a random day of the month.
Amounts: 10, 25 or 50 at random, times the customer's own spend level (Gamma with shape SPEND_SHAPE and
mean 1, drawn from a second generator so that the purchases are those of the feed without it): spend varies
across customers, so Gamma-Gamma (not its pooled-mean fallback) is fitted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "BETA",
    "DELTA",
    "GAMMA",
    "OBSERVATION_END",
    "SPEND_SHAPE",
    "as_events",
    "as_invoice_lines",
    "discrete_feed",
    "write_discrete_feed",
]

ALPHA, BETA, GAMMA, DELTA = 1.2, 0.75, 0.66, 2.8
OBSERVATION_END = dt.date(2023, 12, 31)
SPEND_SHAPE = 4.0
COHORTS = (dt.date(2022, 1, 1), dt.date(2022, 4, 1))


def _month(start: dt.date, k: int) -> dt.date:
    year, month = divmod(start.month - 1 + k, 12)
    return dt.date(start.year + year, month + 1, 1)


def discrete_feed(per_cohort: int = 2500, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    levels = np.random.default_rng(seed + 1000).gamma(SPEND_SHAPE, 1 / SPEND_SHAPE, (len(COHORTS), per_cohort))
    rows: list[tuple[str, str, float]] = []
    for c, start in enumerate(COHORTS):
        p = rng.beta(ALPHA, BETA, per_cohort)
        theta = rng.beta(GAMMA, DELTA, per_cohort)
        months = (OBSERVATION_END.year - start.year) * 12 + OBSERVATION_END.month - start.month
        for i in range(per_cohort):
            customer = f"d{c}-{i:05d}"
            level = float(levels[c, i])
            rows.append((customer, (start + dt.timedelta(days=int(rng.integers(0, 28)))).isoformat(), 25.0 * level))
            for k in range(1, months + 1):
                if rng.random() < theta[i]:
                    break
                if rng.random() < p[i]:
                    day = _month(start, k) + dt.timedelta(days=int(rng.integers(0, 28)))
                    rows.append((customer, day.isoformat(), float(rng.choice([10.0, 25.0, 50.0])) * level))
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def write_discrete_feed(path: Path, **kwargs: int) -> Path:
    discrete_feed(**kwargs).to_csv(path, index=False)
    return path


def as_invoice_lines(feed: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """``feed`` as invoice lines: ``quantity`` (1, 2 or 4) x ``unit_price`` (amount / quantity: a power of two,
    so that their product is the amount exactly), no amount column."""
    quantity = np.random.default_rng(seed).choice([1, 2, 4], len(feed))
    lines = feed.drop(columns="amount")
    lines["quantity"] = quantity
    lines["unit_price"] = feed["amount"].to_numpy() / quantity
    assert (lines["quantity"] * lines["unit_price"] == feed["amount"]).all()
    return lines


def as_events(feed: pd.DataFrame) -> pd.DataFrame:
    """``feed`` as an event feed: customer and date, no money."""
    return feed.drop(columns="amount")
