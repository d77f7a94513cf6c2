"""Holdout metrics: their names, their direction, and the functions that compute them.

Metric names are stable: they are logged to MLflow, read by the gate and by ``clv compare``, and listed in
the docs' metrics reference. Spearman is reported but ranking is judged on the normalized Gini and the top-k
shares: on zero-inflated labels a predictor that ties every one-time buyer at 0 wins Spearman.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from pipeline.baselines import BASELINES, PURCHASE_BASELINES

__all__ = [
    "METRIC_NAMES",
    "MONEY_METRICS",
    "PURCHASE_METRICS",
    "REVENUE_METRICS",
    "count_metrics",
    "errors",
    "metric_direction",
    "normalized_gini",
    "pct",
    "revenue_metrics",
    "skill",
    "spearman",
    "top_share",
]

REVENUE_METRICS: tuple[str, ...] = ("mae", "rmse", "spearman", "gini", "top10_share", "top20_share", "total_predicted")
PURCHASE_METRICS: tuple[str, ...] = ("mae", "rmse", "spearman", "total_predicted")

METRIC_NAMES: tuple[str, ...] = (
    "purchases_mae",
    "purchases_rmse",
    "purchases_total_actual",
    "purchases_total_predicted",
    "purchases_total_pct_error",
    "purchases_total_abs_pct_error",
    "purchases_cumulative_pct_error",
    "purchases_cumulative_calibration_pct_error",
    "churn_auc",
    "churn_brier",
    "churn_rate_actual",
    "churn_brier_check_raw",
    "churn_brier_check_isotonic",
    "revenue_total_actual",
    "revenue_total_pct_error",
    *[f"revenue_{m}" for m in REVENUE_METRICS],
    "revenue_mae_skill",
    "revenue_rmse_skill",
    "historical_clv_retention",
    "purchases_holdout_log_likelihood",
    *[f"baseline_{b}_revenue_{m}" for b in BASELINES for m in REVENUE_METRICS],
    "purchases_spearman",
    "purchases_mae_skill",
    "purchases_rmse_skill",
    *[f"baseline_{b}_purchases_{m}" for b in PURCHASE_BASELINES for m in PURCHASE_METRICS],
)
MONEY_METRICS: frozenset[str] = frozenset(name for name in METRIC_NAMES if "revenue" in name)
"""Metrics that need amounts: not computed for a model without a spend model."""


def metric_direction(name: str) -> str:
    """``lower`` for errors (MAE, RMSE, % errors, Brier), ``higher`` for everything else (AUC, log-likelihood, ...)."""
    return "lower" if any(part in name for part in ("mae", "rmse", "error", "brier")) else "higher"


def errors(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    diff = predicted - actual
    return float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff**2)))


def spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    if np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return float("nan")
    return float(spearmanr(actual, predicted).statistic)


def _gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Gini of ``actual`` when customers are ranked by ``score`` (highest first; ties keep their order)."""
    order = np.argsort(-score, kind="stable")
    captured = np.cumsum(actual[order]) / actual.sum()
    n = len(actual)
    return float(captured.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, score: np.ndarray) -> float:
    """1 for a perfect ranking of actual revenue, 0 for a random one."""
    if len(actual) == 0 or actual.sum() <= 0:
        return float("nan")
    return _gini(actual, score) / _gini(actual, actual)


def top_share(actual: np.ndarray, score: np.ndarray, fraction: float) -> float:
    """Share of total actual revenue held by the top ``fraction`` of customers by ``score``."""
    if len(actual) == 0 or actual.sum() <= 0:
        return float("nan")
    k = max(round(fraction * len(actual)), 1)
    top = np.argsort(-score, kind="stable")[:k]
    return float(actual[top].sum() / actual.sum())


def pct(predicted: float, actual: float) -> float:
    return float((predicted - actual) / actual * 100) if actual else float("nan")


def revenue_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    mae, rmse = errors(actual, predicted)
    return {
        "mae": mae,
        "rmse": rmse,
        "spearman": spearman(actual, predicted),
        "gini": normalized_gini(actual, predicted),
        "top10_share": top_share(actual, predicted, 0.10),
        "top20_share": top_share(actual, predicted, 0.20),
        "total_predicted": float(predicted.sum()),
    }


def count_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    mae, rmse = errors(actual, predicted)
    return {
        "mae": mae,
        "rmse": rmse,
        "spearman": spearman(actual, predicted),
        "total_predicted": float(predicted.sum()),
    }


def skill(metrics: dict[str, float], kind: str, baselines: tuple[str, ...]) -> dict[str, float]:
    """``<kind>_mae_skill`` and ``_rmse_skill``: 1 - model error / best baseline error (> 0: the model wins)."""
    out = {}
    for error in ("mae", "rmse"):
        best = min(metrics[f"baseline_{b}_{kind}_{error}"] for b in baselines)
        out[f"{kind}_{error}_skill"] = 1 - metrics[f"{kind}_{error}"] / best if best > 0 else float("nan")
    return out
