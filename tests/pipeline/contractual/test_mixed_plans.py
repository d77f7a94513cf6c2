"""A billing feed mixing plans: yearly subscribers in a monthly run are named in the run's advice (how many, how
often, what to do), in its summary, report and MLflow tags and metrics; a monthly-only feed, and one with too few
yearly subscribers to bias the fit, are not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import pytest

from pipeline.config import Config, parse_config
from pipeline.config.business import BILLING_PERIOD_DAYS
from pipeline.contractual.intervals import (
    MIXED_PLANS_SHARE,
    ChargeInterval,
    IntervalGroup,
    billing_period_advice,
    mixed_plans_advice,
)
from pipeline.contractual.report import report_html, summary_dict
from pipeline.contractual.workflow import ContractualResult
from pipeline.recorder import store
from pipeline.recorder.contractual import record_contractual
from tests.subscription_feed import DIRTY_ROWS, prepared_subscriptions, subscription_feed, train_subscriptions

MIXED = (
    "advice: 340 of 2,202 subscribers charged on two days or more (15.4%) are charged at least 2 times "
    "business.billing_period apart (month: 30.4375 days): 340 every 365 days (the median of each one's intervals; "
    "subscribers charged once are not counted); the feed mixes plans: the sBG counts each of them as churned at its "
    "first month without a charge, so the pooled fit is biased and they are not scored; train each plan on its own, "
    "with its billing_period: data.source: sql and a data.query keeping one plan's subscribers whole, with every "
    "one of their charges (a WHERE on a plan column, or, without one, on the subscribers who never paid another "
    "plan's price; invoice lines go whole, by subscriber, not line by line): see 'billing exports' in "
    "docs/how-to/business-types.md"
)


def _config(path: Path, period: str = "month") -> Config:
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date"}},
            "prepare": {"calibration_end": "2023-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "contractual", "billing_period": period},
        }
    )


def _monthly() -> pd.DataFrame:
    """The monthly feed's clean charges: 2,400 subscribers, 1,862 of them charged on two days or more."""
    return subscription_feed(per_cohort=100, cohorts=24).iloc[:-DIRTY_ROWS]


def _yearly() -> pd.DataFrame:
    """600 subscribers charged once a year (ids starting with y), acquired over the same two years: those of the
    last six months are charged once by the observation end."""
    yearly = subscription_feed(per_cohort=25, cohorts=24, seed=11, months_per_charge=12).iloc[:-DIRTY_ROWS]
    return yearly.assign(customer_id="y" + yearly["customer_id"])


