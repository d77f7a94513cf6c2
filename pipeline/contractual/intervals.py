"""The billing feed's own billing interval against ``business.billing_period``.

The sBG counts renewals and churn per configured billing period, so a feed billed on another one trains a model
whose numbers mean nothing, and can still pass the gate (a monthly feed run with ``billing_period: year``:
survival MAPE 0.07, churn AUC 0.91, registered). Prepare measures how often the feed's subscribers are
actually charged (:func:`charge_interval`, one aggregate over the charges in DuckDB) and
:func:`billing_period_advice` says when that disagrees with the configured period, naming the period the
charges look like. Advice, not a refusal, as the other advice on the data (:mod:`pipeline.advice`): the run
is recorded with it (summary, report, ``advice.N`` tags), and the data scientist decides.

The median says nothing of a minority on another plan: a Stripe-style export of 80% monthly and 20% annual
subscribers run with ``billing_period: month`` (failed charges dropped) has a median of 30.5 days, and trains,
passes the gate and registers a pooled sBG of alpha 0.60 / beta 1.82 against 1.08 / 7.07 on its monthly subscribers
alone (their mean DERL 45.2 against 28.2), every annual subscriber counted as churned at its first month. So the
same query also measures each subscriber's own interval (the median of their intervals between charge days) and counts
those charged :data:`MISMATCH_FACTOR` times the period apart or more, by the period their interval fits
(:class:`IntervalGroup`); :func:`mixed_plans_advice` names them when they are :data:`MIXED_PLANS_SHARE` of the
subscribers or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from pipeline.advice import MIN_CUSTOMERS
from pipeline.config.business import BILLING_PERIOD_DAYS

__all__ = [
    "MISMATCH_FACTOR",
    "MIXED_PLANS_SHARE",
    "SAMPLE_CHARGES",
    "ChargeInterval",
    "IntervalGroup",
    "billing_period_advice",
    "charge_interval",
    "charge_interval_sql",
    "mixed_plans_advice",
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


MIXED_PLANS_SHARE = 0.02
"""The share of the subscribers charged on two days or more, charged :data:`MISMATCH_FACTOR` times the billing
period apart or more, from which :func:`mixed_plans_advice` speaks: the share at which the pooled sBG is
measurably biased. Measured on the trial's generated Stripe-style exports (3,000 subscribers on monthly and annual
plans, 2,250 to 2,620 of them charged on two days or more; failed charges filtered out; 4 seeds a mix) run with
``billing_period: month``: the share, and the mean DERL of the scored monthly subscribers from the run against
a run on the monthly subscribers alone:

======== ============= ==============
annual   share         DERL bias
======== ============= ==============
0%       0.4 to 0.5%   0
1%       0.7 to 1.3%   +3 to +9%
2%       1.0 to 1.6%   +7 to +15%
5%       2.5 to 3.0%   +16 to +35%
10%      4.8 to 5.4%   +29 to +45%
20%      10.1 to 11.8% +56 to +71%
======== ============= ==============

A subscriber counts once renewed: an annual one charged once is not seen, so the share is about half the annual
one. The DERL of the run on the monthly subscribers alone varies by 9-10% from seed to seed (its standard
deviation over its mean), so up to 2% annual the bias is about the fit's own spread, and from 5% it is twice that
or more: 2% sits between the shares of those two mixes (with failed charges left in, or only paid ones kept: 0.9
to 1.7% and 2.5 to 3.1%), and three times above the exports with no annual plan (0.4 to 0.7%: customers whose id
is upper-cased on every other charge, split in two, each charged every two months; a refunded charge left out).

Only the longer side counts: a subscriber charged more often than the period (a weekly plan in a monthly run, a
failed charge retried three days later) renews in every period with a charge, as the sBG counts it; on the same
exports with failed charges left in, retries put 1.1 to 1.6% of a monthly-only feed there."""


@dataclass(frozen=True)
class IntervalGroup:
    """Subscribers charged :data:`MISMATCH_FACTOR` times the billing period apart or more whose own interval (the
    median of their intervals between charge days) fits the billing period ``fits`` (within that factor; None: no
    period fits it): how many, and the median of their own intervals in days."""

    fits: str | None
    subscribers: int
    median_days: float

    def as_dict(self) -> dict[str, object]:
        return {"fits": self.fits, "subscribers": self.subscribers, "median_days": self.median_days}


@dataclass(frozen=True)
class ChargeInterval:
    """The feed's typical interval between a subscriber's consecutive charges: the median, over the
    subscribers charged on two days or more, of their mean interval in days (first to last charge, over the
    distinct charge days less one: the mean of their consecutive intervals); and those of them charged
    :data:`MISMATCH_FACTOR` times the configured billing period apart or more (``longer``: by the period their
    own interval fits, the largest group first)."""

    median_days: float
    subscribers: int
    sampled: bool = False
    """Whether ``subscribers`` are a sample of them (:data:`SAMPLE_CHARGES`)."""
    longer: tuple[IntervalGroup, ...] = ()

    @property
    def longer_share(self) -> float:
        """The share of the subscribers in ``longer``."""
        return sum(group.subscribers for group in self.longer) / self.subscribers

    def as_dict(self) -> dict[str, object]:
        return {
            "median_days": self.median_days,
            "subscribers": self.subscribers,
            "sampled": self.sampled,
            "longer": [group.as_dict() for group in self.longer],
            "longer_share": self.longer_share,
        }


SAMPLE_CHARGES = 2_000_000
"""Above this many charges the interval is measured on the subscribers of a sample (whole subscribers, by the hash
of their id) of about this many charges: counting a subscriber's distinct charge days took 9-10 s on 20M charges of
1M subscribers (two threads), a sample of a tenth of them 1.0-1.7 s, and the median of 100,000 subscribers'
intervals is the advice's number to its first decimal."""


