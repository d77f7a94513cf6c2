"""The two-part challenger: CDNOW time-shift numbers, a pure BG/NBD feed, rescaling, blend, skops, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from models import bgnbd, gamma_gamma
from models.bgnbd import BetaGeoParams
from models.challenger import (
    Challenger,
    ChallengerError,
    ChallengerSettings,
    blend,
    fit_challenger,
    load,
    rescale_to,
    save,
)
from models.challenger_contest import ContestResult, contest, normalized_gini, top_share
from models.challenger_features import activity_from_transactions, features, labels
from models.gamma_gamma import GammaGammaParams
from models.mle import fit_bgnbd, fit_gamma_gamma

H = 181
CALIBRATION_END = pd.Timestamp("1997-12-31")
TRAINING_CUTOFF = CALIBRATION_END - pd.Timedelta(days=H)  # 1997-07-03


def btyd_summary(activity: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """frequency, recency, T (weeks), repeat monetary value, total and last-H spend at ``cutoff``."""
    rows = activity[activity["date"] <= cutoff].sort_values(["customer_id", "date"])
    grouped = rows.groupby("customer_id", sort=True)
    first, last = grouped["date"].min(), grouped["date"].max()
    total, first_spend = grouped["revenue"].sum(), grouped["revenue"].first()
    f = (grouped["purchases"].sum() - 1).astype(np.float64)
    recent = rows[rows["date"] > cutoff - pd.Timedelta(days=H)].groupby("customer_id")["revenue"].sum()
    return pd.DataFrame(
        {
            "frequency": f,
            "recency": (last - first).dt.days / 7,
            "T": (cutoff - first).dt.days / 7,
            "monetary_value": np.where(f > 0, (total - first_spend) / f.clip(lower=1), 0.0),
            "total_spend": total,
            "recent_spend": recent.reindex(f.index, fill_value=0.0),
        }
    )


def btyd_forecast(summary: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """BG/NBD x Gamma-Gamma fitted on ``summary``: expected revenue and churn risk over the horizon."""
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    purchase = fit_bgnbd(f, r, t).params
    spend = fit_gamma_gamma(f, summary["monetary_value"]).params
    assert isinstance(purchase, BetaGeoParams)
    assert isinstance(spend, GammaGammaParams)
    horizon = horizon_days / 7
    revenue = bgnbd.expected_purchases(purchase, horizon, f, r, t) * gamma_gamma.expected_order_value(
        spend, f, summary["monetary_value"]
    )
    risk = bgnbd.p_no_purchase(purchase, horizon, f, r, t)
    return pd.DataFrame({"expected_revenue": revenue, "churn_risk": risk}, index=summary.index)


def baselines(summary: pd.DataFrame, horizon_days: int) -> dict[str, np.ndarray]:
    """The validate stage's naive revenue baselines (per week observed, carried over the horizon)."""
    observed = summary["T"].to_numpy() + 1 / 7
    weeks = horizon_days / 7
    return {
        "spend_rate": summary["total_spend"].to_numpy() / observed * weeks,
        "repeat_spend_rate": (summary["frequency"] * summary["monetary_value"]).to_numpy() / observed * weeks,
        "last_period": summary["recent_spend"].to_numpy(),
    }