def _with(yearly: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    return pd.concat([_monthly(), yearly[yearly["customer_id"].isin(ids)]], ignore_index=True)


def _interval(charges: pd.DataFrame, folder: Path, period: str = "month") -> ChargeInterval | None:
    charges.to_csv(folder / "feed.csv", index=False)
    return prepared_subscriptions(_config(folder / "feed.csv", period)).charge_interval


def _fits(days: float) -> str | None:
    return next((name for name, length in BILLING_PERIOD_DAYS.items() if length / 2 < days < length * 2), None)


def _by_hand(charges: pd.DataFrame, period: str, every: int = 1) -> tuple[int, tuple[IntervalGroup, ...]]:
    """In pandas: the subscribers charged on two days or more, and those whose own interval (the median of the days
    between their distinct charge days) is twice the period or more, by the period it fits, the largest group
    first; ``every`` > 1: of the subscribers drawn by DuckDB's hash of the id, 0 modulo ``every``."""
    ids = pd.DataFrame({"cid": charges["customer_id"].astype(str).unique()})
    with duckdb.connect() as con:
        drawn = set(con.from_df(ids).filter(f"hash(cid) % {every} = 0").df()["cid"])
    mine = charges[charges["customer_id"].isin(drawn)].assign(day=lambda f: pd.to_datetime(f["charge_date"]))
    days = mine[["customer_id", "day"]].drop_duplicates().sort_values(["customer_id", "day"])
    gaps = days.groupby("customer_id")["day"].diff().dt.days
    own = gaps.groupby(days["customer_id"]).median().dropna()
    longer = own[own >= 2 * BILLING_PERIOD_DAYS[period]]
    groups = [
        IntervalGroup(fits or None, len(group), float(group.median()))
        for fits, group in longer.groupby(longer.map(_fits).fillna(""))
    ]
    return len(own), tuple(sorted(groups, key=lambda g: (-g.subscribers, g.median_days)))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The monthly feed and the 600 yearly subscribers: 20% of the 3,000 subscribers on a yearly plan."""
    path = tmp_path_factory.mktemp("mixed") / "mixed.csv"
    pd.concat([_monthly(), _yearly()], ignore_index=True).to_csv(path, index=False)
    return path


def test_the_yearly_subscribers_are_counted_by_their_own_interval(mixed: Path, tmp_path: Path) -> None:
    """20% yearly subscribers: the 340 charged on two days or more (of 600), every 365 days, 15.4% of the
    subscribers charged twice; the median interval is still the monthly 30.5 days."""
    charges = pd.read_csv(mixed)
    interval = _interval(charges, tmp_path)
    assert interval == ChargeInterval(30.5, 2202, longer=(IntervalGroup("year", 340, 365.0),))
    assert (interval.subscribers, interval.longer) == _by_hand(charges, "month")
    assert interval.longer_share == pytest.approx(340 / 2202, abs=1e-15)
    assert billing_period_advice(interval, "month") == (MIXED,)


def test_a_monthly_feed_has_no_longer_interval_and_no_advice(tmp_path: Path) -> None:
    interval = _interval(_monthly(), tmp_path)
    assert interval == ChargeInterval(30.5, 1862)
    assert interval.longer_share == 0.0
    assert billing_period_advice(interval, "month") == ()


def test_two_percent_yearly_subscribers_are_not_advised(tmp_path: Path) -> None:
    """One yearly subscriber in twelve: 50 of 2,450 subscribers (2.0%), 30 of the 1,892 charged twice (1.6%,
    below MIXED_PLANS_SHARE: those charged once so far are not seen, as in the trial's 2%-annual exports, 0.9 to
    1.7%, whose pooled fit's bias was within its own spread)."""
    yearly = _yearly()
    charges = _with(yearly, sorted(yearly["customer_id"].unique())[::12])
    assert charges["customer_id"].nunique() == 2450
    interval = _interval(charges, tmp_path)
    assert interval == ChargeInterval(30.5, 1892, longer=(IntervalGroup("year", 30, 365.0),))
    assert (interval.subscribers, interval.longer) == _by_hand(charges, "month")
    assert billing_period_advice(interval, "month") == ()


@pytest.mark.parametrize(("renewed", "advised"), [(38, True), (37, False)])
def test_the_advice_starts_at_two_percent_of_the_subscribers_charged_twice(
    tmp_path: Path, renewed: int, advised: bool
) -> None:
    """38 yearly subscribers charged twice among 1,862 monthly ones are 2.0% of 1,900: advised; 37 of 1,899
    (1.95%) are not."""
    yearly = _yearly()
    twice = yearly.groupby("customer_id")["charge_date"].nunique()
    charges = _with(yearly, sorted(twice[twice > 1].index)[:renewed])
    interval = _interval(charges, tmp_path)
    assert interval == ChargeInterval(30.5, 1862 + renewed, longer=(IntervalGroup("year", renewed, 365.0),))
    assert (interval.longer_share >= MIXED_PLANS_SHARE) is advised
    advice = MIXED.replace("340 of 2,202", f"{renewed} of {1862 + renewed:,}").replace("340 every", f"{renewed} every")
    expected = (advice.replace("(15.4%)", "(2.0%)"),) if advised else ()
    assert billing_period_advice(interval, "month") == expected


def test_a_where_on_the_plan_column_keeps_one_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the advice says to do, on the mixed feed as billing.csv with a plan column: the 2,400 monthly
    subscribers, no advice."""
    charges = pd.concat([_monthly().assign(plan="monthly"), _yearly().assign(plan="yearly")], ignore_index=True)
    charges.to_csv(tmp_path / "billing.csv", index=False)
    monkeypatch.chdir(tmp_path)
    query = "SELECT * FROM read_csv('billing.csv', all_varchar = true) WHERE plan = 'monthly'"
    config = parse_config(
        {
            "data": {"source": "sql", "query": query, "columns": {"timestamp": "charge_date"}},
            "prepare": {"calibration_end": "2023-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "contractual", "billing_period": "month"},
        }
    )
    subscribers = prepared_subscriptions(config)
    assert len(subscribers.full) == 2400
    assert subscribers.charge_interval == ChargeInterval(30.5, 1862)
    assert billing_period_advice(subscribers.charge_interval, "month") == ()


def test_a_large_mixed_feed_is_measured_on_a_sample(
    mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above SAMPLE_CHARGES the drawn subscribers' own intervals, by hand; the advice names the sample."""
    from pipeline.contractual import intervals

    monkeypatch.setattr(intervals, "SAMPLE_CHARGES", 10_000)
    charges = pd.read_csv(mixed)
    every = -(-len(charges) // 10_000)
    assert every == 2
    sampled = _interval(charges, tmp_path)
    assert sampled is not None
    assert (sampled.subscribers, sampled.longer) == _by_hand(charges, "month", every)
    assert sampled.sampled
    assert 2202 / 2 - 150 < sampled.subscribers < 2202 / 2 + 150
    (group,) = sampled.longer
    assert (group.fits, group.median_days) == ("year", 365.0)
    assert 340 / 2 - 50 < group.subscribers < 340 / 2 + 50
    (line,) = billing_period_advice(sampled, "month")
    assert line.startswith(f"advice: {group.subscribers} of {sampled.subscribers:,} sampled subscribers charged")


def test_a_monthly_feed_run_with_week_is_told_the_period_not_the_mix(tmp_path: Path) -> None:
    """Every subscriber is charged more than twice a week apart, in the month group, but the median's advice
    comes alone: most subscribers are on another period."""
    interval = _interval(_monthly(), tmp_path, "week")
    assert interval == ChargeInterval(30.5, 1862, longer=(IntervalGroup("month", 1862, 31.0),))
    assert (interval.subscribers, interval.longer) == _by_hand(_monthly(), "week")
    (line,) = billing_period_advice(interval, "week")
    assert line.startswith("advice: charges come every 30.5 days")
    assert mixed_plans_advice(interval, "week")[0].startswith("advice: 1,862 of 1,862 subscribers")


def test_the_advice_names_every_group() -> None:
    interval = ChargeInterval(
        7.0,
        1000,
        sampled=True,
        longer=(IntervalGroup("month", 80, 30.5), IntervalGroup("year", 15, 365.5), IntervalGroup(None, 5, 91.25)),
    )
    (line,) = billing_period_advice(interval, "week")
    assert line.startswith(
        "advice: 100 of 1,000 sampled subscribers charged on two days or more (10.0%) are charged at least 2 times "
        "business.billing_period apart (week: 7 days): 80 every 30.5 days, 15 every 365.5 days, 5 every 91.2 days "
        "(the median of each one's intervals;"
    )
    assert "churned at its first week without a charge" in line
    assert interval.as_dict() == {
        "median_days": 7.0,
        "subscribers": 1000,
        "sampled": True,
        "longer": [
            {"fits": "month", "subscribers": 80, "median_days": 30.5},
            {"fits": "year", "subscribers": 15, "median_days": 365.5},
            {"fits": None, "subscribers": 5, "median_days": 91.25},
        ],
        "longer_share": 0.1,
    }
    assert mixed_plans_advice(None, "week") == ()


@pytest.fixture(scope="module")
def trained(mixed: Path) -> ContractualResult:
    return train_subscriptions(_config(mixed))


def test_a_mixed_feed_run_is_advised_in_its_summary_and_report(trained: ContractualResult) -> None:
    assert trained.advice == (MIXED,)
    summary = summary_dict(trained)
    assert summary["advice"] == summary["warnings"] == [MIXED]
    assert summary["data"]["charge_interval"] == {
        "median_days": 30.5,
        "subscribers": 2202,
        "sampled": False,
        "longer": [{"fits": "year", "subscribers": 340, "median_days": 365.0}],
        "longer_share": 340 / 2202,
    }
    assert MIXED.replace("'", "&#x27;") in report_html(trained)


@pytest.mark.usefixtures("tracking_store")
def test_the_run_records_the_advice_and_the_share(trained: ContractualResult) -> None:
    experiment_id = store.connect("mixed")
    with store.run(experiment_id) as run_id:
        record_contractual(trained, "", report_html(trained))
    data = mlflow.MlflowClient().get_run(run_id).data
    assert data.tags["advice.0"] == MIXED
    assert data.metrics["median_charge_interval_days"] == 30.5
    assert data.metrics["longer_interval_share"] == pytest.approx(340 / 2202, rel=1e-15)
