"""The paired bootstrap over customers of every contest metric, vectorised over the draws.

A draw resamples the n customers with replacement; it is held as weights (customer i appears ``w[i]``
times), drawn as one ``rng.integers(0, n, n)`` per draw, so the random stream is that of a loop over
draws. Every metric of every contender is computed on the same draws (one weight matrix, chunks of
:data:`CHUNK` draws, never draws x customers at once), so the interval of a difference between two
contenders is the percentile interval of the per-draw differences.

On a resample, copies of a customer are adjacent in the ranking (ties keep row order), so the weighted
formulas below equal the metrics of the expanded resample exactly: normalized Gini, top-k share (the
last customer of the top k counted for as many copies as fit), revenue MAE and churn AUC (ties count 1/2,
as :func:`sklearn.metrics.roc_auc_score`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK", "TOP_FRACTIONS", "bootstrap_metrics", "percentile_interval", "resample_weights"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int32]
CHUNK = 100
"""Draws held at once: 100 x 23,570 CDNOW customers is 19 MB per matrix."""
TOP_FRACTIONS = {"top10_share": 0.10, "top20_share": 0.20}


def resample_weights(n: int, draws: int, rng: np.random.Generator) -> Iterator[IntArray]:
    """How often each of ``n`` customers is drawn: an ``n x d`` integer matrix per chunk of ``d <= CHUNK``
    draws (customers in rows, so that reordering customers moves contiguous rows)."""
    for start in range(0, draws, CHUNK):
        size = min(CHUNK, draws - start)
        weights = np.empty((n, size), dtype=np.int32)
        for d in range(size):
            weights[:, d] = np.bincount(rng.integers(0, n, n), minlength=n)
        yield weights


def _held(weights: IntArray, order: NDArray[np.intp]) -> IntArray:
    """Weight held up to and including each position of ``order`` (exact integer sums)."""
    held = weights[order]
    np.cumsum(held, axis=0, out=held)
    return held


class _Ranking(NamedTuple):
    order: NDArray[np.intp]
    """Customers, highest score first (ties in row order)."""
    paying: NDArray[np.intp]
    """Positions in ``order`` of the customers with revenue: the only ones the sums below need."""


def _ranking(actual: FloatArray, score: FloatArray) -> _Ranking:
    order = np.argsort(-score, kind="stable")
    return _Ranking(order, np.flatnonzero(actual[order] != 0))


def _ranked(actual: FloatArray, ranking: _Ranking, weights: IntArray) -> dict[str, FloatArray]:
    """Per draw (column of ``weights``): the raw Gini and the top-k shares of ``actual`` in ``ranking``.

    With ``H`` the weight held up to and including a customer in the ranking, the sum of captured revenue
    over the resample is ``sum_j a_j w_j (n - H_j + (w_j + 1) / 2)``: only customers with revenue count.
    """
    n = actual.size
    customers = ranking.order[ranking.paying]
    h = _held(weights, ranking.order)[ranking.paying].astype(np.float64)
    a, w = actual[customers][:, None], weights[customers].astype(np.float64)
    aw = a * w
    total = aw.sum(axis=0)
    out = {"gini": np.sum(aw * (n - h + (w + 1) / 2), axis=0) / total / n - (n + 1) / (2 * n)}
    for name, fraction in TOP_FRACTIONS.items():
        k = max(round(fraction * n), 1)
        out[name] = np.sum(a * np.clip(k - (h - w), 0.0, w), axis=0) / total
    return out


class _RiskOrder(NamedTuple):
    order: NDArray[np.intp]
    """Customers by increasing churn risk."""
    buyers: NDArray[np.intp]
    """Positions in ``order`` of the customers who bought (did not churn)."""
    low: NDArray[np.intp]
    """For each buyer, the first position of its tie group (customers with the same risk) ..."""
    high: NDArray[np.intp]
    """... and one past its last."""


def _risk_order(churned: NDArray[np.bool_], risk: FloatArray) -> _RiskOrder:
    order = np.argsort(risk, kind="stable")
    ranked = risk[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], len(order)]
    group = np.repeat(np.arange(len(starts)), np.diff(ends, prepend=0))
    buyers = np.flatnonzero(~churned[order])
    return _RiskOrder(order, buyers, starts[group[buyers]], ends[group[buyers]])


def _auc(plan: _RiskOrder, weights: IntArray) -> FloatArray:
    """Weighted Mann-Whitney AUC of the churn risk for churning, per draw (ties count 1/2).

    Counted from the buyers' side (the smaller class on a typical holdout): for each buyer, the churned
    weight with a lower risk (a wrongly ordered pair) and half the churned weight with the same risk.
    """
    held = _held(weights, plan.order)
    w = weights[plan.order[plan.buyers]].astype(np.float64)
    bought = np.vstack([np.zeros((1, w.shape[1])), np.cumsum(w, axis=0)])  # buyers' weight before a buyer
    low_b, high_b = np.searchsorted(plan.buyers, plan.low), np.searchsorted(plan.buyers, plan.high)
    before = np.where((plan.low > 0)[:, None], held[np.maximum(plan.low - 1, 0)], 0).astype(np.float64)
    below = before - bought[low_b]
    tied = held[plan.high - 1] - before - (bought[high_b] - bought[low_b])
    negatives = bought[-1]
    pairs = (held[-1] - negatives) * negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, 1 - np.sum(w * (below + tied / 2), axis=0) / pairs, np.nan)


def bootstrap_metrics(
    actual: FloatArray,
    scores: dict[str, FloatArray],
    churned: NDArray[np.bool_],
    risks: dict[str, FloatArray],
    draws: int,
    rng: np.random.Generator,
) -> dict[str, dict[str, FloatArray]]:
    """Metric -> contender -> its value on each of ``draws`` resamples (the same resamples for all).

    ``gini`` (normalized) and the ``top10_share``/``top20_share`` of every score; the revenue ``mae`` of
    every score too; the ``churn_auc`` of every churn risk in ``risks``.
    """
    n = actual.size
    rankings = {name: _ranking(actual, s) for name, s in scores.items()}
    perfect = _ranking(actual, actual)
    risk_orders = {name: _risk_order(churned, r) for name, r in risks.items()}
    errors = np.stack([np.abs(s - actual) for s in scores.values()]) / n
    chunks: dict[str, dict[str, list[FloatArray]]] = {m: {k: [] for k in scores} for m in ("gini", *TOP_FRACTIONS)}
    chunks["mae"] = {k: [] for k in scores}
    chunks["churn_auc"] = {k: [] for k in risks}
    for weights in resample_weights(n, draws, rng):
        best = _ranked(actual, perfect, weights)["gini"]
        for name, ranking in rankings.items():
            ranked = _ranked(actual, ranking, weights)
            chunks["gini"][name].append(ranked["gini"] / best)
            for metric in TOP_FRACTIONS:
                chunks[metric][name].append(ranked[metric])
        for name, mae in zip(scores, np.einsum("sn,nd->sd", errors, weights), strict=True):
            chunks["mae"][name].append(mae)
        for name, plan in risk_orders.items():
            chunks["churn_auc"][name].append(_auc(plan, weights))
    return {m: {k: np.concatenate(v) for k, v in by.items()} for m, by in chunks.items()}


def percentile_interval(values: FloatArray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``values``."""
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
