"""Validate stage: the calibration-period model against the holdout, side by side with the baselines
(:mod:`pipeline.baselines`), measured by the metrics of :mod:`pipeline.metrics`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import purchase, spend
from models.bundle import CLVModelParams
from models.clv import DAYS_PER_UNIT
from models.histories import history_codes, in_chunks, workers
from models.purchase import holdout_log_likelihood
from models.spend import SpendParams
from pipeline.allocator import give_back, handing_back
from pipeline.baselines import BASELINES, PURCHASE_BASELINES, lifespan
from pipeline.metrics import auc, brier, count_metrics, errors, pct, revenue_metrics, skill
from pipeline.ranks import Groups, Ranking, average_ranks, ranking

FREQUENCY_BINS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "7+")


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


def _purchase_baselines(
    retained_time: float, f: np.ndarray, observed: np.ndarray, duration: np.ndarray
) -> dict[str, np.ndarray]:
    """The purchase baselines' holdout predictions (:mod:`pipeline.baselines`), elementwise."""
    purchases_observed = f + 1
    return {
        "baseline_historical_purchases": purchases_observed / observed * retained_time,
        "baseline_purchase_rate_purchases": purchases_observed / observed * duration,
        "baseline_repeat_purchase_rate_purchases": f / observed * duration,
    }


def _revenue(
    spend_params: SpendParams | None,
    retained_time: float,
    f: np.ndarray,
    m: np.ndarray,
    total: np.ndarray,
    observed: np.ndarray,
    duration: np.ndarray,
    purchases: np.ndarray,
) -> dict[str, np.ndarray]:
    """The model's expected order value and holdout revenue, and the revenue baselines', elementwise."""
    order_value = spend.expected_order_value(spend_params, f, m)
    return {
        "expected_order_value": order_value,
        "expected_revenue": purchases * order_value,
        "baseline_historical_clv_revenue": total / observed * retained_time,
        "baseline_spend_rate_revenue": total / observed * duration,
        "baseline_repeat_spend_rate_revenue": f * m / observed * duration,
    }


def holdout_histories(calibration: pd.DataFrame) -> Groups:
    """The calibration customers grouped by (history, holdout length): the purchase model's predictions and the
    purchase baselines are equal within each group."""
    columns = ("frequency", "recency", "T", "duration_holdout")
    rows, codes = history_codes(*(calibration[c].to_numpy(dtype=np.float64) for c in columns))
    # kept through the validation's blocks: as int32 (below 2^31 rows), 40 MB less at 10M customers
    return rows, codes.astype(np.int32) if len(codes) < 2**31 else codes


