"""A generated subscription billing feed with a known churn law, for the contractual job's tests.

Monthly cohorts acquire subscribers on random days; each subscriber draws a churn probability
theta ~ Beta(ALPHA, BETA) (the sBG's law) and a plan with a constant monthly price, is charged on the
same day of every month from acquisition until they leave, and the charges stop at the observation end.
A few dirty rows (no id, an unreadable date, a date after the end) must be quarantined, not counted; a
copy of the first charge is a duplicate only under ``prepare.duplicates: quarantine`` (the feed has no
order id, so by default it is a second real charge).

:func:`train_subscriptions` and :func:`prepared_subscriptions` run the contractual job and its prepare on a
configured feed in an engine of their own, closed when they return.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.contractual.workflow import ContractualResult, train_contractual
from pipeline.engines import open_engine
from tests.feeds import duckdb_engine, duckdb_relation

__all__ = [
    "ALPHA",
    "BETA",
    "CALIBRATION_END",
    "DIRTY_ROWS",
    "OBSERVATION_END",
    "PLANS",
    "prepared_subscriptions",
    "subscription_feed",
    "subscriptions_table",
    "train_subscriptions",
    "write_subscription_feed",
]

ALPHA = 1.2
BETA = 4.0
PLANS = {"basic": 10.0, "pro": 30.0}
FIRST_COHORT = dt.date(2022, 1, 1)
CALIBRATION_END = dt.date(2023, 12, 31)
OBSERVATION_END = dt.date(2024, 6, 30)
DIRTY_ROWS = 4


def _add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (the 29th-31st clipped to the month's last day)."""
    year, month = divmod(day.month - 1 + months, 12)
    target = dt.date(day.year + year, month + 1, 1)
    last = (dt.date(target.year + (target.month == 12), target.month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return target.replace(day=min(day.day, last))


def subscription_feed(
    per_cohort: int = 400,
    cohorts: int = 24,
    seed: int = 7,
    alpha: float = ALPHA,
    beta: float = BETA,
    months_per_charge: int = 1,
) -> pd.DataFrame:
    """Charges (customer_id, charge_date, amount, plan), sorted by customer and date, plus the dirty rows.
    ``months_per_charge``: 12 bills every subscriber once a year (cohorts are still monthly)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, float, str]] = []
    names = list(PLANS)
    for c in range(cohorts):
        start_month = _add_months(FIRST_COHORT, c)
        days = rng.integers(0, 28, per_cohort)
        theta = rng.beta(alpha, beta, per_cohort)
        lifetimes = rng.geometric(theta)  # periods paid: P(T = t) = theta (1 - theta)^(t - 1)
        plans = rng.integers(0, len(names), per_cohort)
        for i in range(per_cohort):
            customer = f"c{c:02d}-{i:04d}"
            start = start_month + dt.timedelta(days=int(days[i]))
            plan = names[plans[i]]
            for k in range(int(lifetimes[i])):
                charge = _add_months(start, k * months_per_charge)
                if charge > OBSERVATION_END:
                    break
                rows.append((customer, charge.isoformat(), PLANS[plan], plan))
    feed = pd.DataFrame(rows, columns=["customer_id", "charge_date", "amount", "plan"])
    dirty = pd.DataFrame(
        [
            ("", "2023-01-05", 10.0, "basic"),  # missing_customer_id
            ("c00-0000", "not a date", 10.0, "basic"),  # invalid_timestamp
            # identical to the first charge: a duplicate only under prepare.duplicates: quarantine (no order id)
            (feed.customer_id.iloc[0], feed.charge_date.iloc[0], feed.amount.iloc[0], feed.plan.iloc[0]),
            ("c00-0001", "2031-01-01", 10.0, "basic"),  # after_observation_end
        ],
        columns=feed.columns,
    )
    return pd.concat([feed, dirty], ignore_index=True)


def write_subscription_feed(path: Path, **kwargs: float) -> Path:
    subscription_feed(**kwargs).to_csv(path, index=False)  # type: ignore[arg-type]
    return path


def subscriptions_table(feed: pd.DataFrame) -> pd.DataFrame:
    """The subscriptions (customer_id, start, end, plan, price) of a :func:`subscription_feed`'s clean charges:
    one per subscriber, ending on the anniversary it was not renewed on (empty when that is after the
    observation end: the subscription still runs), plus dirty rows that must be quarantined."""
    clean = feed.iloc[:-DIRTY_ROWS]
    per = clean.groupby("customer_id", sort=True).agg(
        start=("charge_date", "min"), charges=("charge_date", "size"), plan=("plan", "first"), price=("amount", "first")
    )
    ends = [_add_months(dt.date.fromisoformat(s), int(n)) for s, n in zip(per["start"], per["charges"], strict=True)]
    table = pd.DataFrame(
        {
            "customer_id": per.index,
            "start": per["start"].to_numpy(),
            "end": [e.isoformat() if e <= OBSERVATION_END else None for e in ends],
            "plan": per["plan"].to_numpy(),
            "price": per["price"].to_numpy(),
        }
    )
    first = table.iloc[0]
    dirty = pd.DataFrame(
        [
            ("", "2023-01-05", None, "basic", 10.0),  # missing_customer_id
            ("x-1", "not a date", None, "basic", 10.0),  # invalid_timestamp
            # identical to the first subscription: a duplicate under prepare.duplicates: quarantine, otherwise
            # an overlapping_subscription
            (first.customer_id, first.start, first.end, first.plan, first.price),
            ("x-2", "2031-01-01", None, "basic", 10.0),  # after_observation_end
            ("x-3", "2023-01-05", "soon", "basic", 10.0),  # invalid_end
            ("x-4", "2023-01-05", "2023-01-05", "basic", 10.0),  # end_not_after_start
            ("x-5", "2023-01-05", None, "pro", -30.0),  # negative_price
        ],
        columns=table.columns,
    )
    return pd.concat([table, dirty], ignore_index=True)


def train_subscriptions(config: Config) -> ContractualResult:
    """The contractual job (:func:`~pipeline.contractual.workflow.train_contractual`) on ``config``'s input, in
    the configured engine, closed when it returns or raises."""
    engine = open_engine(config.engine)
    try:
        return train_contractual(config, engine, engine.open(config.data))
    finally:
        engine.close()


def prepared_subscriptions(config: Config, as_of: dt.date | None = None) -> Subscribers:
    """The contractual prepare (:func:`~pipeline.contractual.subscriptions.prepare_contract_feed`) of ``config``'s
    input as of ``as_of``, its errors naming the input, in the configured engine (DuckDB), closed when it returns
    or raises."""
    engine = duckdb_engine(config.engine)
    try:
        source = engine.open(config.data)
        return prepare_contract_feed(
            engine.connection, duckdb_relation(source), config, as_of, source=source.description
        )
    finally:
        engine.close()
