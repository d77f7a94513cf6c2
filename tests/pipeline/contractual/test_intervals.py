"""The feed's billing interval against business.billing_period: a monthly feed run with year (or week) is told
the period its charges come at, in the run's advice, summary and MLflow tags; a feed on its period is not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import pytest

from pipeline.config import Config, parse_config
from pipeline.contractual.intervals import ChargeInterval, billing_period_advice
from pipeline.contractual.report import report_html, summary_dict
from pipeline.contractual.workflow import ContractualResult
from pipeline.recorder import store
from pipeline.recorder.contractual import record_contractual
from tests.feeds import query_rows
from tests.subscription_feed import (
    DIRTY_ROWS,
    prepared_subscriptions,
    subscription_feed,
    subscriptions_table,
    train_subscriptions,
)

MONTHLY_AS_YEAR = (
    "advice: charges come every 30.5 days (median over 1,862 subscribers charged on two days or more) but "
    "business.billing_period is year (365.25 days): renewals and churn are counted per year, so the sBG's "
    "numbers mean nothing; set business.billing_period: month"
)


def _config(path: Path, period: str, **business: object) -> Config:
    table = business.get("input") == "subscriptions"
    columns = {"timestamp": "start", "amount": "price"} if table else {"timestamp": "charge_date"}
    return parse_config(
        {
            "data": {"source": path.suffix.lstrip("."), "path": str(path), "columns": columns},
            "prepare": {"calibration_end": "2023-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "contractual", "billing_period": period, **business},
        }
    )


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A monthly and a yearly billing feed (100 subscribers a month for two years), and the monthly one as a
    subscriptions table."""
    folder = tmp_path_factory.mktemp("intervals")
    monthly = subscription_feed(per_cohort=100, cohorts=24)
    monthly.to_csv(folder / "monthly.csv", index=False)
    subscription_feed(per_cohort=100, cohorts=24, months_per_charge=12).to_csv(folder / "yearly.csv", index=False)
    subscriptions_table(monthly).to_csv(folder / "subscriptions.csv", index=False)
    return {name: folder / f"{name}.csv" for name in ("monthly", "yearly", "subscriptions")}


def test_the_median_interval_is_measured_whatever_the_period(feeds: dict[str, Path]) -> None:
    monthly = ChargeInterval(30.5, 1862)
    assert prepared_subscriptions(_config(feeds["monthly"], "month")).charge_interval == monthly
    assert prepared_subscriptions(_config(feeds["monthly"], "year")).charge_interval == monthly
    assert prepared_subscriptions(_config(feeds["yearly"], "year")).charge_interval == ChargeInterval(365.0, 1396)


def _by_hand(charges: pd.DataFrame, every: int = 1) -> tuple[float, int]:
    """The median of the subscribers' mean intervals and how many they are, in pandas from each subscriber's
    distinct charge days; ``every`` > 1: of the subscribers prepare draws (DuckDB's hash of the id as text, 0
    modulo ``every``)."""
    ids = pd.DataFrame({"cid": charges["customer_id"].astype(str).unique()})
    with duckdb.connect() as con:
        drawn = con.from_df(ids).filter(f"hash(cid) % {every} = 0").df()["cid"]
    mine = charges[charges["customer_id"].astype(str).isin(set(drawn))]
    days = mine.assign(day=pd.to_datetime(mine["charge_date"])).groupby("customer_id")["day"]
    span, count = (days.max() - days.min()).dt.days, days.nunique()
    repeat = span > 0
    return float((span[repeat] / (count[repeat] - 1)).median()), int(repeat.sum())


def test_the_median_is_that_of_each_subscribers_mean_interval(feeds: dict[str, Path]) -> None:
    """By hand on the clean charges, each subscriber's distinct charge days."""
    assert _by_hand(pd.read_csv(feeds["monthly"]).iloc[:-DIRTY_ROWS]) == (30.5, 1862)


def test_two_invoice_lines_on_a_charge_day_are_one_charge(feeds: dict[str, Path], tmp_path: Path) -> None:
    """A monthly feed billing a plan and an add-on on each charge day, as two lines: the same interval, no advice
    on its own period (counted as rows, the interval halved: "no billing period fits it")."""
    charges = pd.read_csv(feeds["monthly"])
    pd.concat([charges, charges.assign(amount=2.5)]).to_csv(tmp_path / "lines.csv", index=False)
    interval = prepared_subscriptions(_config(tmp_path / "lines.csv", "month")).charge_interval
    assert interval == ChargeInterval(30.5, 1862)
    assert billing_period_advice(interval, "month") == ()