def holdout_predictions(
    model: CLVModelParams, calibration: pd.DataFrame, period_length: float, histories: Groups | None = None
) -> tuple[pd.DataFrame, float]:
    """Predictions of the calibration model for the holdout, with the actuals and the baselines.

    ``period_length`` is one merge period (a day or a week) in the model's time unit. Also returns the
    retention rate used by the historical baselines. Without a spend model (or amounts) the table has no
    money columns. ``histories``: :func:`holdout_histories` of ``calibration``, when the caller has them.
    """
    f = calibration["frequency"].to_numpy(dtype=np.float64)
    r = calibration["recency"].to_numpy(dtype=np.float64)
    t = calibration["T"].to_numpy(dtype=np.float64)
    duration = calibration["duration_holdout"].to_numpy(dtype=np.float64)
    # purchase-model quantities once per distinct (history, holdout length): the same numbers, customer by customer
    rows, codes = histories if histories is not None else holdout_histories(calibration)

    def predicted(hf: np.ndarray, hr: np.ndarray, ht: np.ndarray, hd: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "purchases": purchase.expected_purchases(model.purchase, hd, hf, hr, ht),
            "p_alive": purchase.p_alive(model.purchase, hf, hr, ht),
            "churn_risk": purchase.p_no_purchase(model.purchase, hd, hf, hr, ht),
        }

    by_history = in_chunks(predicted, f[rows], r[rows], t[rows], duration[rows])  # chunks on every core
    purchases = by_history["purchases"][codes]
    observed = t + period_length
    retention, retained_time = lifespan(calibration, float(duration[0])) if len(duration) else (1.0, 0.0)
    has_spend = model.spend is not None and "monetary_value" in calibration.columns
    summary = ["frequency", "recency", "T", *(["monetary_value", "total_spend"] if has_spend else [])]
    # one frame from whole columns, none copied: assigning an array to a frame's column copies it (0.09 s and
    # 40 MB a column at 5M customers), and the calibration's columns are shared copy-on-write
    columns: dict[str, object] = {c: calibration[c] for c in ["customer_id", *summary, "duration_holdout"]}
    columns["actual_purchases"] = calibration["frequency_holdout"]
    columns["expected_purchases"] = purchases
    columns["p_alive"] = by_history["p_alive"][codes]
    columns["churn_risk"] = by_history["churn_risk"][codes]
    # elementwise, chunk by chunk on every core: the same numbers, and temporaries of a chunk, not of a column
    columns |= in_chunks(lambda *c: _purchase_baselines(retained_time, *c), f, observed, duration)
    columns["baseline_last_period_purchases"] = calibration["recent_purchases"].astype(np.float64)
    if has_spend:
        m = calibration["monetary_value"].to_numpy(dtype=np.float64)
        total = calibration["total_spend"].to_numpy(dtype=np.float64)
        money = in_chunks(
            lambda *c: _revenue(model.spend, retained_time, *c), f, m, total, observed, duration, purchases
        )
        columns["actual_revenue"] = calibration["revenue_holdout"]
        columns |= money
        columns["baseline_last_period_revenue"] = calibration["recent_spend"]
    table = pd.DataFrame(columns, index=calibration.index, copy=False)
    return table.reset_index(drop=True), retention


def _cumulative_errors(tracking: pd.DataFrame, calibration_end: dt.date | None) -> dict[str, float]:
    """% error of cumulative repeat purchases at the end of the data and at the end of calibration."""
    out = {"purchases_cumulative_pct_error": float("nan"), "purchases_cumulative_calibration_pct_error": float("nan")}
    if tracking.empty:
        return out
    last = tracking.iloc[-1]
    out["purchases_cumulative_pct_error"] = pct(last["expected_cumulative"], last["actual_cumulative"])
    if calibration_end is not None:
        in_cal = tracking[pd.to_datetime(tracking["week"]) <= pd.Timestamp(calibration_end)]
        if not in_cal.empty:
            row = in_cal.iloc[-1]
            out["purchases_cumulative_calibration_pct_error"] = pct(
                row["expected_cumulative"], row["actual_cumulative"]
            )
    return out


def frequency_table(holdout: pd.DataFrame) -> pd.DataFrame:
    """By calibration frequency: mean actual and predicted holdout purchases (and revenue with its errors)."""
    # grouped by the bin's number, named afterwards: no column of 5M texts to build and hash
    bins = pd.Series(np.minimum(holdout["frequency"].to_numpy(), 7).astype(int), index=holdout.index)
    by_bin = holdout.groupby(bins.rename("frequency_bin"))

    def mean(column: str) -> pd.Series:
        return by_bin[column].mean()

    def mae(predicted: str, actual: str) -> pd.Series:
        # each absolute error built, averaged per bin and let go in turn: one extra column at a time
        return (holdout[predicted] - holdout[actual]).abs().groupby(bins.rename("frequency_bin")).mean()

    table = {"customers": by_bin.size(), "actual_purchases": mean("actual_purchases")}
    table["expected_purchases"] = mean("expected_purchases")
    if "actual_revenue" in holdout.columns:
        table |= {"actual_revenue": mean("actual_revenue"), "expected_revenue": mean("expected_revenue")}
        table["revenue_mae"] = mae("expected_revenue", "actual_revenue")
        table |= {f"baseline_{b}_revenue": mean(f"baseline_{b}_revenue") for b in BASELINES}
        table |= {f"baseline_{b}_revenue_mae": mae(f"baseline_{b}_revenue", "actual_revenue") for b in BASELINES}
    else:
        table["purchases_mae"] = mae("expected_purchases", "actual_purchases")
        for b in PURCHASE_BASELINES:
            table[f"baseline_{b}_purchases"] = mean(f"baseline_{b}_purchases")
            table[f"baseline_{b}_purchases_mae"] = mae(f"baseline_{b}_purchases", "actual_purchases")
    frame = pd.DataFrame(table)
    frame.index = pd.Index(np.asarray(FREQUENCY_BINS)[frame.index.to_numpy()], name="frequency_bin")
    return frame.reset_index()


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
    from sklearn.isotonic import IsotonicRegression  # imported where used, as in _churn_metrics

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
        brier(churned[check_rows], churn_risk[check_rows]),
        brier(churned[check_rows], recalibrated),
    )


