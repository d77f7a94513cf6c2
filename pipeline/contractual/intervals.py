"""The billing feed's own billing interval against ``business.billing_period``.

The sBG counts renewals and churn per configured billing period, so a feed billed on another one trains a model
whose numbers mean nothing, and can still pass the gate (a monthly feed run with ``billing_period: year``:
survival MAPE 0.07, churn AUC 0.91, registered). Prepare measures how often the feed's subscribers are
actually charged (:func:`charge_interval`, one aggregate over the charges in DuckDB) and
:func:`billing_period_advice` says when that disagrees with the configured period, naming the period the
charges look like. Advice, not a refusal, as the other advice on the data (:mod:`pipeline.advice`): the run
is recorded with it (summary, report, ``advice.N`` tags), and the data scientist decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from pipeline.advice import MIN_CUSTOMERS
from pipeline.config.business import BILLING_PERIOD_DAYS

__all__ = [
    "MISMATCH_FACTOR",
    "SAMPLE_CHARGES",
    "ChargeInterval",
    "billing_period_advice",
    "charge_interval",
    "charge_interval_sql",
]

MISMATCH_FACTOR = 2.0
"""The median interval disagrees with the billing period when it is at most 1/2 or at least 2 times its length.

On the right period the ratio sits near 1: months run 28 to 31 days, a retried payment lands a few days
late and the odd skipped period lengthens a subscriber's mean interval a little (a generated monthly feed with
10% of charges 1 to 3 days late: 1.0; yearly: 1.0). On a wrong one it is far off: the periods are 4.35 (week,
month) and 12 (month, year) times apart, so the ratio is at most 1/4.35 or at least 4.35. A factor of 2 is
about halfway between 1 and 4.35 on a log scale (their geometric mean is 2.09), far from both. It also keeps
the windows of the three periods apart (at most one period fits a median), and a feed that fits none (charged
every two weeks or every quarter) gets the advice too: at twice the period or more, every period without a
charge counts as a churn."""


@dataclass(frozen=True)
class ChargeInterval:
    """The feed's typical interval between a subscriber's consecutive charges: the median, over the
    subscribers charged on two days or more, of their mean interval in days (first to last charge, over the
    distinct charge days less one: the mean of their consecutive intervals)."""

    median_days: float
    subscribers: int
    sampled: bool = False
    """Whether ``subscribers`` are a sample of them (:data:`SAMPLE_CHARGES`)."""

    def as_dict(self) -> dict[str, object]:
        return {"median_days": self.median_days, "subscribers": self.subscribers, "sampled": self.sampled}


SAMPLE_CHARGES = 2_000_000
"""Above this many charges the interval is measured on the subscribers of a sample (whole subscribers, by the hash
of their id) of about this many charges: counting a subscriber's distinct charge days took 9-10 s on 20M charges of
1M subscribers (two threads), a sample of a tenth of them 1.0-1.7 s, and the median of 100,000 subscribers'
intervals is the advice's number to its first decimal."""


def charge_interval_sql(every: int = 1) -> str:
    """The median interval and the subscribers it is measured on, from the ``charges`` table (cid, day, value):
    per subscriber, the days from the first to the last charge over the distinct charge days less one (two invoice
    lines on one day, a plan and an add-on, are one charge). ``every``: the subscribers whose id hashes to 0
    modulo ``every`` (all of them by default)."""
    sample = f"WHERE hash(cid) % {every} = 0" if every > 1 else ""
    return f"""
        SELECT median(CAST(date_diff('day', first_day, last_day) AS DOUBLE) / (days - 1)), count(*)
        FROM (
            SELECT min(day) AS first_day, max(day) AS last_day, count(*) AS days
            FROM (SELECT DISTINCT cid, day FROM charges {sample}) GROUP BY cid
        )
        WHERE days > 1
    """


def charge_interval(con: duckdb.DuckDBPyConnection) -> ChargeInterval | None:
    """The :class:`ChargeInterval` of the ``charges`` table (of a sample of its subscribers above
    :data:`SAMPLE_CHARGES` charges); None with fewer than :data:`~pipeline.advice.MIN_CUSTOMERS` subscribers charged
    on two days (too few to say)."""
    (charges,) = con.sql("SELECT count(*) FROM charges").fetchall()[0]
    every = max(1, -(-int(charges) // SAMPLE_CHARGES))
    median, subscribers = con.sql(charge_interval_sql(every)).fetchall()[0]
    if median is None or subscribers < MIN_CUSTOMERS:
        return None
    return ChargeInterval(float(median), int(subscribers), sampled=every > 1)


def _days(days: float) -> str:
    return f"{round(days, 1):g}"


def billing_period_advice(interval: ChargeInterval | None, billing_period: str) -> tuple[str, ...]:
    """The advice when the feed's median interval is :data:`MISMATCH_FACTOR` times the billing period's length
    or more, or that fraction of it or less (none without a measure)."""
    if interval is None:
        return ()
    ratios = {name: interval.median_days / days for name, days in BILLING_PERIOD_DAYS.items()}
    if abs(math.log(ratios[billing_period])) < math.log(MISMATCH_FACTOR):
        return ()
    fits = [name for name, ratio in ratios.items() if abs(math.log(ratio)) < math.log(MISMATCH_FACTOR)]
    remedy = (
        f"set business.billing_period: {fits[0]}"
        if fits
        else "no billing period (a week, a month or a year) fits it: this feed may not suit the sBG"
    )
    return (
        f"advice: charges come every {_days(interval.median_days)} days (median over {interval.subscribers:,} "
        f"{'sampled ' if interval.sampled else ''}subscribers charged on two days or more) but "
        f"business.billing_period is {billing_period} "
        f"({BILLING_PERIOD_DAYS[billing_period]:g} days): renewals and churn are counted per "
        f"{billing_period}, so the sBG's numbers mean nothing; {remedy}",
    )
