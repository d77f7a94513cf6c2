"""Validate stage: the calibration-period model against the holdout, side by side with baselines.

Baselines predict each customer's holdout revenue (over the holdout length H) from calibration
spending alone:

- ``historical_clv``: the traditional formula, average order value x purchase frequency x expected
  lifespan, over the holdout: AOV x purchases per unit of time x L. L is the expected time a customer
  stays within the holdout under a constant retention rate: with r the share of customers who bought
  in the last W of calibration among those whose first purchase was before it (W = the holdout length,
  at most half the longest customer age), rho = r^(1/W) per unit of time and L = (rho^H - 1) / ln rho;
- ``spend_rate``: total calibration spend per unit of time observed (first purchase to the end of
  calibration, inclusive), carried forward over the holdout (historical CLV with everyone retained);
- ``repeat_spend_rate``: the same with repeat purchases only (frequency x monetary_value);
- ``last_period``: "the last period repeats": what the customer spent in the last H of calibration.

Metric names are stable; they are logged to MLflow and used by the gate (see the README).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from models import purchase, spend
from models.bundle import CLVModelParams
from models.clv import DAYS_PER_UNIT
from models.purchase import holdout_log_likelihood

BASELINES: tuple[str, ...] = ("historical_clv", "spend_rate", "repeat_spend_rate", "last_period")
PURCHASE_BASELINES: tuple[str, ...] = ("historical", "purchase_rate", "repeat_purchase_rate", "last_period")
"""Baselines of holdout purchases (the same ideas in counts): what the model must beat without amounts."""
FREQUENCY_BINS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "7+")
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


@dataclass(frozen=True)
class Validation:
    holdout: pd.DataFrame
    """One row per calibration customer: history, actual and predicted holdout purchases and revenue."""
    metrics: dict[str, float]
    by_frequency: pd.DataFrame
    """By calibration frequency (0..6, 7+): mean actual and predicted purchases and revenue, revenue MAE."""
    tracking: pd.DataFrame
    """Week by week: actual and expected repeat purchases of the calibration customers, and cumulated."""
    churn_calibration: pd.DataFrame
    """Mean predicted churn risk against the observed share without a holdout purchase, by decile."""


def _lifespan(calibration: pd.DataFrame, horizon: float) -> tuple[float, float]:
    """Retention over the holdout and the expected time retained within it (historical-CLV baseline)."""
    window = min(horizon, float(calibration["T"].max()) / 2)
    started_before = calibration["T"] > window
    if window <= 0 or not started_before.any():
        return 1.0, horizon
    last_purchase_age = calibration["T"] - calibration["recency"]
    retained = float((last_purchase_age[started_before] <= window).mean())
    if retained >= 1.0:
        return 1.0, horizon
    if retained <= 0.0:
        return 0.0, 0.0
    log_rho = np.log(retained) / window
    return float(np.exp(log_rho * horizon)), float(np.expm1(log_rho * horizon) / log_rho)


def holdout_predictions(
    model: CLVModelParams, calibration: pd.DataFrame, period_length: float
) -> tuple[pd.DataFrame, float]:
    """Predictions of the calibration model for the holdout, with the actuals and the baselines.

    ``period_length`` is one merge period (a day or a week) in the model's time unit. Also returns the
    retention rate used by the historical baselines. Without a spend model (or amounts) the table has no
    money columns.
    """
    f = calibration["frequency"].to_numpy(dtype=np.float64)
    r = calibration["recency"].to_numpy(dtype=np.float64)
    t = calibration["T"].to_numpy(dtype=np.float64)
    duration = calibration["duration_holdout"].to_numpy(dtype=np.float64)
    purchases = purchase.expected_purchases(model.purchase, duration, f, r, t)
    observed = t + period_length
    retention, lifespan = _lifespan(calibration, float(duration[0])) if len(duration) else (1.0, 0.0)
    has_spend = model.spend is not None and "monetary_value" in calibration.columns
    summary = ["frequency", "recency", "T", *(["monetary_value", "total_spend"] if has_spend else [])]
    table = calibration[["customer_id", *summary, "duration_holdout"]].copy()
    table["actual_purchases"] = calibration["frequency_holdout"].to_numpy()
    table["predicted_purchases"] = purchases
    table["p_alive"] = purchase.p_alive(model.purchase, f, r, t)
    table["churn_risk"] = purchase.p_no_purchase(model.purchase, duration, f, r, t)
    purchases_observed = f + 1
    table["baseline_historical_purchases"] = purchases_observed / observed * lifespan
    table["baseline_purchase_rate_purchases"] = purchases_observed / observed * duration
    table["baseline_repeat_purchase_rate_purchases"] = f / observed * duration
    table["baseline_last_period_purchases"] = calibration["recent_purchases"].to_numpy(dtype=np.float64)
    if has_spend:
        m = calibration["monetary_value"].to_numpy(dtype=np.float64)
        order_value = spend.expected_order_value(model.spend, f, m)
        total = calibration["total_spend"].to_numpy(dtype=np.float64)
        table["actual_revenue"] = calibration["revenue_holdout"].to_numpy()
        table["expected_order_value"] = order_value
        table["predicted_revenue"] = purchases * order_value
        table["baseline_historical_clv_revenue"] = total / observed * lifespan
        table["baseline_spend_rate_revenue"] = total / observed * duration
        table["baseline_repeat_spend_rate_revenue"] = f * m / observed * duration
        table["baseline_last_period_revenue"] = calibration["recent_spend"].to_numpy()
    return table.reset_index(drop=True), retention


def _errors(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    diff = predicted - actual
    return float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff**2)))


def _spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
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


def _pct(predicted: float, actual: float) -> float:
    return float((predicted - actual) / actual * 100) if actual else float("nan")


def _revenue_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    mae, rmse = _errors(actual, predicted)
    return {
        "mae": mae,
        "rmse": rmse,
        "spearman": _spearman(actual, predicted),
        "gini": normalized_gini(actual, predicted),
        "top10_share": top_share(actual, predicted, 0.10),
        "top20_share": top_share(actual, predicted, 0.20),
        "total_predicted": float(predicted.sum()),
    }


def _count_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    mae, rmse = _errors(actual, predicted)
    return {
        "mae": mae,
        "rmse": rmse,
        "spearman": _spearman(actual, predicted),
        "total_predicted": float(predicted.sum()),
    }


def _skill(metrics: dict[str, float], kind: str, baselines: tuple[str, ...]) -> dict[str, float]:
    """``<kind>_mae_skill`` and ``_rmse_skill``: 1 - model error / best baseline error (> 0: the model wins)."""
    out = {}
    for error in ("mae", "rmse"):
        best = min(metrics[f"baseline_{b}_{kind}_{error}"] for b in baselines)
        out[f"{kind}_{error}_skill"] = 1 - metrics[f"{kind}_{error}"] / best if best > 0 else float("nan")
    return out


def _cumulative_errors(tracking: pd.DataFrame, calibration_end: dt.date | None) -> dict[str, float]:
    """% error of cumulative repeat purchases at the end of the data and at the end of calibration."""
    out = {"purchases_cumulative_pct_error": float("nan"), "purchases_cumulative_calibration_pct_error": float("nan")}
    if tracking.empty:
        return out
    last = tracking.iloc[-1]
    out["purchases_cumulative_pct_error"] = _pct(last["expected_cumulative"], last["actual_cumulative"])
    if calibration_end is not None:
        in_cal = tracking[pd.to_datetime(tracking["week"]) <= pd.Timestamp(calibration_end)]
        if not in_cal.empty:
            row = in_cal.iloc[-1]
            out["purchases_cumulative_calibration_pct_error"] = _pct(
                row["expected_cumulative"], row["actual_cumulative"]
            )
    return out


def frequency_table(holdout: pd.DataFrame) -> pd.DataFrame:
    """By calibration frequency: mean actual and predicted holdout purchases (and revenue with its errors)."""
    bins = np.minimum(holdout["frequency"].to_numpy(), 7).astype(int)
    frame = holdout.assign(frequency_bin=np.asarray(FREQUENCY_BINS)[bins])
    columns: dict[str, tuple[str, str]] = {
        "customers": ("customer_id", "size"),
        "actual_purchases": ("actual_purchases", "mean"),
        "predicted_purchases": ("predicted_purchases", "mean"),
    }
    if "actual_revenue" in frame.columns:
        frame["model_abs_error"] = (frame["predicted_revenue"] - frame["actual_revenue"]).abs()
        for b in BASELINES:
            frame[f"baseline_{b}_abs_error"] = (frame[f"baseline_{b}_revenue"] - frame["actual_revenue"]).abs()
        columns |= {
            "actual_revenue": ("actual_revenue", "mean"),
            "predicted_revenue": ("predicted_revenue", "mean"),
            "revenue_mae": ("model_abs_error", "mean"),
            **{f"baseline_{b}_revenue": (f"baseline_{b}_revenue", "mean") for b in BASELINES},
            **{f"baseline_{b}_revenue_mae": (f"baseline_{b}_abs_error", "mean") for b in BASELINES},
        }
    else:
        frame["model_abs_error"] = (frame["predicted_purchases"] - frame["actual_purchases"]).abs()
        columns["purchases_mae"] = ("model_abs_error", "mean")
        for b in PURCHASE_BASELINES:
            frame[f"baseline_{b}_abs_error"] = (frame[f"baseline_{b}_purchases"] - frame["actual_purchases"]).abs()
            columns[f"baseline_{b}_purchases"] = (f"baseline_{b}_purchases", "mean")
            columns[f"baseline_{b}_purchases_mae"] = (f"baseline_{b}_abs_error", "mean")
    table = frame.groupby("frequency_bin", sort=False).agg(**columns)
    return table.reindex([b for b in FREQUENCY_BINS if b in table.index]).reset_index()


def tracking_table(
    model: CLVModelParams, calibration: pd.DataFrame, weekly: pd.DataFrame, observation_end: dt.date
) -> pd.DataFrame:
    """Actual against expected repeat purchases of the calibration customers, week by week.

    Expected: the sum over customers born before the end of each week of E[X(t)] for a new customer,
    t being the time since their first purchase (as lifetimes' ``expected_cumulative_transactions``).
    """
    if weekly.empty:
        return pd.DataFrame(columns=["week", "actual", "expected", "actual_cumulative", "expected_cumulative"])
    unit_days = DAYS_PER_UNIT[model.spec.time_unit]
    births = pd.to_datetime(calibration["first_purchase"]).value_counts()
    birth_days = births.index.to_numpy(dtype="datetime64[D]")
    counts = births.to_numpy(dtype=np.float64)
    weeks = pd.to_datetime(weekly["week"]).to_numpy(dtype="datetime64[D]")
    ends = np.minimum(weeks + np.timedelta64(7, "D"), np.datetime64(observation_end) + np.timedelta64(1, "D"))
    elapsed = (ends[:, None] - birth_days[None, :]).astype(np.float64) / unit_days
    expected_by_birth = purchase.expected_purchases_new_customer(model.purchase, np.maximum(elapsed, 0.0))
    expected_cumulative = (expected_by_birth * counts[None, :]).sum(axis=1)
    actual = weekly["repeat_purchases"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "week": weekly["week"].to_numpy(),
            "actual": actual,
            "expected": np.diff(expected_cumulative, prepend=0.0),
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": expected_cumulative,
        }
    )


def isotonic_check(churned: np.ndarray, churn_risk: np.ndarray, seed: int = 20260101) -> tuple[float, float]:
    """Does an isotonic recalibration of the churn risk help? Fitted on a random half of the holdout
    customers and checked on the other half: the Brier score there, raw and recalibrated (NaN when the
    data does not allow it: fewer than 200 customers or one class only)."""
    if len(churned) < 200 or not 0 < churned.sum() < len(churned):
        return float("nan"), float("nan")
    order = np.random.default_rng(seed).permutation(len(churned))
    fit_rows, check_rows = order[: len(order) // 2], order[len(order) // 2 :]
    if not 0 < churned[fit_rows].sum() < len(fit_rows):
        return float("nan"), float("nan")
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        churn_risk[fit_rows], churned[fit_rows]
    )
    recalibrated = isotonic.predict(churn_risk[check_rows])
    return (
        float(brier_score_loss(churned[check_rows], churn_risk[check_rows])),
        float(brier_score_loss(churned[check_rows], recalibrated)),
    )


def validate(
    model: CLVModelParams,
    calibration: pd.DataFrame,
    period_length: float,
    weekly: pd.DataFrame | None = None,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
    full: pd.DataFrame | None = None,
) -> Validation:
    """Holdout metrics of ``model`` (fitted on the calibration period) and of the baselines.

    ``weekly`` (repeat purchases per week, from prepare) with the two dates adds the week-by-week
    tracking of cumulative purchases; ``full`` (the full-history summary) adds the holdout
    log-likelihood of the purchase model.
    """
    holdout, retention = holdout_predictions(model, calibration, period_length)
    actual_n = holdout["actual_purchases"].to_numpy()
    predicted_n = holdout["predicted_purchases"].to_numpy()
    metrics: dict[str, float] = {}
    metrics["purchases_mae"], metrics["purchases_rmse"] = _errors(actual_n, predicted_n)
    metrics["purchases_spearman"] = _spearman(actual_n, predicted_n)
    metrics["purchases_total_actual"] = float(actual_n.sum())
    metrics["purchases_total_predicted"] = float(predicted_n.sum())
    metrics["purchases_total_pct_error"] = _pct(predicted_n.sum(), actual_n.sum())
    metrics["purchases_total_abs_pct_error"] = abs(metrics["purchases_total_pct_error"])
    metrics["purchases_holdout_log_likelihood"] = (
        holdout_log_likelihood(model.purchase, calibration, full) if full is not None else float("nan")
    )
    for name in PURCHASE_BASELINES:
        baseline = holdout[f"baseline_{name}_purchases"].to_numpy()
        metrics |= {f"baseline_{name}_purchases_{k}": v for k, v in _count_metrics(actual_n, baseline).items()}
    metrics |= _skill(metrics, "purchases", PURCHASE_BASELINES)

    if weekly is not None and observation_end is not None:
        tracking = tracking_table(model, calibration, weekly, observation_end)
    else:
        tracking = pd.DataFrame(columns=["week", "actual", "expected", "actual_cumulative", "expected_cumulative"])
    metrics |= _cumulative_errors(tracking, calibration_end)

    churned = (actual_n == 0).astype(int)
    churn_risk = holdout["churn_risk"].to_numpy()
    has_both = 0 < churned.sum() < len(churned)
    metrics["churn_auc"] = float(roc_auc_score(churned, churn_risk)) if has_both else float("nan")
    metrics["churn_brier"] = float(brier_score_loss(churned, churn_risk))
    metrics["churn_rate_actual"] = float(churned.mean())
    if has_both:
        observed, predicted = calibration_curve(churned, churn_risk, n_bins=10, strategy="quantile")
        curve = pd.DataFrame({"mean_predicted": predicted, "observed": observed})
    else:
        curve = pd.DataFrame({"mean_predicted": [], "observed": []})

    metrics["churn_brier_check_raw"], metrics["churn_brier_check_isotonic"] = isotonic_check(churned, churn_risk)
    metrics["historical_clv_retention"] = retention

    if "actual_revenue" in holdout.columns:
        actual_rev = holdout["actual_revenue"].to_numpy()
        predicted_rev = holdout["predicted_revenue"].to_numpy()
        metrics["revenue_total_actual"] = float(actual_rev.sum())
        metrics["revenue_total_pct_error"] = _pct(predicted_rev.sum(), actual_rev.sum())
        metrics |= {f"revenue_{k}": v for k, v in _revenue_metrics(actual_rev, predicted_rev).items()}
        for name in BASELINES:
            baseline = holdout[f"baseline_{name}_revenue"].to_numpy()
            metrics |= {f"baseline_{name}_revenue_{k}": v for k, v in _revenue_metrics(actual_rev, baseline).items()}
        metrics |= _skill(metrics, "revenue", BASELINES)
    return Validation(
        holdout=holdout,
        metrics=metrics,
        by_frequency=frequency_table(holdout),
        tracking=tracking,
        churn_calibration=curve,
    )