def _purchase_metrics(holdout: pd.DataFrame, histories: Groups | None = None) -> dict[str, float]:
    """Holdout purchases: the model's errors and totals, the purchase baselines' and the skill over them.
    ``histories`` (:func:`holdout_histories`): the predictions are ranked by their distinct histories."""
    actual_n = holdout["actual_purchases"].to_numpy()
    predicted_n = holdout["expected_purchases"].to_numpy()
    metrics: dict[str, float] = {}
    metrics["purchases_mae"], metrics["purchases_rmse"] = errors(actual_n, predicted_n)
    actual_ranked = average_ranks(actual_n)  # ranked once for the model and every baseline
    metrics["purchases_spearman"] = count_metrics(actual_ranked, predicted_n, histories)["spearman"]
    metrics["purchases_total_actual"] = float(actual_n.sum())
    metrics["purchases_total_predicted"] = float(predicted_n.sum())
    metrics["purchases_total_pct_error"] = pct(predicted_n.sum(), actual_n.sum())
    metrics["purchases_total_abs_pct_error"] = abs(metrics["purchases_total_pct_error"])
    for name in PURCHASE_BASELINES:
        baseline = holdout[f"baseline_{name}_purchases"].to_numpy()
        counts = count_metrics(actual_ranked, baseline, histories)
        metrics |= {f"baseline_{name}_purchases_{k}": v for k, v in counts.items()}
    return metrics | skill(metrics, "purchases", PURCHASE_BASELINES)


def _churn_metrics(
    churned: np.ndarray, churn_risk: np.ndarray, histories: Groups | None = None
) -> tuple[dict[str, float], pd.DataFrame]:
    """Churn risk against "no holdout purchase": AUC, Brier, the isotonic check, and the calibration curve.
    ``histories`` (:func:`holdout_histories`): the risk is ranked by its distinct histories."""
    # scikit-learn is imported where used: scoring, promoting and serving never validate, and skip its import
    from sklearn.calibration import calibration_curve

    has_both = 0 < churned.sum() < len(churned)
    metrics = {
        "churn_auc": auc(churned, churn_risk, histories) if has_both else float("nan"),
        "churn_brier": brier(churned, churn_risk),
        "churn_rate_actual": float(churned.mean()),
    }
    if has_both:
        observed, predicted = calibration_curve(churned, churn_risk, n_bins=10, strategy="quantile")
        curve = pd.DataFrame({"mean_predicted": predicted, "observed": observed})
    else:
        curve = pd.DataFrame({"mean_predicted": [], "observed": []})
    metrics["churn_brier_check_raw"], metrics["churn_brier_check_isotonic"] = isotonic_check(churned, churn_risk)
    return metrics, curve


_MODEL = "model"
_REVENUE_TASKS: tuple[tuple[str, ...], ...] = ((_MODEL,), BASELINES[:2], *((name,) for name in BASELINES[2:]))
"""The revenue metrics' predictors, in tasks run side by side: the model, the historical CLV with the spend rate
(one rate times two durations: the second is sorted along the first's order), and each other baseline."""


