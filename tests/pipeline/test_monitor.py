"""The monitor on simulated feeds: BG/NBD purchases with Gamma-Gamma spend, judged by the true model.

The "champion" is the model the feed was drawn from, with its data ending at T0 (week 52); the monitor then
watches 6 periods of 4 weeks. Stationary: healthy throughout. Purchase rate halved after T0: the retrain
signal within ``stale_after`` periods. Spend per order x 1.5 after T0: the spend checks only.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from pipeline.config import EngineConfig, PrepareConfig
from pipeline.engines import Source, open_engine
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.monitor import (
    RETRAIN_EXIT_CODE,
    Check,
    MonitorConfig,
    Monitoring,
    Period,
    Reference,
    monitor,
    period_ends,
    psi,
    verdict,
)

TRUE = CLVModelParams(
    BetaGeoParams(r=0.6, alpha=4.0, a=0.7, b=3.0), GammaGammaParams(p=6.0, q=4.0, v=15.0), ScoringSpec()
)
START = dt.date(2020, 1, 1)
T0 = START + dt.timedelta(weeks=52)
END = T0 + dt.timedelta(weeks=24)


def simulate(rate_after: float = 1.0, spend_after: float = 1.0, customers: int = 6000, seed: int = 7) -> pd.DataFrame:
    """Transactions to END: births over the first 12 weeks; after T0 the rate is x ``rate_after`` and each
    order's amount x ``spend_after``."""
    rng = np.random.default_rng(seed)
    purchase, spend = TRUE.purchase, TRUE.spend
    assert isinstance(purchase, BetaGeoParams)
    assert isinstance(spend, GammaGammaParams)
    lam = rng.gamma(purchase.r, 1 / purchase.alpha, customers)  # per week
    p = rng.beta(purchase.a, purchase.b, customers)
    nu = rng.gamma(spend.q, 1 / spend.v, customers)
    birth = rng.uniform(0, 12, customers)
    horizon, switch = (END - START).days / 7, (T0 - START).days / 7 + 1 / 7
    rows = []
    for i in range(customers):
        t, alive = birth[i], True
        while alive and t < horizon:
            amount = rng.gamma(spend.p, 1 / nu[i]) * (spend_after if t >= switch else 1.0)
            rows.append((f"c{i:05d}", START + dt.timedelta(days=int(t * 7)), round(amount, 2)))
            alive = t == birth[i] or rng.random() > p[i]  # BG/NBD: dropout after repeat purchases only
            wait = rng.exponential(1 / lam[i])
            if t + wait >= switch:  # memoryless: from the switch on, the waiting time has the new rate
                wait = max(switch - t, 0.0) + rng.exponential(1 / (lam[i] * rate_after))
            t += wait
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).astype({"timestamp": "datetime64[s]"})


def run(feed: pd.DataFrame) -> Monitoring:
    engine = open_engine(EngineConfig())
    assert isinstance(engine, DuckDBEngine)
    source = Source("simulated feed", "", None, handle=engine.connection.from_df(feed))
    config = PrepareConfig(period="day", time_unit="week", calibration_end=T0)
    # training's own numbers for the same model on the history up to T0 (its holdout's churn AUC)
    reference = Reference(
        observation_end=T0, churn_auc=0.80, rows_in=int((feed["timestamp"] <= pd.Timestamp(T0)).sum())
    )
    return monitor(
        TRUE, engine, source, config, reference, 1 / 7, MonitorConfig(period_days=28, stale_after=2), last=END
    )


@pytest.fixture(scope="module")
def stationary() -> Monitoring:
    return run(simulate())


@pytest.mark.slow
def test_stationary_feed_stays_healthy(stationary: Monitoring) -> None:
    assert [p.end for p in stationary.periods] == period_ends(T0, END, 28)
    assert len(stationary.periods) == 6
    assert stationary.verdict == "ok"
    assert stationary.exit_code == 0
    for period in stationary.periods:
        assert period.failed == (), (period.index, period.checks)
        assert abs(period.metrics["purchases"]) < 10
        assert abs(period.metrics["spend"]) < 5
        assert period.metrics["psi_purchases"] < 0.1
        assert period.metrics["new_customers"] == 0.0
    last = stationary.periods[-1].metrics
    assert last["purchases_actual"] > 3000
    assert abs(last["churn_brier_excess"]) < 0.01


@pytest.mark.slow
def test_halved_purchase_rate_trips_the_retrain_signal() -> None:
    result = run(simulate(rate_after=0.5))
    assert result.verdict == "stale"
    assert result.exit_code == RETRAIN_EXIT_CODE
    assert result.stale_from is not None
    assert result.stale_from <= 2  # within stale_after periods
    assert "purchases" in result.failing
    assert "spend" not in result.failing
    assert result.periods[0].metrics["purchases"] > 90  # predicted about twice what happened
    assert all(p.failed == ("purchases",) for p in result.periods)


