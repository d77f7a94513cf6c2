"""The champion/challenger contest: a challenger replaces the champion only on an honest, significant win.

The decision uses one holdout that neither contender saw. Guard-rails first (revenue MAE, predicted
total, churn AUC), then the paired bootstrap over customers of the normalized-Gini gain: every draw
resamples the customers once and scores every contender on that same resample, so the interval of the
gain is the interval of a difference, not the overlap of two intervals. The same draws give the intervals
of every reported metric (Gini, top-10%/20% share, MAE, churn AUC; :mod:`models.contest_bootstrap`). The
ranking metrics follow the pipeline's validate stage (normalized Gini, top-k share); Spearman is left out
(ties on zero-inflated revenue game it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.contest_bootstrap import bootstrap_metrics, percentile_interval

__all__ = ["INTERVAL_METRICS", "ContestResult", "ContestRules", "contest", "normalized_gini", "top_share"]

FloatArray = NDArray[np.float64]
INTERVAL_METRICS = ("gini", "top10_share", "top20_share", "mae", "churn_auc")
"""The metrics with a bootstrap interval, in :attr:`ContestResult.intervals`."""


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
    top10_share: dict[str, float]
    gini_gain: float
    gini_gain_interval: tuple[float, float]
    best_baseline: str
    guard_rails: dict[str, bool]
    rules: ContestRules
    top20_share: dict[str, float] = field(default_factory=dict)
    baseline_mae: dict[str, float] = field(default_factory=dict)
    """Revenue MAE of each baseline (reported, never a guard-rail)."""
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    """Metric (:data:`INTERVAL_METRICS`) -> contender -> its bootstrap interval; all from the same draws."""
    winner_margin: float = float("nan")
    """The winner's (the challenger if it wins, else the champion) Gini minus the best baseline's."""
    winner_margin_interval: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def gini_interval(self) -> dict[str, tuple[float, float]]:
        """Each contender's normalized-Gini interval (``intervals["gini"]``)."""
        return self.intervals["gini"]

    @property
    def winner(self) -> str:
        return "challenger" if self.challenger_wins else "champion"

    def as_metrics(self) -> dict[str, float]:
        """Flat ``<metric>_<contender>`` numbers, for MLflow or a summary; intervals as
        ``<metric>_lower_<contender>`` and ``<metric>_upper_<contender>``."""
        out: dict[str, float] = {"challenger_wins": float(self.challenger_wins), "gini_gain": self.gini_gain}
        out["gini_gain_lower"], out["gini_gain_upper"] = self.gini_gain_interval
        out["winner_margin"] = self.winner_margin
        out["winner_margin_lower"], out["winner_margin_upper"] = self.winner_margin_interval
        for name, values in (
            ("mae", self.mae | self.baseline_mae),
            ("total_ratio", self.total_ratio),
            ("churn_auc", self.churn_auc),
            ("gini", self.gini),
            ("top10_share", self.top10_share),
            ("top20_share", self.top20_share),
        ):
            out |= {f"{name}_{who}": v for who, v in values.items()}
        for metric, by in self.intervals.items():
            for who, (low, high) in by.items():
                out |= {f"{metric}_lower_{who}": low, f"{metric}_upper_{who}": high}
        return out


def _auc(churned: NDArray[np.bool_], risk: FloatArray) -> float:
    if churned.all() or not churned.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # imported where used, as in models.challenger

    return float(roc_auc_score(churned, risk))


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
    y: FloatArray,
    scores: dict[str, FloatArray],
    churned: NDArray[np.bool_],
    risks: dict[str, FloatArray],
    chosen: ContestRules,
    rng: np.random.Generator,
) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, FloatArray]]:
    """Paired bootstrap intervals of every metric of every contender, and the per-draw normalized Ginis."""
    boot = bootstrap_metrics(y, scores, churned, risks, chosen.draws, rng)
    intervals = {m: {k: percentile_interval(v, chosen.level) for k, v in by.items()} for m, by in boot.items()}
    return intervals, boot["gini"]


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


def _reason(gini: dict[str, float], gain_interval: tuple[float, float], failed: list[str], chosen: ContestRules) -> str:
    if failed:
        return "champion keeps: " + "; ".join(failed)
    return (
        f"challenger wins: Gini {gini['challenger']:.4f} vs {gini['champion']:.4f}, gain "
        f"{gini['challenger'] - gini['champion']:+.4f} ({chosen.level:.0%} interval [{gain_interval[0]:+.4f}, "
        f"{gain_interval[1]:+.4f}]), guard-rails hold"
    )


def _roles(champion: pd.DataFrame, challenger: pd.DataFrame) -> tuple[tuple[str, pd.DataFrame], ...]:
    return (("champion", champion), ("challenger", challenger))


def _margin(
    gini: dict[str, float], boot: dict[str, FloatArray], winner: str, baseline: str, chosen: ContestRules
) -> tuple[float, tuple[float, float]]:
    """The winner's Gini minus the best baseline's, and the paired bootstrap interval of that difference."""
    if not baseline:
        return float("nan"), (float("nan"), float("nan"))
    return gini[winner] - gini[baseline], percentile_interval(boot[winner] - boot[baseline], chosen.level)


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
    risks = {role: frame["churn_risk"].to_numpy(dtype=np.float64) for role, frame in _roles(champion, challenger)}
    intervals, boot = _intervals(y, scores, actual["purchases"].to_numpy() <= 0, risks, chosen, rng)
    gain_interval = percentile_interval(boot["challenger"] - boot["champion"], chosen.level)
    gini = {k: normalized_gini(y, v) for k, v in scores.items()}
    best_baseline = max((k for k in scores if k.startswith("baseline_")), key=lambda k: gini[k], default="")
    guards, failed = _guard_rails(mae, total_ratio, auc, chosen)
    gain_point = gini["challenger"] - gini["champion"]
    failed += _noise(gain_point, gain_interval, chosen)
    reason = _reason(gini, gain_interval, failed, chosen)
    margin, margin_interval = _margin(gini, boot, "champion" if failed else "challenger", best_baseline, chosen)
    return ContestResult(
        challenger_wins=not failed,
        reason=reason,
        mae=mae,
        total_ratio=total_ratio,
        churn_auc=auc,
        gini=gini,
        top10_share={k: top_share(y, v, 0.10) for k, v in scores.items()},
        gini_gain=gain_point,
        gini_gain_interval=gain_interval,
        best_baseline=best_baseline,
        guard_rails=guards,
        rules=chosen,
        top20_share={k: top_share(y, v, 0.20) for k, v in scores.items()},
        baseline_mae={k: float(np.mean(np.abs(v - y))) for k, v in scores.items() if k not in contenders},
        intervals=intervals,
        winner_margin=margin,
        winner_margin_interval=margin_interval,
    )