def _revenue_part(
    holdout: pd.DataFrame, actual: Callable[[], Ranking], predictors: tuple[str, ...]
) -> dict[str, float]:
    """The revenue metrics of the model (:data:`_MODEL`) or of baselines, against the actual revenue's ranking
    (``actual()``, sorted once for them all)."""
    metrics: dict[str, float] = {}
    previous: Ranking | None = None
    for name in predictors:
        prefix = "revenue" if name == _MODEL else f"baseline_{name}_revenue"
        predicted = holdout["expected_revenue" if name == _MODEL else prefix].to_numpy()
        previous = ranking(predicted, like=previous)
        metrics |= {f"{prefix}_{k}": v for k, v in revenue_metrics(actual(), predicted, previous).items()}
    return metrics


def _revenue_tasks(pool: ThreadPoolExecutor, holdout: pd.DataFrame) -> list[Future[dict[str, float]]]:
    """The revenue metrics' tasks, after the actual revenue's ranking they wait for: submitted first, it starts
    before them (the pool's queue is FIFO), and is let go with the last of them (only they hold it)."""
    actual = pool.submit(ranking, holdout["actual_revenue"].to_numpy())
    return [pool.submit(_revenue_part, holdout, actual.result, task) for task in _REVENUE_TASKS]


def _revenue_totals(holdout: pd.DataFrame) -> dict[str, float]:
    actual, predicted = holdout["actual_revenue"].to_numpy(), holdout["expected_revenue"].to_numpy()
    return {"revenue_total_actual": float(actual.sum()), "revenue_total_pct_error": pct(predicted.sum(), actual.sum())}


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
    with handing_back():
        return _validation(model, calibration, period_length, weekly, calibration_end, observation_end, full)


def _validation(
    model: CLVModelParams,
    calibration: pd.DataFrame,
    period_length: float,
    weekly: pd.DataFrame | None,
    calibration_end: dt.date | None,
    observation_end: dt.date | None,
    full: pd.DataFrame | None,
) -> Validation:
    histories = holdout_histories(calibration)
    holdout, retention = holdout_predictions(model, calibration, period_length, histories)
    give_back()  # the predictions' chunks, freed by the worker threads, not kept beside the blocks below
    actual_n = holdout["actual_purchases"].to_numpy()
    # The blocks below read the holdout and write nothing shared: they run side by side, one per core (their
    # sorts and numpy loops release the GIL), and give the numbers they give one after the other.
    money = "actual_revenue" in holdout.columns
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        purchases = pool.submit(_purchase_metrics, holdout, histories)
        revenue = _revenue_tasks(pool, holdout) if money else []
        churned = (actual_n == 0).astype(np.int8)  # 0 and 1: the same numbers as int64, an eighth of the memory
        churn = pool.submit(_churn_metrics, churned, holdout["churn_risk"].to_numpy(), histories)
        likelihood = (
            pool.submit(holdout_log_likelihood, model.purchase, calibration, full) if full is not None else None
        )
        tracked = (
            pool.submit(tracking_table, model, calibration, weekly, observation_end)
            if weekly is not None and observation_end is not None
            else None
        )
        by_frequency = pool.submit(frequency_table, holdout)
        del histories  # each task lets go of what it reads when it is done: not kept here until the last one
        revenue_parts = [part.result() for part in revenue]
        del revenue
        metrics = purchases.result()
        metrics["purchases_holdout_log_likelihood"] = likelihood.result() if likelihood is not None else float("nan")
        if tracked is not None:
            tracking = tracked.result()
        else:
            tracking = pd.DataFrame(columns=["week", "actual", "expected", "actual_cumulative", "expected_cumulative"])
        metrics |= _cumulative_errors(tracking, calibration_end)
        churn_metrics, curve = churn.result()
        metrics |= churn_metrics
        metrics["historical_clv_retention"] = retention
        if money:
            metrics |= _revenue_totals(holdout)
            for part in revenue_parts:
                metrics |= part
            metrics |= skill(metrics, "revenue", BASELINES)
    return Validation(
        holdout=holdout,
        metrics=metrics,
        by_frequency=by_frequency.result(),
        tracking=tracking,
        churn_calibration=curve,
    )