@pytest.mark.slow
def test_shifted_spend_trips_the_spend_checks_only(stationary: Monitoring) -> None:
    result = run(simulate(spend_after=1.5))
    assert result.verdict == "stale"
    assert set(result.failing) <= {"spend", "psi_order_value"}
    assert "spend" in result.failing
    for shifted, steady in zip(result.periods, stationary.periods, strict=True):
        assert set(shifted.failed) <= {"spend", "psi_order_value"}
        assert shifted.metrics["purchases"] == pytest.approx(steady.metrics["purchases"], abs=1e-9)
        assert shifted.metrics["spend"] == pytest.approx(100 * (1 / 1.5 - 1) + steady.metrics["spend"] / 1.5, abs=1.0)


def test_psi() -> None:
    rng = np.random.default_rng(1)
    same = psi(rng.normal(size=5000), rng.normal(size=5000))
    shifted = psi(rng.normal(size=5000), rng.normal(0.5, 1, size=5000))
    assert same < 0.01
    assert 0.2 < shifted < 0.35
    assert np.isnan(psi(np.ones(10), np.ones(100)))


def _period(index: int, *failed: str) -> Period:
    checks = tuple(Check(name, 1.0, 0.5, name not in failed) for name in ("purchases", "spend"))
    return Period(index, T0 + dt.timedelta(days=28 * index), {}, checks)


def test_verdict_needs_the_same_check_failing_in_consecutive_periods() -> None:
    assert verdict((), 2) == ("too early", (), None)
    assert verdict((_period(1, "purchases"),), 2) == ("ok", (), None)
    assert verdict((_period(1, "purchases"), _period(2, "spend"), _period(3)), 2) == ("ok", (), None)
    assert verdict((_period(1), _period(2, "spend"), _period(3, "spend", "purchases")), 2) == ("stale", ("spend",), 3)
    # stale once, healthy at the end: the verdict is about now
    assert verdict((_period(1, "spend"), _period(2, "spend"), _period(3)), 2) == ("ok", (), 2)


def test_quarantined_rows_count_in_the_period_their_timestamp_falls_in() -> None:
    """Rows without a customer id on days known by construction, some after the last day judged, and rows
    without a readable timestamp: a period counts the quarantined rows dated in (T0, its end] only, over every
    row dated there; rows without a readable timestamp are counted apart and left out of both rates."""
    feed = simulate(customers=800, seed=11)
    last = T0 + dt.timedelta(days=28 * 3)
    day = [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=28), T0 + dt.timedelta(days=29), last]
    no_id = day + [last + dt.timedelta(days=n) for n in (1, 10, 40, 40, 90)]  # the last 5: after the day judged
    added = pd.DataFrame(
        {
            "customer_id": [None] * len(no_id) + ["c00001", "c00002", None] + ["c00003"] * 4,
            "timestamp": [pd.Timestamp(d) for d in no_id] + [pd.NaT] * 3 + [pd.Timestamp(last + dt.timedelta(3))] * 4,
            "amount": 10.0,
        }
    )
    rows = pd.concat([feed, added], ignore_index=True)
    text = rows["timestamp"].dt.strftime("%Y-%m-%d").fillna("2021-02-30")  # no such day: invalid_timestamp
    engine = open_engine(EngineConfig())
    assert isinstance(engine, DuckDBEngine)
    source = Source("feed", "", None, handle=engine.connection.from_df(rows.assign(timestamp=text)))
    dated = rows["timestamp"].dt.date
    up_to_t0 = int((dated <= T0).sum())  # training's rows: one of them without an id
    reference = Reference(observation_end=T0, churn_auc=0.8, rows_in=up_to_t0 + 3, rows_quarantined=4, rows_untimed=3)
    result = monitor(
        TRUE,
        engine,
        source,
        PrepareConfig(period="day", time_unit="week", calibration_end=T0),
        reference,
        1 / 7,
        MonitorConfig(period_days=28),
        last=last,
    )
    ends = [T0 + dt.timedelta(days=28 * k) for k in (1, 2, 3)]
    new = [int(((dated > T0) & (dated <= end)).sum()) for end in ends]
    quarantined = [2, 3, 4]  # T0 + 1 and T0 + 28 in period 1, T0 + 29 in period 2, the last day in period 3
    assert [p.end for p in result.periods] == ends
    rates = [q / n for q, n in zip(quarantined, new, strict=True)]
    assert [p.metrics["quarantine_rate_new"] for p in result.periods] == rates
    assert [p.metrics["rows_quarantined_new"] for p in result.periods] == quarantined
    assert [p.metrics["rows_new"] for p in result.periods] == new
    assert new[0] > 100  # period 1 holds the simulated purchases: a rate over more than the rows added
    assert [p.metrics["rows_untimed"] for p in result.periods] == [3, 3, 3]
    training = 1 / up_to_t0  # training's rate over its rows with a readable timestamp
    assert [p.metrics["quarantine"] for p in result.periods] == [rate - training for rate in rates]


def test_a_last_day_before_the_models_data_ended_is_refused() -> None:
    engine = open_engine(EngineConfig())
    assert isinstance(engine, DuckDBEngine)
    source = Source("feed", "", None, handle=engine.connection.from_df(simulate(customers=50)))
    with pytest.raises(
        ValueError, match=r"^last day to judge 2020-12-29 is before the model's data ended \(2020-12-30\)$"
    ):
        monitor(
            TRUE, engine, source, PrepareConfig(calibration_end=T0), Reference(T0), 1 / 7, last=T0 - dt.timedelta(1)
        )