def simulate_bgnbd(n: int, seed: int, weeks: int = 78, birth_weeks: int = 12) -> pd.DataFrame:
    """Transactions of a world where BG/NBD x Gamma-Gamma hold exactly (CDNOW's published parameters).

    Customers are born uniformly over ``birth_weeks``; repeat purchases arrive as a Poisson process at
    rate lambda ~ Gamma(r, alpha) until the customer drops out after a repeat purchase (chance
    p ~ Beta(a, b)); every purchase spends Gamma(p, nu) with nu ~ Gamma(q, gamma).
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.2426, 1 / 4.4136, n)
    dropout = rng.beta(0.7929, 2.4259, n)
    birth = rng.integers(0, birth_weeks * 7, n)
    span = weeks - birth / 7
    arrivals = rng.poisson(rate * span)
    repeats = np.minimum(arrivals, rng.geometric(dropout))
    nu = rng.gamma(3.7446, 1 / 15.4477, n)
    customer = np.repeat(np.arange(n), repeats + 1)
    offsets = np.zeros(len(customer))
    starts = np.r_[0, np.cumsum(repeats + 1)[:-1]]
    for i in np.flatnonzero(repeats):  # the first `repeats` of `arrivals` uniform arrival times
        offsets[starts[i] + 1 : starts[i] + 1 + repeats[i]] = np.sort(rng.uniform(0, span[i], arrivals[i]))[
            : repeats[i]
        ]
    day = birth[customer] + np.floor(offsets * 7).astype(np.int64)
    return pd.DataFrame(
        {
            "customer_id": customer,
            "date": pd.Timestamp("2000-01-01") + pd.to_timedelta(day, unit="D"),
            "amount": rng.gamma(6.2488, 1 / nu[customer]),
        }
    )


@dataclass(frozen=True)
class Protocol:
    """The time-shift protocol on one feed: train at calibration end - H, score at calibration end."""

    challenger: Challenger
    scoring: pd.DataFrame
    holdout: pd.DataFrame
    btyd: pd.DataFrame
    baselines: dict[str, np.ndarray]


def time_shift(activity: pd.DataFrame, calibration_end: pd.Timestamp, horizon_days: int) -> Protocol:
    cutoff = calibration_end - pd.Timedelta(days=horizon_days)
    challenger = fit_challenger(features(activity, cutoff), labels(activity, cutoff, horizon_days))
    scoring = features(activity, calibration_end)
    summary = btyd_summary(activity, calibration_end)
    assert summary.index.equals(scoring.index)
    return Protocol(
        challenger=challenger,
        scoring=scoring,
        holdout=labels(activity, calibration_end, horizon_days),
        btyd=btyd_forecast(summary, horizon_days),
        baselines=baselines(summary, horizon_days),
    )


def _numbers(actual: pd.DataFrame, predicted: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y, p = actual["revenue"].to_numpy(), predicted["expected_revenue"].to_numpy()
    return {
        "mae": float(np.mean(np.abs(p - y))),
        "gini": normalized_gini(y, p),
        "top10": top_share(y, p, 0.10),
        "auc": float(roc_auc_score(actual["purchases"] == 0, predicted["churn_risk"])),
        "ratio": float(p.sum() / y.sum()),
    }


@pytest.fixture(scope="module")
def cdnow(cdnow_master: pd.DataFrame) -> Protocol:
    return time_shift(activity_from_transactions(cdnow_master), CALIBRATION_END, H)


@pytest.mark.slow
def test_cdnow_time_shift(cdnow: Protocol) -> None:
    """Measured 2026-12-02 (settings fixed before looking), again 2026-12-05 with the training rows in an order of
    their content (the revenue scale moved from 0.9294, the blend's Gini from 0.7585 to 0.7592); tolerance 0.005 on
    Gini, 2% on MAE."""
    target = float(cdnow.btyd["expected_revenue"].sum())  # structural: uses no holdout label
    rescaled = cdnow.challenger.rescaled_to(cdnow.scoring, target)
    challenger = rescaled.predict(cdnow.scoring)
    mixed = blend(cdnow.btyd, challenger)
    assert challenger["expected_revenue"].sum() == pytest.approx(target, rel=1e-9, abs=1e-9)
    assert rescaled.revenue_scale == pytest.approx(0.9165, abs=1e-3)  # the unscaled total was 1.053 x actual

    btyd, ours, both = (_numbers(cdnow.holdout, frame) for frame in (cdnow.btyd, challenger, mixed))
    assert btyd == pytest.approx({"mae": 21.141, "gini": 0.7259, "top10": 0.5664, "auc": 0.7882, "ratio": 0.9648}, 1e-3)
    assert ours["gini"] == pytest.approx(0.7595, abs=0.005)
    assert ours["mae"] == pytest.approx(22.691, rel=0.02)
    assert ours["auc"] == pytest.approx(0.8035, abs=0.005)
    assert both["gini"] == pytest.approx(0.7592, abs=0.005)
    assert both["mae"] == pytest.approx(21.749, rel=0.02)
    assert both["auc"] == pytest.approx(0.8041, abs=0.005)
    assert both["top10"] == pytest.approx(0.5727, abs=0.005)
    assert both["ratio"] == pytest.approx(btyd["ratio"], rel=1e-9)

    # The bar for the registered winner: Gini >= 0.755 with its interval above the best baseline,
    # churn AUC >= 0.80, MAE <= 22.2, total within 10%.
    result = contest(cdnow.holdout, cdnow.btyd, mixed, cdnow.baselines, np.random.default_rng(17))
    assert result.challenger_wins, result.reason
    assert result.best_baseline == "baseline_spend_rate"
    assert result.gini["baseline_spend_rate"] == pytest.approx(0.7369, abs=1e-4)
    assert result.gini["challenger"] >= 0.755
    assert result.gini_interval["challenger"][0] > result.gini["baseline_spend_rate"]
    assert result.gini_interval["challenger"] == pytest.approx((0.7406, 0.7754), abs=0.005)
    assert result.gini_gain_interval == pytest.approx((0.0250, 0.0428), abs=0.005)
    assert result.churn_auc["challenger"] >= 0.80
    assert result.mae["challenger"] <= 22.2
    assert abs(result.total_ratio["challenger"] - 1) <= 0.10

    # The rescaled challenger alone ranks best but misses the MAE guard-rail: the champion keeps.
    alone = contest(cdnow.holdout, cdnow.btyd, challenger, cdnow.baselines, np.random.default_rng(17))
    assert not alone.challenger_wins
    assert alone.reason == "champion keeps: MAE 22.69 > 1.05 x champion's 21.14"
    assert alone.gini_gain_interval[0] > 0


@pytest.mark.slow
def test_contest_keeps_the_champion_on_a_pure_bgnbd_feed() -> None:
    """Where BG/NBD x Gamma-Gamma hold exactly, the challenger does not replace BTYD (seed 5, 10,000 customers).
    Measured again 2026-12-05 with the training rows in an order of their content: the same decision, and the MAE
    guard-rail fails too (with the rows in id order, seeds 6 and 7 had given the same decision)."""
    feed = time_shift(activity_from_transactions(simulate_bgnbd(10_000, seed=5)), pd.Timestamp("2000-12-30"), 182)
    rescaled = feed.challenger.rescaled_to(feed.scoring, float(feed.btyd["expected_revenue"].sum()))
    result: ContestResult = contest(
        feed.holdout, feed.btyd, rescaled.predict(feed.scoring), feed.baselines, np.random.default_rng(17)
    )
    assert not result.challenger_wins
    assert result.reason.startswith(
        "champion keeps: MAE 17.72 > 1.05 x champion's 16.64; churn AUC 0.7538 < champion's 0.7672; "
        "Gini gain +0.0086 not"
    )
    assert result.guard_rails == {"mae": False, "total": True, "churn_auc": False}
    assert result.gini_gain_interval[0] < 0 < result.gini_gain_interval[1]
    assert result.gini_gain == pytest.approx(0.0086, abs=1e-3)


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training features and labels, and scoring features, of 3,000 simulated customers."""
    activity = activity_from_transactions(simulate_bgnbd(3_000, seed=1))
    cutoff = pd.Timestamp("2000-07-01")
    return features(activity, cutoff), labels(activity, cutoff, 182), features(activity, pd.Timestamp("2000-12-30"))


def test_same_seed_same_predictions(small: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    train, target, scoring = small
    first = fit_challenger(train, target).predict(scoring)
    second = fit_challenger(train, target).predict(scoring)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    other = fit_challenger(train, target, ChallengerSettings(random_state=1)).predict(scoring)
    assert not np.array_equal(other["expected_revenue"].to_numpy(), first["expected_revenue"].to_numpy())
    assert first["churn_risk"].to_numpy() == pytest.approx(1 - first["p_purchase"].to_numpy(), abs=0)
    assert ((first["p_purchase"] > 0) & (first["p_purchase"] < 1)).all()


def test_skops_round_trip_predicts_identically(
    small: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, target, scoring = small
    fitted = fit_challenger(train, target).rescaled_to(scoring, 1234.5)
    loaded = load(save(fitted, tmp_path / "challenger.skops"))
    assert loaded.revenue_scale == fitted.revenue_scale
    assert loaded.settings == fitted.settings
    assert loaded.feature_names == fitted.feature_names
    pd.testing.assert_frame_equal(loaded.predict(scoring), fitted.predict(scoring), check_exact=True)
    assert loaded.predict(scoring)["expected_revenue"].sum() == pytest.approx(1234.5, rel=1e-9)


def test_a_fresh_process_loads_and_predicts_identically(
    small: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, target, scoring = small
    fitted = fit_challenger(train, target)
    save(fitted, tmp_path / "challenger.skops")
    scoring.to_parquet(tmp_path / "features.parquet")
    script = (
        "import sys, pandas as pd; from models.challenger import load; "
        "folder = sys.argv[1]; "
        "load(folder + '/challenger.skops').predict(pd.read_parquet(folder + '/features.parquet'))"
        ".to_parquet(folder + '/predicted.parquet')"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    there = pd.read_parquet(tmp_path / "predicted.parquet")
    pd.testing.assert_frame_equal(there, fitted.predict(scoring), check_exact=True)


def test_load_refuses_an_unexpected_type(tmp_path: Path) -> None:
    path = tmp_path / "other.skops"
    skops.io.dump({"classifier": FunctionTransformer(os.system)}, path)  # would run a shell command
    with pytest.raises(ValueError, match=r"refusing to load untrusted type\(s\) posix.system"):
        load(path)


def test_rescale_and_blend_numbers() -> None:
    index = pd.Index(["a", "b"], name="customer_id")
    btyd = pd.DataFrame({"expected_revenue": [10.0, 30.0], "churn_risk": [0.2, 0.6]}, index=index)
    ml = pd.DataFrame({"expected_revenue": [1.0, 3.0], "p_purchase": [0.5, 0.9], "churn_risk": [0.5, 0.1]}, index=index)
    scaled = rescale_to(ml, 40.0)
    assert scaled["expected_revenue"].tolist() == [10.0, 30.0]
    assert scaled["churn_risk"].tolist() == [0.5, 0.1]
    mixed = blend(btyd, ml, weight=0.25)
    assert mixed["expected_revenue"].tolist() == pytest.approx([7.75, 23.25])
    assert mixed["churn_risk"].tolist() == pytest.approx([0.275, 0.475])
    assert mixed["p_purchase"].tolist() == pytest.approx([0.725, 0.525])
    with pytest.raises(ValueError, match="same customers"):
        blend(btyd, ml.iloc[::-1])
    with pytest.raises(ValueError, match="cannot rescale"):
        rescale_to(ml.assign(expected_revenue=0.0), 10.0)


def test_rescaled_challenger_keeps_its_ranking(small: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    train, target, scoring = small
    fitted = fit_challenger(train, target)
    scaled = fitted.rescaled_to(scoring, 5000.0)
    raw, out = fitted.predict(scoring), scaled.predict(scoring)
    assert out["expected_revenue"].sum() == pytest.approx(5000.0, rel=1e-9)
    assert np.array_equal(
        np.argsort(out["expected_revenue"].to_numpy()), np.argsort(raw["expected_revenue"].to_numpy())
    )
    pd.testing.assert_frame_equal(out[["p_purchase", "churn_risk"]], raw[["p_purchase", "churn_risk"]])
    assert replace(scaled, revenue_scale=1.0).predict(scoring).equals(raw)


def test_too_few_buyers_is_a_challenger_error(small: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    train, target, _ = small
    one_buyer = target.assign(purchases=0.0, revenue=0.0)
    one_buyer.iloc[0] = [50.0, 1.0]
    with pytest.raises(ChallengerError, match="at least 2 buyers and 2 non-buyers; 1 of 3000 customers bought"):
        fit_challenger(train, one_buyer)
    with pytest.raises(ValueError, match="same customers"):
        fit_challenger(train, target.iloc[::-1])
    two = one_buyer.copy()
    two.iloc[1] = [20.0, 1.0]
    predicted = fit_challenger(train, two).predict(train)  # fits; the trees underfit 2 buyers in 3,000
    assert 0 < predicted["expected_revenue"].sum() < 70.0
    assert predicted["p_purchase"].mean() == pytest.approx(2 / 3000, rel=0.5)
