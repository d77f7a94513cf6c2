"""The vectorised paired bootstrap: each draw's metrics equal those of the expanded resample, computed
directly (normalized Gini, top-k share, MAE, scikit-learn's ROC AUC), the random stream is one
``rng.integers(0, n, n)`` per draw, and the same seed gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.challenger_contest import normalized_gini, top_share
from models.contest_bootstrap import CHUNK, bootstrap_metrics, percentile_interval, resample_weights


def _data(n: int = 400) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    actual = np.where(rng.random(n) < 0.7, 0.0, rng.gamma(2.0, 20.0, n))
    churned = actual == 0
    scores = {"ties": np.round(rng.random(n), 2), "good": actual + rng.normal(0, 20, n)}
    risks = {"ties": np.round(rng.random(n), 1), "good": np.where(churned, rng.random(n), 0.8 * rng.random(n))}
    return actual, scores, churned, risks


def test_each_draw_equals_the_metrics_of_its_expanded_resample() -> None:
    actual, scores, churned, risks = _data()
    draws = CHUNK + 7  # two chunks
    boot = bootstrap_metrics(actual, scores, churned, risks, draws, np.random.default_rng(5))
    weights = np.concatenate(list(resample_weights(len(actual), draws, np.random.default_rng(5))), axis=1)
    assert weights.shape == (400, draws)
    for d in (0, 50, CHUNK, draws - 1):
        rows = np.repeat(np.arange(len(actual)), weights[:, d])
        y = actual[rows]
        for name, score in scores.items():
            s = score[rows]
            assert boot["gini"][name][d] == pytest.approx(normalized_gini(y, s), rel=1e-12)
            assert boot["top10_share"][name][d] == pytest.approx(top_share(y, s, 0.10), rel=1e-12)
            assert boot["top20_share"][name][d] == pytest.approx(top_share(y, s, 0.20), rel=1e-12)
            assert boot["mae"][name][d] == pytest.approx(np.mean(np.abs(s - y)), rel=1e-12)
        for name, risk in risks.items():
            assert boot["churn_auc"][name][d] == pytest.approx(roc_auc_score(churned[rows], risk[rows]), rel=1e-12)


def test_the_draws_are_one_integers_call_per_draw_and_the_seed_fixes_them() -> None:
    rng = np.random.default_rng(17)
    loop = [np.bincount(rng.integers(0, 300, 300), minlength=300) for _ in range(CHUNK + 3)]
    chunked = np.concatenate(list(resample_weights(300, CHUNK + 3, np.random.default_rng(17))), axis=1)
    np.testing.assert_array_equal(chunked, np.stack(loop, axis=1))
    actual, scores, churned, risks = _data()
    first = bootstrap_metrics(actual, scores, churned, risks, 200, np.random.default_rng(17))
    again = bootstrap_metrics(actual, scores, churned, risks, 200, np.random.default_rng(17))
    other = bootstrap_metrics(actual, scores, churned, risks, 200, np.random.default_rng(18))
    for metric, by in first.items():
        for name, values in by.items():
            np.testing.assert_array_equal(values, again[metric][name])
            assert not np.array_equal(values, other[metric][name])
    assert sorted(first) == ["churn_auc", "gini", "mae", "top10_share", "top20_share"]


def test_percentile_interval() -> None:
    values = np.arange(1001, dtype=np.float64)
    assert percentile_interval(values, 0.95) == pytest.approx((25.0, 975.0), rel=1e-12)
    assert percentile_interval(values, 0.9) == pytest.approx((50.0, 950.0), rel=1e-12)
