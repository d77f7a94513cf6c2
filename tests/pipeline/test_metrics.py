"""The one-sort ranking metrics give the numbers of the per-metric sorts they replaced, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata, spearmanr

from benchmarks.feed import prepared_feed
from pipeline.metrics import count_metrics, errors, normalized_gini, ranking, revenue_metrics, top_share


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


def test_ranks_are_scipy_average_ranks() -> None:
    values = np.array([3.0, 1.0, 3.0, 0.0, 0.0, 0.0, 2.5, 3.0])
    np.testing.assert_array_equal(ranking(values).ranks, rankdata(values))
    np.testing.assert_array_equal(ranking(values).order, np.argsort(-values, kind="stable"))
    assert ranking(values).order.dtype == np.int32  # half the memory of argsort's int64, the same rows


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
