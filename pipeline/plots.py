"""Validation plots as matplotlib figures (no files written here; tracking logs them).

Figures are built with matplotlib's object API, not pyplot: no global backend is switched and no
figure is kept open, so this works the same in the batch job and in a notebook.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.baselines import BASELINES
from pipeline.validate import Validation


def repeat_purchases(table: pd.DataFrame, model_label: str, chi_square: float, p_value: float) -> Figure:
    """Customers by number of calibration repeat purchases: observed against model-implied."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["observed"], width=0.4, label="observed")
    ax.bar(x + 0.2, table["expected"], width=0.4, label=model_label)
    ax.set_xticks(x, table["repeat_purchases"])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("customers")
    ax.set_title(f"Repeat purchases: chi-square {chi_square:,.1f} (p = {p_value:.3g})")
    ax.legend()
    fig.tight_layout()
    return fig


def purchases_by_frequency(by_frequency: pd.DataFrame, model_label: str = "BG/NBD") -> Figure:
    """Mean holdout purchases, actual against predicted, by calibration frequency (Fader-Hardie-Lee view)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x = np.arange(len(by_frequency))
    ax.plot(x, by_frequency["actual_purchases"], marker="o", label="actual")
    ax.plot(x, by_frequency["expected_purchases"], marker="s", linestyle="--", label=model_label)
    ax.set_xticks(x, by_frequency["frequency_bin"])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title("Conditional expectation of holdout purchases")
    ax.legend()
    fig.tight_layout()
    return fig


def revenue_by_frequency(by_frequency: pd.DataFrame, baselines: tuple[str, ...], model_label: str = "BG/NBD") -> Figure:
    """Mean holdout revenue: actual, model and baselines, by calibration frequency."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x = np.arange(len(by_frequency))
    ax.plot(x, by_frequency["actual_revenue"], marker="o", label="actual")
    ax.plot(x, by_frequency["expected_revenue"], marker="s", linestyle="--", label=f"{model_label} x Gamma-Gamma")
    for name in baselines:
        ax.plot(x, by_frequency[f"baseline_{name}_revenue"], linestyle=":", label=f"baseline: {name}")
    ax.set_xticks(x, by_frequency["frequency_bin"])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("mean revenue in holdout")
    ax.set_title("Holdout revenue: model against historical baselines")
    ax.legend()
    fig.tight_layout()
    return fig


def churn_calibration(curve: pd.DataFrame) -> Figure:
    """Predicted P(no purchase over the holdout) against the observed share without a purchase (deciles)."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.plot(curve["mean_predicted"], curve["observed"], marker="o", label="model")
    ax.set_xlabel("predicted churn risk over the holdout")
    ax.set_ylabel("observed share with no holdout purchase")
    ax.set_title("Churn risk calibration (deciles)")
    ax.legend()
    fig.tight_layout()
    return fig


def purchase_tracking(tracking: pd.DataFrame, calibration_end: object, model_label: str = "BG/NBD") -> Figure:
    """Cumulative and weekly repeat purchases, actual against the model, over calibration and holdout."""
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    weeks = pd.to_datetime(tracking["week"])
    top.plot(weeks, tracking["actual_cumulative"], label="actual")
    top.plot(weeks, tracking["expected_cumulative"], linestyle="--", label=model_label)
    top.set_ylabel("cumulative repeat purchases")
    bottom.plot(weeks, tracking["actual"], label="actual")
    bottom.plot(weeks, tracking["expected"], linestyle="--", label=model_label)
    bottom.set_ylabel("repeat purchases per week")
    for ax in (top, bottom):
        ax.axvline(pd.Timestamp(str(calibration_end)), color="grey", linestyle=":", label="end of calibration")
        ax.legend()
    top.set_title("Tracking: calibration customers' repeat purchases")
    fig.tight_layout()
    return fig


def validation_figures(
    validation: Validation, calibration_end: dt.date, model_label: str = "BG/NBD"
) -> dict[str, Figure]:
    """The report's and the run's validation figures, by name."""
    figures = {"purchases_by_frequency": purchases_by_frequency(validation.by_frequency, model_label)}
    if "actual_revenue" in validation.by_frequency.columns:  # not without amounts
        figures["revenue_by_frequency"] = revenue_by_frequency(validation.by_frequency, BASELINES, model_label)
    figures["purchase_tracking"] = purchase_tracking(validation.tracking, calibration_end, model_label)
    figures["churn_calibration"] = churn_calibration(validation.churn_calibration)
    return figures


def png(figure: Figure) -> bytes:
    """``figure`` as PNG (90 dpi). Each figure of a run is rendered once: the same bytes go to the run's
    artifacts and into the report (rendering was half of a small job's time when each did its own)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def validation_pngs(validation: Validation, calibration_end: dt.date, model_label: str = "BG/NBD") -> dict[str, bytes]:
    """:func:`validation_figures`, rendered by :func:`png`."""
    return {name: png(figure) for name, figure in validation_figures(validation, calibration_end, model_label).items()}
