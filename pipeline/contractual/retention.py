"""Retention (survival) curves by acquisition cohort: observed over the whole history against the sBG, for the
contractual report and the notebook."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models import sbg
from pipeline.contractual.validation import CohortFits, observed_survival

__all__ = ["retention_curves", "retention_figure", "retention_png", "retention_table"]

TABLE_PERIODS = (1, 3, 6, 12)
"""The renewal decisions the report's retention table shows."""


def retention_curves(full: pd.DataFrame, fits: CohortFits) -> pd.DataFrame:
    """Per cohort and t >= 1 (its t-th renewal decision): subscribers it came due for (``at_risk``), the observed
    share still subscribed after it (``observed``, S(t)) and the sBG's S(t) with the cohort's parameters."""
    curves = observed_survival(full).rename(columns={"share": "observed"})
    curves["sbg"] = np.nan
    for cohort, index in curves.groupby("cohort").groups.items():
        params = fits.params.get(str(cohort), fits.pooled.params)
        curves.loc[index, "sbg"] = sbg.survival(params, curves.loc[index, "t"].to_numpy())
    return curves.loc[:, ["cohort", "t", "at_risk", "observed", "sbg"]].reset_index(drop=True)


def retention_table(curves: pd.DataFrame, periods: tuple[int, ...] = TABLE_PERIODS) -> pd.DataFrame:
    """One row per cohort: subscribers, then observed and sBG S(t) at each of ``periods`` (NaN when not yet due)."""
    rows = []
    for cohort, group in curves.groupby("cohort", sort=True):
        t_values = group["t"].to_numpy().tolist()
        observed = dict(zip(t_values, group["observed"].to_numpy(dtype=np.float64).tolist(), strict=True))
        model = dict(zip(t_values, group["sbg"].to_numpy(dtype=np.float64).tolist(), strict=True))
        row: dict[str, object] = {"cohort": cohort, "subscribers": int(group["at_risk"].iloc[0])}
        for t in periods:
            row[f"observed_{t}"] = observed.get(t, float("nan"))
            row[f"sbg_{t}"] = model.get(t, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def retention_figure(curves: pd.DataFrame, most: int = 6) -> Figure:
    """Observed S(t) (solid) and the sBG's (dashed) of at most ``most`` cohorts, evenly spread from the first."""
    cohorts = sorted(curves["cohort"].unique())
    shown = [cohorts[i] for i in np.unique(np.linspace(0, len(cohorts) - 1, min(most, len(cohorts))).astype(int))]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, cohort in enumerate(shown):
        group = curves[curves["cohort"] == cohort]
        color = f"C{i % 10}"
        ax.plot(group["t"], group["observed"], color=color, marker="o", markersize=3, label=f"{cohort} observed")
        ax.plot(group["t"], group["sbg"], color=color, linestyle="--")
    ax.set_xlabel("renewal decisions since acquisition")
    ax.set_ylabel("share still subscribed, S(t)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Retention by cohort: observed (solid) and sBG (dashed)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def retention_png(curves: pd.DataFrame) -> str:
    """:func:`retention_figure` as base64 PNG (for an ``<img>`` in the report)."""
    buffer = io.BytesIO()
    retention_figure(curves).savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