def test_a_large_feed_is_measured_on_a_sample_of_its_subscribers(
    feeds: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above SAMPLE_CHARGES charges, whole subscribers drawn by the hash of their id; the advice says so."""
    from pipeline.contractual import intervals

    monkeypatch.setattr(intervals, "SAMPLE_CHARGES", 10_000)
    sampled = prepared_subscriptions(_config(feeds["monthly"], "year")).charge_interval
    assert sampled is not None
    assert sampled.sampled
    assert 300 < sampled.subscribers < 1862
    assert sampled.median_days == pytest.approx(30.5, abs=0.5)
    (advice,) = billing_period_advice(sampled, "year")
    assert f"(median over {sampled.subscribers:,} sampled subscribers charged on two days or more)" in advice


@pytest.mark.parametrize("shape", ["integer ids", "invoice lines"])
def test_the_sample_is_the_drawn_subscribers_median_with_integer_ids_and_invoice_lines(
    feeds: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """The sampled path on the monthly feed's clean charges with integer ids (10000..., a Parquet BIGINT column)
    and billed as two lines a charge day (a plan and an add-on): the median and count of the drawn subscribers'
    mean intervals by hand, the monthly 30.5 days, and the year advice naming the sampled subscribers. The sample
    is sized on rows: 14,792 charges are drawn one subscriber in 2, 29,584 lines one in 3."""
    from pipeline.contractual import intervals

    monkeypatch.setattr(intervals, "SAMPLE_CHARGES", 10_000)
    charges = pd.read_csv(feeds["monthly"]).iloc[:-DIRTY_ROWS]
    if shape == "integer ids":
        codes = {c: 10_000 + k for k, c in enumerate(sorted(charges["customer_id"].unique()))}
        charges = charges.assign(customer_id=charges["customer_id"].map(codes))
        path = tmp_path / "feed.parquet"
        charges.assign(charge_date=pd.to_datetime(charges["charge_date"])).to_parquet(path, index=False)
        assert query_rows(f"SELECT DISTINCT typeof(customer_id) FROM '{path}'") == [("BIGINT",)]
    else:
        charges = pd.concat([charges, charges.assign(amount=2.5)], ignore_index=True)
        path = tmp_path / "feed.csv"
        charges.to_csv(path, index=False)
    every = {"integer ids": 2, "invoice lines": 3}[shape]
    assert -(-len(charges) // 10_000) == every
    sampled = prepared_subscriptions(_config(path, "year")).charge_interval
    assert sampled == ChargeInterval(*_by_hand(charges, every), sampled=True)
    assert sampled.median_days == pytest.approx(30.5, abs=0.2)
    assert 1862 / every - 200 < sampled.subscribers < 1862 / every + 200
    assert billing_period_advice(sampled, "year") == (
        MONTHLY_AS_YEAR.replace("1,862 subscribers", f"{sampled.subscribers:,} sampled subscribers"),
    )
    assert billing_period_advice(sampled, "month") == ()


def test_no_measure_as_of_a_date_or_on_a_subscriptions_table(feeds: dict[str, Path]) -> None:
    """Scoring does not advise, and a subscriptions table's charges are laid on the configured period."""
    assert prepared_subscriptions(_config(feeds["monthly"], "year"), dt.date(2024, 6, 30)).charge_interval is None
    assert (
        prepared_subscriptions(_config(feeds["subscriptions"], "year", input="subscriptions")).charge_interval is None
    )


@pytest.mark.parametrize(
    ("feed", "period", "expected"),
    [("monthly", "year", (MONTHLY_AS_YEAR,)), ("monthly", "month", ()), ("yearly", "year", ())],
)
def test_a_feed_is_advised_only_off_its_period(
    feeds: dict[str, Path], feed: str, period: str, expected: tuple[str, ...]
) -> None:
    assert (
        billing_period_advice(prepared_subscriptions(_config(feeds[feed], period)).charge_interval, period) == expected
    )


@pytest.mark.parametrize(
    ("median", "period", "expected"),
    [
        (30.5, "month", None),
        (365.0, "year", None),
        (7.0, "week", None),
        (
            7.0,
            "month",
            "every 7 days (median over 500 subscribers charged on two days or more) but "
            "business.billing_period is month (30.4375 days): renewals and churn are counted per month, so the sBG's "
            "numbers mean nothing; set business.billing_period: week",
        ),
        (
            365.0,
            "month",
            "every 365 days (median over 500 subscribers charged on two days or more) but "
            "business.billing_period is month (30.4375 days): renewals and churn are counted per month, so the "
            "sBG's numbers mean nothing; set business.billing_period: year",
        ),
        (
            30.5,
            "week",
            "every 30.5 days (median over 500 subscribers charged on two days or more) but "
            "business.billing_period is week (7 days): renewals and churn are counted per week, so the sBG's "
            "numbers mean nothing; set business.billing_period: month",
        ),
        # the factor 2 at both ends: every other week is not weekly; half a month is not monthly
        (
            14.0,
            "week",
            "every 14 days (median over 500 subscribers charged on two days or more) but "
            "business.billing_period is week (7 days): renewals and churn are counted per week, so the sBG's numbers "
            "mean nothing; no billing period (a week, a month or a year) fits it: this feed may not suit the sBG",
        ),
        (13.9, "week", None),
        (60.8, "month", None),
        (
            15.2,
            "month",
            "every 15.2 days (median over 500 subscribers charged on two days or more) but "
            "business.billing_period is month (30.4375 days): renewals and churn are counted per month, so the "
            "sBG's numbers mean nothing; no billing period (a week, a month or a year) fits it: this feed may not "
            "suit the sBG",
        ),
        (
            91.3,
            "month",
            "every 91.3 days (median over 500 subscribers charged on two days or more) but "
            "business.billing_period is month (30.4375 days): renewals and churn are counted per month, so the "
            "sBG's numbers mean nothing; no billing period (a week, a month or a year) fits it: this feed may not "
            "suit the sBG",
        ),
    ],
)
def test_the_advice_names_the_interval_and_the_period_it_looks_like(
    median: float, period: str, expected: str | None
) -> None:
    lines = billing_period_advice(ChargeInterval(median, 500), period)
    assert lines == (() if expected is None else (f"advice: charges come {expected}",))


def test_no_advice_without_a_measure() -> None:
    assert billing_period_advice(None, "year") == ()


@pytest.fixture(scope="module")
def monthly_as_year(feeds: dict[str, Path]) -> ContractualResult:
    return train_subscriptions(_config(feeds["monthly"], "year"))


def test_a_monthly_feed_run_with_year_is_told_to_set_month(monthly_as_year: ContractualResult) -> None:
    """It trains, and may well pass the gate: only the advice says its numbers mean nothing."""
    assert monthly_as_year.advice == (MONTHLY_AS_YEAR,)
    summary = summary_dict(monthly_as_year)
    assert summary["advice"] == summary["warnings"] == [MONTHLY_AS_YEAR]
    assert summary["data"]["charge_interval"] == {
        "median_days": 30.5,
        "subscribers": 1862,
        "sampled": False,
        "longer": [],
        "longer_share": 0.0,
    }
    assert MONTHLY_AS_YEAR.replace("'", "&#x27;") in report_html(monthly_as_year)


@pytest.mark.usefixtures("tracking_store")
def test_the_run_records_the_advice_as_a_tag_and_the_interval_as_a_metric(monthly_as_year: ContractualResult) -> None:
    experiment_id = store.connect("intervals")
    with store.run(experiment_id) as run_id:
        record_contractual(monthly_as_year, "", report_html(monthly_as_year))
    data = mlflow.MlflowClient().get_run(run_id).data
    assert data.tags["advice.0"] == MONTHLY_AS_YEAR
    assert data.metrics["median_charge_interval_days"] == 30.5
    assert data.metrics["longer_interval_share"] == 0.0


@pytest.mark.parametrize(("feed", "period"), [("monthly", "month"), ("yearly", "year")])
def test_a_feed_run_on_its_period_gets_no_advice(feeds: dict[str, Path], feed: str, period: str) -> None:
    result = train_subscriptions(_config(feeds[feed], period))
    assert result.advice == ()
    assert summary_dict(result)["warnings"] == []
