"""The one-sort ranking metrics give the numbers of the per-metric sorts they replaced, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from benchmarks.feed import prepared_feed
from pipeline.metrics import (
    auc,
    brier,
    count_metrics,
    errors,
    normalized_gini,
    revenue_metrics,
    top_share,
)
from pipeline.ranks import ranking


def _previous_revenue_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The previous implementation: a sort per metric (scipy's Spearman, Gini and top shares each sorting)."""
    diff = predicted - actual
    same = np.ptp(actual) == 0 or np.ptp(predicted) == 0
    return {
        "mae": float(np.mean(np.abs(diff))),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "spearman": float("nan") if same else float(spearmanr(actual, predicted).statistic),
        "gini": normalized_gini(actual, predicted),
        "top10_share": top_share(actual, predicted, 0.10),
        "top20_share": top_share(actual, predicted, 0.20),
        "total_predicted": float(predicted.sum()),
    }


def _predictors(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Predictors with many ties (counts, zeros) and without, as the model and the baselines are."""
    f = frame["frequency"].to_numpy(dtype=np.float64)
    t = frame["T"].to_numpy(dtype=np.float64)
    m = frame["monetary_value"].to_numpy(dtype=np.float64)
    return {
        "spend_rate": f * m / (t + 1),
        "frequency": f,
        "recency_rate": frame["recency"].to_numpy(dtype=np.float64) / (t + 1),
        "constant": np.ones_like(f),
    }


def _assert_equal(actual: np.ndarray, predictors: dict[str, np.ndarray]) -> None:
    shared = ranking(actual)
    for predicted in predictors.values():
        new = revenue_metrics(shared, predicted)
        assert new == pytest.approx(_previous_revenue_metrics(actual, predicted), rel=0, abs=0, nan_ok=True)
        assert revenue_metrics(actual, predicted) == pytest.approx(new, rel=0, abs=0, nan_ok=True)
        old_count = {k: v for k, v in _previous_revenue_metrics(actual, predicted).items() if k in new}
        assert count_metrics(shared, predicted) == pytest.approx(
            {k: old_count[k] for k in ("mae", "rmse", "spearman", "total_predicted")}, rel=0, abs=0, nan_ok=True
        )


def test_brier_in_place_equals_scikit_learns_bit_for_bit() -> None:
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(14)
    for n in (1, 7, 10_000):
        churned = (rng.random(n) < 0.4).astype(np.int8)
        risk = rng.random(n)
        assert brier(churned, risk) == brier_score_loss(churned, risk)
        assert brier(churned, risk) == brier(churned.astype(np.int64), risk)


def test_errors_in_place_equal_the_plain_formulas() -> None:
    rng = np.random.default_rng(8)
    actual, predicted = rng.poisson(1.0, 100_000).astype(float), rng.gamma(1.0, 1.0, 100_000)
    diff = predicted - actual
    assert errors(actual, predicted) == (float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff**2))))


def test_one_sort_metrics_equal_the_previous_ones_on_cdnow(cdnow_sample_summary: pd.DataFrame) -> None:
    actual = (cdnow_sample_summary["frequency_holdout"] * cdnow_sample_summary["monetary_value_holdout"]).to_numpy()
    _assert_equal(actual.astype(np.float64), _predictors(cdnow_sample_summary))
    _assert_equal(
        cdnow_sample_summary["frequency_holdout"].to_numpy(dtype=np.float64), _predictors(cdnow_sample_summary)
    )


def test_one_sort_metrics_equal_the_previous_ones_on_the_generated_feed(tmp_path: Path) -> None:
    calibration = prepared_feed(200_000, tmp_path).calibration
    _assert_equal(calibration["revenue_holdout"].to_numpy(dtype=np.float64), _predictors(calibration))
    _assert_equal(calibration["frequency_holdout"].to_numpy(dtype=np.float64), _predictors(calibration))


def test_revenue_metrics_without_revenue_are_nan_where_undefined() -> None:
    out = revenue_metrics(np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0]))
    assert np.isnan(out["gini"])
    assert np.isnan(out["top10_share"])
    assert np.isnan(out["spearman"])
    assert out["total_predicted"] == 10.0


def _churn_cases(frame: pd.DataFrame, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(churned, risk) pairs: a smooth risk, a tie-heavy one (rounded), and a constant one."""
    churned = (frame["frequency_holdout"].to_numpy() == 0).astype(int)
    smooth = 1.0 / (1.0 + frame["frequency"].to_numpy() + rng.random(len(frame)))
    return [(churned, smooth), (churned, np.round(smooth, 1)), (churned, np.full(len(frame), 0.3))]


def _assert_sklearn_churn_metrics(cases: list[tuple[np.ndarray, np.ndarray]]) -> None:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    for churned, risk in cases:
        assert brier(churned, risk) == float(brier_score_loss(churned, risk))  # bit for bit
        assert auc(churned, risk) == pytest.approx(float(roc_auc_score(churned, risk)), rel=1e-12, abs=0)


def test_brier_and_auc_equal_scikit_learns_on_cdnow(cdnow_sample_summary: pd.DataFrame) -> None:
    _assert_sklearn_churn_metrics(_churn_cases(cdnow_sample_summary, np.random.default_rng(3)))


def test_brier_and_auc_equal_scikit_learns_on_the_generated_feed(tmp_path: Path) -> None:
    calibration = prepared_feed(200_000, tmp_path).calibration
    _assert_sklearn_churn_metrics(_churn_cases(calibration, np.random.default_rng(4)))


def test_auc_is_nan_without_both_labels_or_with_a_nan_risk() -> None:
    risk = np.array([0.2, 0.4, 0.6])
    assert np.isnan(auc(np.zeros(3, dtype=int), risk))
    assert np.isnan(auc(np.ones(3, dtype=int), risk))
    assert np.isnan(auc(np.array([0, 1, 0]), np.array([0.2, np.nan, 0.6])))
    assert auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])) == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_pearson_is_numpys_corrcoef_bit_for_bit(seed: int) -> None:
    from pipeline.metrics import _pearson

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300_000))
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 6) if seed % 2 else rng.integers(0, 6, n).astype(float)
    y = np.round(x * rng.uniform(-2, 2) + rng.standard_normal(n) * rng.uniform(0, 3), int(rng.integers(0, 3)))
    expected = float(np.corrcoef(np.column_stack((x, y)), rowvar=False)[1, 0])
    assert _pearson(x, y) == expected
    assert _pearson(x, x) == float(np.corrcoef(np.column_stack((x, x)), rowvar=False)[1, 0])
