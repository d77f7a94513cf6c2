"""Holdout metrics: their names, their direction, and the functions that compute them.

Metric names are stable: they are logged to MLflow, read by the gate and by ``clv compare``, and listed in
the docs' metrics reference. Spearman is reported but ranking is judged on the normalized Gini and the top-k
shares: on zero-inflated labels a predictor that ties every one-time buyer at 0 wins Spearman.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from pipeline.baselines import BASELINES, PURCHASE_BASELINES

__all__ = [
    "METRIC_NAMES",
    "MONEY_METRICS",
    "PURCHASE_METRICS",
    "REVENUE_METRICS",
    "Ranking",
    "Ranks",
    "auc",
    "average_ranks",
    "brier",
    "count_metrics",
    "errors",
    "metric_direction",
    "normalized_gini",
    "pct",
    "ranking",
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
    """MAE and RMSE; one temporary array besides the difference (the same operations, in place)."""
    diff = np.subtract(predicted, actual)
    deviation = np.abs(diff)
    mae = float(np.mean(deviation))
    return mae, float(np.sqrt(np.mean(np.square(diff, out=deviation))))


def spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    if np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return float("nan")
    return float(spearmanr(actual, predicted).statistic)


@dataclass(frozen=True)
class Ranks:
    """One array and its average ranks: what Spearman needs of it (see :func:`average_ranks`)."""

    values: np.ndarray
    ranks: np.ndarray
    """Average ranks, 1 for the lowest (``scipy.stats.rankdata(values)``)."""


@dataclass(frozen=True)
class Ranking(Ranks):
    """One array sorted once: what the ranking metrics need of it (see :func:`ranking`)."""

    order: np.ndarray
    """Row numbers from the highest value to the lowest (ties keep their order: a stable sort)."""


_TIE_SAMPLE = 4096


def _descending(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers from the highest value to the lowest, ties in row order (``argsort(-values,
    kind="stable")``), and the values in that order.

    numpy's stable sort of floats is a merge sort; on mostly distinct floats its default sort (a SIMD
    quicksort) takes half the time. So such floats are sorted with it, and the rows of each run of equal
    values are put back in row order by one integer sort of (run, row) keys: the order of the stable sort,
    exactly (tested). Where ties are common (a spaced sample of 4,096 values is under 3/4 distinct: counts,
    zeros) the quicksort is no faster and the runs are long, so those take the stable sort, as do arrays
    with NaN (which equals nothing, so its runs cannot be found) and other dtypes. The path chosen changes
    the time, never the order.
    """
    n = len(values)
    sample = values[:: max(1, n // _TIE_SAMPLE)]
    if values.dtype.kind != "f" or n >= 2**31 or len(np.unique(sample)) < 0.75 * len(sample) or np.isnan(values).any():
        order = np.argsort(-values, kind="stable")
        return order, values[order]
    order = np.argsort(-values)
    ordered = values[order]
    same = ordered[1:] == ordered[:-1]  # position i + 1 ties with position i
    if same.any():
        tied = np.zeros(n, dtype=bool)
        tied[1:] = same
        tied[:-1] |= same
        rows = np.flatnonzero(tied)
        del tied
        starts = np.ones(n, dtype=bool)
        np.logical_not(same, out=starts[1:])
        run = np.cumsum(starts, dtype=np.int32)[rows].astype(np.int64)
        del starts
        keys = run * n + order[rows]
        keys.sort()
        order[rows] = keys - run * n  # the runs stay where they were: only the rows within each are sorted
    return order, ordered


def ranking(values: np.ndarray) -> Ranking:
    """Sort ``values`` once (highest first, stable) and derive the average ranks from that order: the
    ranks equal ``scipy.stats.rankdata``'s exactly (tie groups get the mean of integer ranks)."""
    values = np.asarray(values)
    order, ordered = _descending(values)
    if len(values) < 2**31:  # row numbers as int32: half the memory of each ranking kept, the same rows
        order = order.astype(np.int32)
    same = _ties(ordered)
    del ordered  # not kept while the ranks are built
    return Ranking(values, _ranks_from_top(order, same), order)


def _ties(ordered: np.ndarray) -> np.ndarray:
    """``same[i]``: sorted position i + 1 holds the value of position i."""
    same: np.ndarray = ordered[1:] == ordered[:-1]
    return same


def _ranks_from_top(order: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Average ranks (1 for the lowest) from rows ``order`` taken highest value first, ``same`` marking the ties
    between neighbours in that order (:func:`_ties`): whatever the order within a run of ties, its rows share
    the run's mean rank.

    Positions s..e-1 from the top hold ascending ranks n-e+1..n-s, whose mean is (2n - s - e + 1) / 2 (for a
    run of one, n - s): exact integers over 2, so the same floats whichever way they are spread. With few
    runs (counts, many zeros) each run's mean is repeated over its rows; with many (mostly distinct values)
    every row gets n - s and only the tied positions are corrected. Either way the working memory is one
    array of the rows' length besides the ranks, not five (at 10M customers 0.25 GB less per ranking)."""
    n = len(order)
    ranks = np.empty(n)
    tied_pairs = int(np.count_nonzero(same))
    if tied_pairs >= n // 2:  # few runs: their bounds are short arrays
        starts = np.flatnonzero(~same) + 1
        starts = np.concatenate([[0], starts])
        lengths = np.diff(starts, append=n)
        ranks[order] = np.repeat((2 * n - 2 * starts - lengths + 1) / 2.0, lengths)
        return ranks
    ranks[order] = np.arange(n, 0, -1, dtype=np.float64)
    if tied_pairs:
        _tied_means(ranks, order, same)
    return ranks


def _tied_means(ranks: np.ndarray, order: np.ndarray, same: np.ndarray) -> None:
    """Give the rows of each run of ties (``same[i]``: position i + 1 ties with position i) their run's mean
    rank, from the tied positions alone, a part at a time."""
    n = len(order)
    tied = np.zeros(n, dtype=bool)
    tied[1:] = same
    tied[:-1] |= same
    positions = np.flatnonzero(tied)
    del tied
    first = np.ones(len(positions), dtype=bool)  # where a run starts, among the tied positions
    first[1:] = ~same[positions[1:] - 1]
    run = np.cumsum(first)
    run -= 1
    starts = positions[first]
    del first
    means = (2 * n - 2 * starts - np.bincount(run) + 1) / 2.0
    for part in range(0, len(positions), _PART):
        rows = slice(part, part + _PART)
        ranks[order[positions[rows]]] = means[run[rows]]


_PART = 1 << 20
"""Tied positions corrected at a time (their temporaries, not the rows')."""


def _counted_ranks(values: np.ndarray) -> np.ndarray | None:
    """Average ranks of whole numbers spanning at most ``len(values)`` by counting them (no sort), or None
    for other values. A value with ``b`` values below it and ``c`` equal to it has ranks b+1..b+c, mean
    (2b + c + 1) / 2: the same integer over 2 as :func:`ranking` computes, so the same float."""
    n = len(values)
    if n == 0 or values.dtype.kind not in "fiu":
        return None
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high) and high - low < n):  # NaN makes both NaN
        return None
    whole = values.astype(np.int64)
    if not np.array_equal(whole, values):  # fractions
        return None
    whole -= int(whole.min())
    counts = np.bincount(whole)
    below = np.cumsum(counts) - counts
    return ((2 * below + counts + 1) / 2.0)[whole]


def average_ranks(values: np.ndarray) -> Ranks:
    """The average ranks of ``values`` (``scipy.stats.rankdata``'s, exactly), without the stable order a
    :class:`Ranking` keeps: whole numbers (counts) are counted, other floats take numpy's fast unstable
    sort, since the mean rank of a run of ties does not depend on the order within it. Arrays with NaN
    take :func:`ranking`, whose ranks put NaN lowest."""
    values = np.asarray(values)
    counted = _counted_ranks(values)
    if counted is not None:
        return Ranks(values, counted)
    if values.dtype.kind != "f" or len(values) >= 2**31 or np.isnan(values).any():
        whole = ranking(values)
        return Ranks(whole.values, whole.ranks)
    order = np.argsort(-values)
    same = _ties(values[order])
    if len(values) < 2**31:  # as in ranking: half the memory while the ranks are built
        order = order.astype(np.int32)
    return Ranks(values, _ranks_from_top(order, same))


def _spearman_ranked(actual: Ranks, predicted: Ranks) -> float:
    """Spearman from two rankings: as ``scipy.stats.spearmanr`` computes it (Pearson of the average ranks)."""
    if len(actual.values) <= 1 or np.ptp(actual.values) == 0 or np.ptp(predicted.values) == 0:
        return float("nan")
    return _pearson(actual.ranks, predicted.ranks)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """``np.corrcoef(np.column_stack((x, y)), rowvar=False)[1, 0]``, bit for bit: numpy's steps on the same
    memory layout, centred in place instead of in the copy ``np.cov`` makes (160 MB at 10M customers)."""
    stacked = np.column_stack((x, y)).astype(np.float64, copy=False).T  # 2 x N, as np.cov sees it
    stacked -= stacked.mean(axis=1)[:, None]
    c = np.dot(stacked, stacked.T.conj())
    c *= np.true_divide(1, stacked.shape[1] - 1)
    stddev = np.sqrt(np.diag(c).real)
    c /= stddev[:, None]
    c /= stddev[None, :]
    np.clip(c.real, -1, 1, out=c.real)
    return float(c[1, 0])


def _gini_ordered(actual: np.ndarray, order: np.ndarray) -> float:
    """Gini of ``actual`` when customers are taken in ``order`` (highest score first)."""
    captured = np.cumsum(actual[order]) / actual.sum()
    n = len(actual)
    return float(captured.sum() / n - (n + 1) / (2 * n))


def _gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Gini of ``actual`` when customers are ranked by ``score`` (highest first; ties keep their order)."""
    return _gini_ordered(actual, np.argsort(-score, kind="stable"))


def normalized_gini(actual: np.ndarray, score: np.ndarray) -> float:
    """1 for a perfect ranking of actual revenue, 0 for a random one."""
    if len(actual) == 0 or actual.sum() <= 0:
        return float("nan")
    return _gini(actual, score) / _gini(actual, actual)


def _top_share_ordered(actual: np.ndarray, order: np.ndarray, fraction: float) -> float:
    if len(actual) == 0 or actual.sum() <= 0:
        return float("nan")
    k = max(round(fraction * len(actual)), 1)
    return float(actual[order[:k]].sum() / actual.sum())


def top_share(actual: np.ndarray, score: np.ndarray, fraction: float) -> float:
    """Share of total actual revenue held by the top ``fraction`` of customers by ``score``."""
    return _top_share_ordered(actual, np.argsort(-score, kind="stable"), fraction)


def brier(churned: np.ndarray, risk: np.ndarray) -> float:
    """Brier score of 0/1 labels against probabilities, as scikit-learn's ``brier_score_loss`` computes it
    (one-hot columns [1 - y, y] against [1 - p, p], summed per row, averaged, halved): equal bit for bit
    (tested), without its input checks, whose ``np.unique`` of the labels took most of its 0.7 s on 5M rows."""
    y = np.asarray(churned, dtype=np.float64)
    p = np.asarray(risk, dtype=np.float64)
    per_row = np.subtract(1, y)  # the same operations as (1 - y - (1 - p))^2 + (y - p)^2, two arrays in place
    other = np.subtract(1, p)
    np.subtract(per_row, other, out=per_row)
    np.square(per_row, out=per_row)
    np.subtract(y, p, out=other)
    np.square(other, out=other)
    per_row += other
    return float(np.mean(per_row) * 0.5)


def auc(churned: np.ndarray, risk: np.ndarray) -> float:
    """ROC AUC of ``risk`` for 0/1 labels, as the Mann-Whitney statistic of the average ranks:
    (sum of the positives' ranks - n1 (n1 + 1) / 2) / (n1 n0), which is the area scikit-learn's
    ``roc_auc_score`` adds up by trapezoids (ties as diagonal steps): equal to it within 1e-12 (tested),
    in a third of its time. The ranks are halves, so their sum is exact below 2^52 and the result is
    rounded once. NaN without both labels, or with a NaN risk."""
    positives = np.asarray(churned) == 1
    n1 = int(positives.sum())
    n0 = len(positives) - n1
    if n1 == 0 or n0 == 0 or np.isnan(risk).any():
        return float("nan")
    ranks = average_ranks(np.asarray(risk, dtype=np.float64)).ranks
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pct(predicted: float, actual: float) -> float:
    return float((predicted - actual) / actual * 100) if actual else float("nan")


def revenue_metrics(
    actual: np.ndarray | Ranking, predicted: np.ndarray, ranked: Ranking | None = None
) -> dict[str, float]:
    """MAE, RMSE, Spearman, normalized Gini, top-10% and top-20% shares and the predicted total.

    One sort of ``predicted`` serves Spearman, Gini and both top shares; ``actual`` may be passed as its
    :func:`ranking` to sort it once for several predictors (the model's and the baselines'). The numbers are
    those of :func:`spearman`, :func:`normalized_gini` and :func:`top_share` (tested equal).
    """
    actual_ranked = actual if isinstance(actual, Ranking) else ranking(actual)
    values = actual_ranked.values
    predicted_ranked = ranked if ranked is not None else ranking(predicted)
    mae, rmse = errors(values, predicted)
    if len(values) == 0 or values.sum() <= 0:
        gini = float("nan")
    else:
        gini = _gini_ordered(values, predicted_ranked.order) / _gini_ordered(values, actual_ranked.order)
    return {
        "mae": mae,
        "rmse": rmse,
        "spearman": _spearman_ranked(actual_ranked, predicted_ranked),
        "gini": gini,
        "top10_share": _top_share_ordered(values, predicted_ranked.order, 0.10),
        "top20_share": _top_share_ordered(values, predicted_ranked.order, 0.20),
        "total_predicted": float(predicted.sum()),
    }


def count_metrics(actual: np.ndarray | Ranks, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Spearman and the predicted total; ``actual`` may be passed as its :func:`average_ranks` (or
    :func:`ranking`), to rank it once for several predictors. Spearman needs only the ranks, not the order."""
    actual_ranked = actual if isinstance(actual, Ranks) else average_ranks(actual)
    mae, rmse = errors(actual_ranked.values, predicted)
    return {
        "mae": mae,
        "rmse": rmse,
        "spearman": _spearman_ranked(actual_ranked, average_ranks(predicted)),
        "total_predicted": float(predicted.sum()),
    }


def skill(metrics: dict[str, float], kind: str, baselines: tuple[str, ...]) -> dict[str, float]:
    """``<kind>_mae_skill`` and ``_rmse_skill``: 1 - model error / best baseline error (> 0: the model wins)."""
    out = {}
    for error in ("mae", "rmse"):
        best = min(metrics[f"baseline_{b}_{kind}_{error}"] for b in baselines)
        out[f"{kind}_{error}_skill"] = 1 - metrics[f"{kind}_{error}"] / best if best > 0 else float("nan")
    return out
