"""The champion/challenger contest: a challenger replaces the champion only on an honest, significant win.

The decision uses one holdout that neither contender saw. Guard-rails first (revenue MAE, predicted
total, churn AUC), then the paired bootstrap over customers of the normalized-Gini gain: every draw
resamples the customers once and scores every contender on that same resample, so the interval of the
gain is the interval of a difference, not the overlap of two intervals. The ranking metrics follow the
pipeline's validate stage (normalized Gini, top-k share); Spearman is left out (ties on zero-inflated
revenue game it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

__all__ = ["ContestResult", "ContestRules", "contest", "normalized_gini", "top_share"]

FloatArray = NDArray[np.float64]


def _gini_sum(actual: FloatArray, order: NDArray[np.intp], weights: FloatArray) -> float:
    """Sum over the (weighted) ranked sample of captured revenue, for a sample holding customer i
    ``weights[i]`` times and ranked by ``order`` (copies of one customer are adjacent)."""
    a, w = actual[order], weights[order]
    before = np.cumsum(a * w) - a * w
    return float(np.sum(w * before + a * w * (w + 1) / 2))


def _weighted_gini(actual: FloatArray, order: NDArray[np.intp], weights: FloatArray) -> float:
    n, total = float(weights.sum()), float((actual * weights).sum())
    return _gini_sum(actual, order, weights) / total / n - (n + 1) / (2 * n)


def _ranking(score: FloatArray) -> NDArray[np.intp]:
    return np.argsort(-score, kind="stable")


def normalized_gini(actual: FloatArray, score: FloatArray) -> float:
    """Gini of ``actual`` ranked by ``score`` (highest first, ties in row order) over the perfect one's.

    The same definition as the pipeline's validate stage: 1 ranks perfectly, 0 at random.
    """
    y = np.asarray(actual, dtype=np.float64)
    if len(y) == 0 or y.sum() <= 0:
        return float("nan")
    ones = np.ones(len(y))
    return _weighted_gini(y, _ranking(np.asarray(score, dtype=np.float64)), ones) / _weighted_gini(y, _ranking(y), ones)


def top_share(actual: FloatArray, score: FloatArray, fraction: float) -> float:
    """Share of total ``actual`` held by the top ``fraction`` of customers by ``score``."""
    y = np.asarray(actual, dtype=np.float64)
    if len(y) == 0 or y.sum() <= 0:
        return float("nan")
    k = max(round(fraction * len(y)), 1)
    return float(y[_ranking(np.asarray(score, dtype=np.float64))[:k]].sum() / y.sum())


@dataclass(frozen=True)
class ContestRules:
    """Guard-rails and the bootstrap of the champion/challenger contest."""

    mae_tolerance: float = 0.05
    """The challenger's revenue MAE may be at most this fraction above the champion's."""
    total_tolerance: float = 0.10
    """|challenger's predicted total / actual total - 1| at most this."""
    draws: int = 1000
    level: float = 0.95


@dataclass(frozen=True)
class ContestResult:
    """Every number the decision used, and the decision with its reason."""

    challenger_wins: bool
    reason: str
    mae: dict[str, float]
    total_ratio: dict[str, float]
    churn_auc: dict[str, float]
    gini: dict[str, float]
    gini_interval: dict[str, tuple[float, float]]
    top10_share: dict[str, float]
    gini_gain: float
    gini_gain_interval: tuple[float, float]
    best_baseline: str
    guard_rails: dict[str, bool]
    rules: ContestRules

    def as_metrics(self) -> dict[str, float]:
        """Flat ``<metric>_<contender>`` numbers, for MLflow or a summary."""
        out: dict[str, float] = {"challenger_wins": float(self.challenger_wins), "gini_gain": self.gini_gain}
        out["gini_gain_lower"], out["gini_gain_upper"] = self.gini_gain_interval
        for name, values in (
            ("mae", self.mae),
            ("total_ratio", self.total_ratio),
            ("churn_auc", self.churn_auc),
            ("gini", self.gini),
            ("top10_share", self.top10_share),
        ):
            out |= {f"{name}_{who}": v for who, v in values.items()}
        for who, (low, high) in self.gini_interval.items():
            out |= {f"gini_lower_{who}": low, f"gini_upper_{who}": high}
        return out


def _auc(churned: NDArray[np.bool_], risk: FloatArray) -> float:
    if churned.all() or not churned.any():
        return float("nan")
    return float(roc_auc_score(churned, risk))


def _bootstrap_ginis(
    actual: FloatArray, scores: dict[str, FloatArray], draws: int, rng: np.random.Generator
) -> dict[str, FloatArray]:
    """Normalized Gini of each score on ``draws`` resamples of the customers (the same resamples for all)."""
    n = len(actual)
    orders = {name: _ranking(s) for name, s in scores.items()}
    perfect = _ranking(actual)
    out = {name: np.empty(draws) for name in scores}
    for d in range(draws):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        best = _weighted_gini(actual, perfect, weights)
        for name, order in orders.items():
            out[name][d] = _weighted_gini(actual, order, weights) / best
    return out


