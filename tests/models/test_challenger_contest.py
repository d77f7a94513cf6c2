"""The contest rule: metrics by hand, the weighted bootstrap Gini, every guard-rail and the noise test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.challenger_contest import ContestRules, _weighted_gini, contest, normalized_gini, top_share


def test_normalized_gini_and_top_share_by_hand() -> None:
    actual = np.array([0.0, 10.0, 0.0, 5.0])
    score = np.array([4.0, 3.0, 2.0, 1.0])
    # Ranked by score the captured shares are 0, 2/3, 2/3, 1: Gini = (7/3)/4 - 5/8 = -1/24.
    # Ranked perfectly: 2/3, 1, 1, 1: Gini = (11/3)/4 - 5/8 = 7/24.
    assert normalized_gini(actual, score) == pytest.approx(-1 / 7, rel=1e-12)
    assert normalized_gini(actual, actual) == pytest.approx(1.0, rel=1e-12)
    assert top_share(actual, score, 0.5) == pytest.approx(2 / 3, rel=1e-12)
    assert np.isnan(normalized_gini(np.zeros(3), np.ones(3)))


def test_weighted_gini_equals_the_gini_of_the_resample() -> None:
    rng = np.random.default_rng(0)
    actual = np.where(rng.random(500) < 0.7, 0.0, rng.gamma(2.0, 20.0, 500))
    score = np.round(rng.random(500), 2)  # ties
    for _ in range(5):
        weights = np.bincount(rng.integers(0, 500, 500), minlength=500).astype(np.float64)
        resampled = np.repeat(np.arange(500), weights.astype(np.int64))
        direct = normalized_gini(actual[resampled], score[resampled])
        order, perfect = np.argsort(-score, kind="stable"), np.argsort(-actual, kind="stable")
        weighted = _weighted_gini(actual, order, weights) / _weighted_gini(actual, perfect, weights)
        assert weighted == pytest.approx(direct, rel=1e-12)


def _holdout(n: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Holdout revenue from a known expected value; 70% of customers do not buy."""
    rng = np.random.default_rng(seed)
    expected = rng.gamma(0.5, 40.0, n)
    buys = rng.random(n) < 1 - np.exp(-expected / 30)
    revenue = np.where(buys, rng.gamma(4.0, expected / 4 + 1), 0.0)
    actual = pd.DataFrame({"revenue": revenue, "purchases": buys.astype(np.float64)})
    return actual, expected


def _frame(revenue: np.ndarray, risk: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"expected_revenue": revenue, "churn_risk": risk})


def test_a_clearly_better_challenger_wins() -> None:
    actual, expected = _holdout()
    rng = np.random.default_rng(1)
    risk = np.exp(-expected / 30)
    good = _frame(expected * actual["revenue"].sum() / expected.sum(), risk)
    noisy = expected * rng.lognormal(0, 1.5, len(expected))
    poor = _frame(noisy * actual["revenue"].sum() / noisy.sum(), np.clip(risk + rng.normal(0, 0.3, len(risk)), 0, 1))
    result = contest(actual, poor, good, {"flat": np.ones(len(expected))}, np.random.default_rng(17))
    assert result.challenger_wins, result.reason
    assert result.reason.startswith("challenger wins: Gini")
    assert result.guard_rails == {"mae": True, "total": True, "churn_auc": True}
    assert result.gini_gain_interval[0] > 0
    assert result.gini_gain == pytest.approx(result.gini["challenger"] - result.gini["champion"], abs=0)
    assert result.total_ratio["challenger"] == pytest.approx(1.0, rel=1e-12)
    assert result.best_baseline == "baseline_flat"
    assert result.gini["baseline_flat"] == pytest.approx(normalized_gini(actual["revenue"].to_numpy(), np.ones(2000)))
    metrics = result.as_metrics()
    assert metrics["challenger_wins"] == 1.0
    assert metrics["gini_lower_challenger"] == result.gini_interval["challenger"][0]
    # The same contest, the champion and challenger swapped: the champion keeps, and says why.
    swapped = contest(actual, good, poor, {}, np.random.default_rng(17))
    assert not swapped.challenger_wins
    assert "MAE" in swapped.reason
    assert "churn AUC" in swapped.reason
    assert "not above the noise" in swapped.reason
    assert swapped.gini_gain_interval == pytest.approx(
        (-result.gini_gain_interval[1], -result.gini_gain_interval[0]), abs=1e-12
    )


def test_each_guard_rail_stops_a_better_ranker() -> None:
    actual, expected = _holdout()
    risk = np.exp(-expected / 30)
    total = actual["revenue"].sum()
    blurred = expected * np.random.default_rng(2).lognormal(0, 0.7, len(expected))
    champion = _frame(blurred * total / blurred.sum(), 1 - 0.9 * (1 - risk))  # the same churn AUC
    best = _frame(expected * total / expected.sum(), risk)
    wins = contest(actual, champion, best, {}, np.random.default_rng(17))
    assert wins.challenger_wins, wins.reason

    inflated = contest(actual, champion, best.assign(expected_revenue=best["expected_revenue"] * 1.2), {},
                       np.random.default_rng(17))  # fmt: skip
    assert not inflated.challenger_wins
    assert inflated.guard_rails["total"] is False
    assert "predicted/actual total 1.2 outside 1 +/- 0.1" in inflated.reason

    tolerant = contest(
        actual,
        champion,
        best.assign(expected_revenue=best["expected_revenue"] * 1.2),
        {},
        np.random.default_rng(17),
        ContestRules(total_tolerance=0.25, mae_tolerance=1.0),
    )
    assert tolerant.challenger_wins, tolerant.reason

    flat_risk = contest(actual, champion, best.assign(churn_risk=0.5), {}, np.random.default_rng(17))
    assert flat_risk.guard_rails == {"mae": True, "total": True, "churn_auc": False}
    assert flat_risk.churn_auc["challenger"] == 0.5
    assert flat_risk.reason.startswith("champion keeps: churn AUC 0.5 < champion's")


def test_identical_contenders_are_inside_the_noise() -> None:
    actual, expected = _holdout()
    same = _frame(expected * actual["revenue"].sum() / expected.sum(), np.exp(-expected / 30))
    result = contest(actual, same, same.copy(), {}, np.random.default_rng(17), ContestRules(draws=200))
    assert not result.challenger_wins
    assert result.gini_gain == 0
    assert result.gini_gain_interval == (0.0, 0.0)
    assert result.reason == (
        "champion keeps: Gini gain +0.0000 not above the noise: 95% interval [+0.0000, +0.0000] includes 0 or lies "
        "below it"
    )


def test_contest_refuses_misaligned_or_empty_holdouts() -> None:
    actual, expected = _holdout(50)
    frame = _frame(expected, np.full(50, 0.5))
    with pytest.raises(ValueError, match="same customers"):
        contest(actual, frame, frame.iloc[::-1], {}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no revenue"):
        contest(actual.assign(revenue=0.0), frame, frame, {}, np.random.default_rng(0))
