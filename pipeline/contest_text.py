"""The contest's numbers as people read them: the table with bootstrap intervals, the interval line of the
summary, and the sentence that says whether the winner's Gini margin is inside the noise.

A margin is *above the noise* when the lower end of its paired bootstrap interval is above 0, *inside the
noise* when the interval holds 0, and *below zero beyond the noise* when its upper end is below 0.
"""

from __future__ import annotations

import pandas as pd

from models.challenger_contest import ContestResult

__all__ = ["beyond", "contest_table", "interval_line", "noise_sentence", "predictor_label"]

_COLUMNS = (
    ("normalised Gini", "Gini", "gini"),
    ("top 10% share", "top 10%", "top10_share"),
    ("top 20% share", "top 20%", "top20_share"),
    ("MAE", "MAE", "mae"),
    ("churn AUC", "AUC", "churn_auc"),
)
"""(column title, short title for its interval columns, metric name in ``ContestResult.intervals``)."""


def predictor_label(key: str, weight: float) -> str:
    labels = {"champion": "BTYD (champion)", "challenger": f"blend, challenger weight {weight:g}"}
    return labels.get(key, key.replace("baseline_", "baseline: "))


def contest_table(result: ContestResult, weight: float) -> pd.DataFrame:
    """One row per predictor: each metric, then its interval (``<short> <level> low``/``high``)."""
    r = result
    points = {
        "gini": r.gini,
        "top10_share": r.top10_share,
        "top20_share": r.top20_share,
        "mae": r.mae | r.baseline_mae,
        "churn_auc": r.churn_auc,
    }
    level = f"{r.rules.level:.0%}"
    nan = float("nan")
    rows = []
    for key in r.gini:
        row: dict[str, object] = {"predictor": predictor_label(key, weight)}
        for title, short, metric in _COLUMNS:
            low, high = r.intervals.get(metric, {}).get(key, (nan, nan))
            row |= {title: points[metric].get(key, nan), f"{short} {level} low": low, f"{short} {level} high": high}
        row["predicted / actual"] = r.total_ratio.get(key, nan)
        rows.append(row)
    return pd.DataFrame(rows)


def beyond(interval: tuple[float, float]) -> str:
    """Where a margin's interval lies against 0."""
    if interval[0] > 0:
        return "above the noise"
    if interval[1] < 0:
        return "below zero beyond the noise"
    return "inside the noise"


def noise_sentence(result: ContestResult) -> str:
    """The blend's Gini gain over BTYD, and the winner's margin over the best baseline, each with its
    interval and whether it is inside the noise."""
    r = result
    level = f"{r.rules.level:.0%}"
    gain_low, gain_high = r.gini_gain_interval
    text = (
        f"The blend's Gini gain over BTYD {r.gini_gain:+.4f} ({level} interval [{gain_low:+.4f}, {gain_high:+.4f}]) "
        f"is {beyond(r.gini_gain_interval)}"
    )
    if not r.best_baseline:
        return text
    winner = "the blend" if r.challenger_wins else "BTYD"
    low, high = r.winner_margin_interval
    return (
        f"{text}; the winner's ({winner}) Gini margin over the best baseline "
        f"({r.best_baseline.replace('baseline_', '')}) {r.winner_margin:+.4f} ({level} interval [{low:+.4f}, "
        f"{high:+.4f}]) is {beyond(r.winner_margin_interval)}"
    )


def interval_line(result: ContestResult) -> str:
    """The summary line of intervals for BTYD, the blend and the best baseline."""
    r = result
    keys = [("BTYD", "champion"), ("blend", "challenger")]
    keys += [(r.best_baseline.replace("baseline_", ""), r.best_baseline)] if r.best_baseline else []
    parts = []
    for title, metric, digits in (
        ("Gini", "gini", 4),
        ("top 10%", "top10_share", 3),
        ("top 20%", "top20_share", 3),
        ("MAE", "mae", 2),
        ("AUC", "churn_auc", 3),
    ):
        by = r.intervals.get(metric, {})
        shown = [f"{who} [{by[k][0]:.{digits}f}, {by[k][1]:.{digits}f}]" for who, k in keys if k in by]
        parts.append(f"{title} " + ", ".join(shown))
    return f"{r.rules.level:.0%} intervals ({r.rules.draws} paired bootstrap draws): " + "; ".join(parts)