def _fits_sql(days: str) -> str:
    """The billing period whose length is within :data:`MISMATCH_FACTOR` of ``days`` (NULL: none)."""
    cases = " ".join(
        f"WHEN {days} > {length / MISMATCH_FACTOR!r} AND {days} < {length * MISMATCH_FACTOR!r} THEN '{name}'"
        for name, length in BILLING_PERIOD_DAYS.items()
    )
    return f"CASE {cases} END"


def charge_interval_sql(billing_period: str, every: int = 1) -> str:
    """From the ``charges`` table (cid, day, value), per subscriber charged on two days or more: the mean interval
    (the days from the first to the last charge over the distinct charge days less one; two invoice lines on one
    day, a plan and an add-on, are one charge) and their own interval (the median of their intervals between
    distinct charge days). Its rows: (NULL, true, the median of the mean intervals, the subscribers), then per
    billing period fitting their own interval (NULL: none) of those whose own interval is :data:`MISMATCH_FACTOR`
    times ``billing_period`` or more, (the period, false, the median of their own intervals, how many).
    ``every``: the subscribers whose id hashes to 0 modulo ``every`` (all of them by default)."""
    sample = f"WHERE hash(cid) % {every} = 0" if every > 1 else ""
    longer = BILLING_PERIOD_DAYS[billing_period] * MISMATCH_FACTOR
    return f"""
        WITH per AS (
            SELECT CAST(date_diff('day', min(day), max(day)) AS DOUBLE) / (count(*) - 1) AS mean_days,
                   median(gap) AS own_days
            FROM (
                SELECT cid, day, date_diff('day', lag(day) OVER (PARTITION BY cid ORDER BY day), day) AS gap
                FROM (SELECT DISTINCT cid, day FROM charges {sample})
            )
            GROUP BY cid HAVING count(*) > 1
        )
        SELECT NULL AS fits, true AS total, median(mean_days), count(*) FROM per
        UNION ALL
        SELECT {_fits_sql("own_days")} AS fits, false, median(own_days), count(*)
        FROM per WHERE own_days >= {longer!r} GROUP BY fits
    """


def charge_interval(con: duckdb.DuckDBPyConnection, billing_period: str) -> ChargeInterval | None:
    """The :class:`ChargeInterval` of the ``charges`` table (of a sample of its subscribers above
    :data:`SAMPLE_CHARGES` charges) against ``billing_period``; None with fewer than
    :data:`~pipeline.advice.MIN_CUSTOMERS` subscribers charged on two days (too few to say)."""
    (charges,) = con.sql("SELECT count(*) FROM charges").fetchall()[0]
    every = max(1, -(-int(charges) // SAMPLE_CHARGES))
    rows = con.sql(charge_interval_sql(billing_period, every)).fetchall()
    ((_, _, median, subscribers),) = [row for row in rows if row[1]]
    if median is None or subscribers < MIN_CUSTOMERS:
        return None
    groups = [IntervalGroup(fits, int(n), float(days)) for fits, total, days, n in rows if not total]
    longer = tuple(sorted(groups, key=lambda group: (-group.subscribers, group.median_days)))
    return ChargeInterval(float(median), int(subscribers), sampled=every > 1, longer=longer)


def _days(days: float) -> str:
    return f"{round(days, 1):g}"


def billing_period_advice(interval: ChargeInterval | None, billing_period: str) -> tuple[str, ...]:
    """The advice when the feed's median interval is :data:`MISMATCH_FACTOR` times the billing period's length
    or more, or that fraction of it or less; on the billing period, the :func:`mixed_plans_advice` (a minority
    on a longer plan: the period's advice comes first, as most subscribers are then on another one); none without
    a measure."""
    if interval is None:
        return ()
    ratios = {name: interval.median_days / days for name, days in BILLING_PERIOD_DAYS.items()}
    if abs(math.log(ratios[billing_period])) < math.log(MISMATCH_FACTOR):
        return mixed_plans_advice(interval, billing_period)
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


def _groups(groups: tuple[IntervalGroup, ...]) -> str:
    return ", ".join(f"{group.subscribers:,} every {_days(group.median_days)} days" for group in groups)


def mixed_plans_advice(interval: ChargeInterval | None, billing_period: str) -> tuple[str, ...]:
    """The advice when :data:`MIXED_PLANS_SHARE` of the subscribers or more are charged :data:`MISMATCH_FACTOR`
    times the billing period apart or more (measured against ``billing_period``): how many, how often, and to
    train each plan on its own (none without a measure)."""
    if interval is None or not interval.longer or interval.longer_share < MIXED_PLANS_SHARE:
        return ()
    longer = sum(group.subscribers for group in interval.longer)
    return (
        f"advice: {longer:,} of {interval.subscribers:,} {'sampled ' if interval.sampled else ''}subscribers "
        f"charged on two days or more ({interval.longer_share:.1%}) are charged at least {MISMATCH_FACTOR:g} times "
        f"business.billing_period apart ({billing_period}: {BILLING_PERIOD_DAYS[billing_period]:g} days): "
        f"{_groups(interval.longer)} (the median of each one's intervals; subscribers charged once are not "
        f"counted); the feed mixes plans: the sBG counts each of them as churned at its first {billing_period} "
        "without a charge, so the pooled fit is biased and they are not scored; train each plan on its own, with "
        "its billing_period: data.source: sql and a data.query keeping one plan's subscribers whole, with every one "
        "of their charges (a WHERE on a plan column, or, without one, on the subscribers who never paid another "
        "plan's price; invoice lines go whole, by subscriber, not line by line): see 'billing exports' in "
        "docs/how-to/business-types.md",
    )
