"""Validate stage: the calibration-period model against the holdout, side by side with baselines.

Baselines predict each customer's holdout revenue from calibration spending alone:

- ``spend_rate``: total calibration spend per unit of time observed (first purchase to the end of
  calibration, inclusive), carried forward over the holdout;
- ``repeat_spend_rate``: the same with repeat purchases only (frequency x monetary_value).

Metric names are stable; they are logged to MLflow and used by the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, roc_auc_score

from models import bgnbd, gamma_gamma
from models.bundle import CLVModelParams

BASELINES: tuple[str, ...] = ("spend_rate", "repeat_spend_rate")
FREQUENCY_BINS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "7+")

METRIC_NAMES: tuple[str, ...] = (
    "purchases_mae",
    "purchases_rmse",
    "purchases_total_actual",
    "purchases_total_predicted",
    "purchases_total_pct_error",
    "purchases_total_abs_pct_error",
    "churn_auc",
    "churn_brier",
    "churn_rate_actual",
    "revenue_mae",
    "revenue_rmse",
    "revenue_spearman",
    "revenue_total_actual",
    "revenue_total_predicted",
    "revenue_total_pct_error",
    "revenue_mae_skill",
    "revenue_rmse_skill",
    *[f"baseline_{b}_revenue_{m}" for b in BASELINES for m in ("mae", "rmse", "spearman", "total_predicted")],
)


@dataclass(frozen=True)
class Validation:
    holdout: pd.DataFrame
    """One row per calibration customer: history, actual and predicted holdout purchases and revenue."""
    metrics: dict[str, float]
    by_frequency: pd.DataFrame
    """Mean actual and predicted holdout purchases and revenue by calibration frequency (0..6, 7+)."""


def holdout_predictions(model: CLVModelParams, calibration: pd.DataFrame, period_length: float) -> pd.DataFrame:
    """Predictions of the calibration model for the holdout, with the actuals and the baselines.

    ``period_length`` is one merge period (a day or a week) in the model's time unit.
    """
    f = calibration["frequency"].to_numpy(dtype=np.float64)
    r = calibration["recency"].to_numpy(dtype=np.float64)
    t = calibration["T"].to_numpy(dtype=np.float64)
    m = calibration["monetary_value"].to_numpy(dtype=np.float64)
    duration = calibration["duration_holdout"].to_numpy(dtype=np.float64)
    purchases = bgnbd.expected_purchases(model.purchase, duration, f, r, t)
    order_value = gamma_gamma.expected_order_value(model.spend, f, m)
    observed = t + period_length
    table = calibration[
        ["customer_id", "frequency", "recency", "T", "monetary_value", "total_spend", "duration_holdout"]
    ].copy()
    table["actual_purchases"] = calibration["frequency_holdout"].to_numpy()
    table["actual_revenue"] = calibration["revenue_holdout"].to_numpy()
    table["predicted_purchases"] = purchases
    table["expected_order_value"] = order_value
    table["predicted_revenue"] = purchases * order_value
    table["p_alive"] = bgnbd.p_alive(model.purchase, f, r, t)
    table["churn_risk"] = bgnbd.p_no_purchase(model.purchase, duration, f, r, t)
    table["baseline_spend_rate_revenue"] = calibration["total_spend"].to_numpy() / observed * duration
    table["baseline_repeat_spend_rate_revenue"] = f * m / observed * duration
    return table.reset_index(drop=True)


def _errors(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    diff = predicted - actual
    return float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff**2)))


def _spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    if np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return float("nan")
    return float(spearmanr(actual, predicted).statistic)


def _pct(predicted: float, actual: float) -> float:
    return float((predicted - actual) / actual * 100) if actual else float("nan")


def frequency_table(holdout: pd.DataFrame) -> pd.DataFrame:
    bins = np.minimum(holdout["frequency"].to_numpy(), 7).astype(int)
    grouped = holdout.assign(frequency_bin=np.asarray(FREQUENCY_BINS)[bins]).groupby("frequency_bin", sort=False)
    table = grouped.agg(
        customers=("customer_id", "size"),
        actual_purchases=("actual_purchases", "mean"),
        predicted_purchases=("predicted_purchases", "mean"),
        actual_revenue=("actual_revenue", "mean"),
        predicted_revenue=("predicted_revenue", "mean"),
        **{f"baseline_{b}_revenue": (f"baseline_{b}_revenue", "mean") for b in BASELINES},
    )
    return table.reindex([b for b in FREQUENCY_BINS if b in table.index]).reset_index()


def validate(model: CLVModelParams, calibration: pd.DataFrame, period_length: float) -> Validation:
    """Holdout metrics of ``model`` (fitted on the calibration period) and of the baselines."""
    holdout = holdout_predictions(model, calibration, period_length)
    actual_n = holdout["actual_purchases"].to_numpy()
    predicted_n = holdout["predicted_purchases"].to_numpy()
    actual_rev = holdout["actual_revenue"].to_numpy()
    predicted_rev = holdout["predicted_revenue"].to_numpy()
    metrics: dict[str, float] = {}
    metrics["purchases_mae"], metrics["purchases_rmse"] = _errors(actual_n, predicted_n)
    metrics["purchases_total_actual"] = float(actual_n.sum())
    metrics["purchases_total_predicted"] = float(predicted_n.sum())
    metrics["purchases_total_pct_error"] = _pct(predicted_n.sum(), actual_n.sum())
    metrics["purchases_total_abs_pct_error"] = abs(metrics["purchases_total_pct_error"])

    churned = (actual_n == 0).astype(int)
    churn_risk = holdout["churn_risk"].to_numpy()
    has_both = 0 < churned.sum() < len(churned)
    metrics["churn_auc"] = float(roc_auc_score(churned, churn_risk)) if has_both else float("nan")
    metrics["churn_brier"] = float(brier_score_loss(churned, churn_risk))
    metrics["churn_rate_actual"] = float(churned.mean())

    metrics["revenue_mae"], metrics["revenue_rmse"] = _errors(actual_rev, predicted_rev)
    metrics["revenue_spearman"] = _spearman(actual_rev, predicted_rev)
    metrics["revenue_total_actual"] = float(actual_rev.sum())
    metrics["revenue_total_predicted"] = float(predicted_rev.sum())
    metrics["revenue_total_pct_error"] = _pct(predicted_rev.sum(), actual_rev.sum())
    for name in BASELINES:
        baseline = holdout[f"baseline_{name}_revenue"].to_numpy()
        mae, rmse = _errors(actual_rev, baseline)
        metrics[f"baseline_{name}_revenue_mae"] = mae
        metrics[f"baseline_{name}_revenue_rmse"] = rmse
        metrics[f"baseline_{name}_revenue_spearman"] = _spearman(actual_rev, baseline)
        metrics[f"baseline_{name}_revenue_total_predicted"] = float(baseline.sum())
    for kind in ("mae", "rmse"):
        best = min(metrics[f"baseline_{b}_revenue_{kind}"] for b in BASELINES)
        metrics[f"revenue_{kind}_skill"] = 1 - metrics[f"revenue_{kind}"] / best if best > 0 else float("nan")
    return Validation(holdout=holdout, metrics=metrics, by_frequency=frequency_table(holdout))
