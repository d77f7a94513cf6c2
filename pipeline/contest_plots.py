"""The contest's figures for analysts, pure functions of :class:`~pipeline.contest.ChallengerContest`.

- ``contest_deciles``: mean predicted against mean actual holdout revenue by decile of each contender's
  prediction (BTYD, the challenger alone, the blend): a good ranker's actual bars fall steeply from
  decile 1, a calibrated one's predicted points sit on them.
- ``challenger_importance``: the challenger's permutation importance (drop in normalized Gini when a
  feature is shuffled, on its training window; :mod:`models.challenger_explain`).

matplotlib's object API, as :mod:`pipeline.plots`: no pyplot state, nothing written here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from pipeline.contest import ChallengerContest

__all__ = ["CONTEST_FIGURES", "contest_figures", "decile_chart", "importance_chart"]

CONTEST_FIGURES = ("contest_deciles", "challenger_importance")
TITLES = {"btyd": "BTYD", "challenger": "challenger (rescaled)", "blend": "blend"}


def decile_chart(deciles: pd.DataFrame) -> Figure:
    """One panel per contender: mean actual (bars) and mean predicted (points) holdout revenue by decile."""
    contenders = list(dict.fromkeys(deciles["contender"]))
    fig = Figure(figsize=(4 * len(contenders) + 1, 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(contenders), sharey=True))
    for ax, name in zip(axes, contenders, strict=True):
        rows = deciles[deciles["contender"] == name]
        ax.bar(rows["decile"], rows["mean_actual"], color="#9ab", label="actual")
        ax.plot(rows["decile"], rows["mean_predicted"], marker="o", color="#c33", label="predicted")
        ax.set_title(TITLES.get(name, name))
        ax.set_xlabel("decile of the prediction (1 = highest)")
        ax.set_xticks(rows["decile"])
    axes[0].set_ylabel("mean holdout revenue per customer")
    axes[0].legend()
    fig.suptitle("Predicted and actual holdout revenue by decile")
    fig.tight_layout()
    return fig


def importance_chart(importance: pd.DataFrame, top: int = 12) -> Figure:
    """Horizontal bars of the ``top`` features' drop in Gini, with their standard deviation over repeats."""
    shown = importance.head(top).iloc[::-1]
    fig = Figure(figsize=(7, 0.35 * len(shown) + 1.5))
    ax = fig.subplots()
    ax.barh(shown["feature"], shown["gini_drop"], xerr=shown["gini_drop_std"], color="#68a")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("drop in normalized Gini when the feature is shuffled")
    ax.set_title("Challenger: permutation importance (training window)")
    fig.tight_layout()
    return fig


def contest_figures(contest: ChallengerContest) -> dict[str, Figure]:
    """The contest's figures by name (none when the challenger was ineligible)."""
    figures: dict[str, Figure] = {}
    if contest.predictions is not None:
        figures["contest_deciles"] = decile_chart(contest.deciles())
    if contest.importance is not None:
        figures["challenger_importance"] = importance_chart(contest.importance)
    return figures