def _guard_rails(
    mae: dict[str, float], total_ratio: dict[str, float], auc: dict[str, float], chosen: ContestRules
) -> tuple[dict[str, bool], list[str]]:
    """Which guard-rails hold, and a sentence for each that fails."""
    guards = {
        "mae": mae["challenger"] <= (1 + chosen.mae_tolerance) * mae["champion"],
        "total": abs(total_ratio["challenger"] - 1) <= chosen.total_tolerance,
        "churn_auc": bool(auc["challenger"] >= auc["champion"]),
    }
    failed = [
        *(
            [f"MAE {mae['challenger']:.4g} > {1 + chosen.mae_tolerance:g} x champion's {mae['champion']:.4g}"]
            if not guards["mae"]
            else []
        ),
        *(
            [f"predicted/actual total {total_ratio['challenger']:.4g} outside 1 +/- {chosen.total_tolerance:g}"]
            if not guards["total"]
            else []
        ),
        *([f"churn AUC {auc['challenger']:.4g} < champion's {auc['champion']:.4g}"] if not guards["churn_auc"] else []),
    ]
    return guards, failed


def _intervals(
    y: FloatArray, scores: dict[str, FloatArray], chosen: ContestRules, rng: np.random.Generator
) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Paired bootstrap intervals of every score's normalized Gini, and of the challenger's gain over the champion."""
    boot = _bootstrap_ginis(y, scores, chosen.draws, rng)
    tail = (1 - chosen.level) / 2 * 100
    interval = {k: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) for k, v in boot.items()}
    gain = boot["challenger"] - boot["champion"]
    return interval, (float(np.percentile(gain, tail)), float(np.percentile(gain, 100 - tail)))


def _accuracy(
    actual: pd.DataFrame, contenders: dict[str, FloatArray], champion: pd.DataFrame, challenger: pd.DataFrame
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Revenue MAE and predicted/actual total of each contender, and their churn AUC."""
    y = actual["revenue"].to_numpy(dtype=np.float64)
    churned = actual["purchases"].to_numpy() <= 0
    mae = {k: float(np.mean(np.abs(v - y))) for k, v in contenders.items()}
    total_ratio = {k: float(v.sum() / y.sum()) for k, v in contenders.items()}
    auc = {
        "champion": _auc(churned, champion["churn_risk"].to_numpy(dtype=np.float64)),
        "challenger": _auc(churned, challenger["churn_risk"].to_numpy(dtype=np.float64)),
    }
    return mae, total_ratio, auc


def _noise(gain_point: float, gain_interval: tuple[float, float], chosen: ContestRules) -> list[str]:
    """The sentence for a Gini gain whose interval does not lie above 0 (none when it does)."""
    if gain_interval[0] > 0:
        return []
    return [
        f"Gini gain {gain_point:+.4f} not above the noise: {chosen.level:.0%} interval "
        f"[{gain_interval[0]:+.4f}, {gain_interval[1]:+.4f}] includes 0 or lies below it"
    ]


def contest(
    actual: pd.DataFrame,
    champion: pd.DataFrame,
    challenger: pd.DataFrame,
    baselines: dict[str, FloatArray],
    rng: np.random.Generator,
    rules: ContestRules | None = None,
) -> ContestResult:
    """Does the challenger replace the champion on this holdout?

    ``actual`` has the holdout ``revenue`` and ``purchases`` (churned = no purchase); ``champion`` and
    ``challenger`` have ``expected_revenue`` and ``churn_risk``; ``baselines`` are revenue predictions
    (reported, not contenders); all with the same customers in the same order. The challenger wins only
    if the guard-rails hold (MAE at most ``1 + mae_tolerance`` times the champion's, total within
    ``total_tolerance``, churn AUC at least the champion's) and the lower bound of the paired bootstrap
    interval (customers resampled) of its normalized-Gini gain over the champion is above 0.
    """
    chosen = rules or ContestRules()
    if not (actual.index.equals(champion.index) and actual.index.equals(challenger.index)):
        raise ValueError("actual, champion and challenger must have the same customers in the same order")
    y = actual["revenue"].to_numpy(dtype=np.float64)
    if len(y) == 0 or y.sum() <= 0:
        raise ValueError("the holdout has no revenue: no contest")
    contenders = {
        "champion": champion["expected_revenue"].to_numpy(dtype=np.float64),
        "challenger": challenger["expected_revenue"].to_numpy(dtype=np.float64),
    }
    scores = contenders | {f"baseline_{k}": np.asarray(v, dtype=np.float64) for k, v in baselines.items()}
    mae, total_ratio, auc = _accuracy(actual, contenders, champion, challenger)
    gini = {k: normalized_gini(y, v) for k, v in scores.items()}
    top10 = {k: top_share(y, v, 0.10) for k, v in scores.items()}
    interval, gain_interval = _intervals(y, scores, chosen, rng)
    names = [k for k in scores if k.startswith("baseline_")]
    best_baseline = max(names, key=lambda k: gini[k]) if names else ""
    guards, failed = _guard_rails(mae, total_ratio, auc, chosen)
    gain_point = gini["challenger"] - gini["champion"]
    failed += _noise(gain_point, gain_interval, chosen)
    wins = not failed
    reason = (
        f"challenger wins: Gini {gini['challenger']:.4f} vs {gini['champion']:.4f}, gain {gain_point:+.4f} "
        f"({chosen.level:.0%} interval [{gain_interval[0]:+.4f}, {gain_interval[1]:+.4f}]), guard-rails hold"
        if wins
        else "champion keeps: " + "; ".join(failed)
    )
    return ContestResult(
        challenger_wins=wins,
        reason=reason,
        mae=mae,
        total_ratio=total_ratio,
        churn_auc=auc,
        gini=gini,
        gini_interval=interval,
        top10_share=top10,
        gini_gain=gain_point,
        gini_gain_interval=gain_interval,
        best_baseline=best_baseline,
        guard_rails=guards,
        rules=chosen,
    )
