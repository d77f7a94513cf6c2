"""What ``clv monitor`` shows and records: the verdict line, the periods as a table and as text, the checks
over time as a figure, and the ``--summary`` JSON. Pure functions of a :class:`~pipeline.monitor.Monitoring`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline import plots
from pipeline.monitor import Monitoring

__all__ = ["checks_figure", "period_lines", "periods_table", "summary_dict", "tracking_figure", "verdict_line"]

SHOWN = ("purchases", "spend", "churn_auc", "churn_brier_excess", "psi_purchases", "psi_order_value", "new_customers")


def periods_table(result: Monitoring) -> pd.DataFrame:
    """One row per period: its end, every metric, and the checks that failed."""
    rows = [{"period": p.index, "end": str(p.end), **p.metrics, "failed": ", ".join(p.failed)} for p in result.periods]
    return pd.DataFrame(rows)


def verdict_line(result: Monitoring, model: str) -> str:
    """The verdict in one line: what the last ``stale_after`` periods (or the fewer that have passed) say."""
    since = f"since {result.reference.observation_end}"
    days, needed = result.config.period_days, result.config.stale_after
    if result.verdict == "too early":
        return f"clv monitor: OK (too early): {model}: no complete {days}-day period of new data {since}"
    count = f"{len(result.periods)} period(s) of {days} days {since}"
    if result.verdict == "stale":
        return (
            f"clv monitor: STALE, retrain due: {model}: {', '.join(result.failing)} failed in each of the last "
            f"{needed} period(s) ({count}; first stale at period {result.stale_from})"
        )
    rule = f"a retrain is due when the same check fails in each of the last {needed} period(s)"
    by_periods: dict[tuple[int, ...], list[str]] = {}
    for name, at in result.failed_recently.items():
        by_periods.setdefault(at, []).append(name)
    if by_periods:
        where = "; ".join(
            f"{', '.join(names)} failed in period(s) {', '.join(map(str, at))}" for at, names in by_periods.items()
        )
        return f"clv monitor: WARNING, no retrain due: {model}: {count}; {where} ({rule})"
    if len(result.periods) < needed:
        return (
            f"clv monitor: OK: {model}: {count}; no check failed in the {len(result.periods)} period(s) so far ({rule})"
        )
    return f"clv monitor: OK: {model}: {count}; no check failed in the last {needed} period(s)"


def _cell(value: float, name: str) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:+.1f}%" if name in ("purchases", "spend") else f"{value:.3f}"


def period_lines(result: Monitoring) -> list[str]:
    """The periods as text: end, the key metrics, the failed checks."""
    header = f"{'period':>6} {'end':<10} " + " ".join(f"{name:>18}" for name in SHOWN) + "  failed"
    lines = [header]
    for p in result.periods:
        cells = " ".join(f"{_cell(p.metrics.get(name, float('nan')), name):>18}" for name in SHOWN)
        lines.append(f"{p.index:>6} {p.end!s:<10} {cells}  {', '.join(p.failed) or '-'}")
    return lines


def checks_figure(result: Monitoring) -> Figure:
    """Each check's value per period against its threshold (a check above its line failed)."""
    names = sorted({c.name for p in result.periods for c in p.checks})
    figure = Figure(figsize=(10, 2.2 * max(len(names), 1)))
    axes = figure.subplots(max(len(names), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=False):
        points = [(p.index, c.value, c.threshold) for p in result.periods for c in p.checks if c.name == name]
        index, value, threshold = (np.asarray(v, dtype=float) for v in zip(*points, strict=True))
        ax.plot(index, value, marker="o", label=name)
        ax.plot(index, threshold, linestyle="--", color="grey", label="threshold")
        ax.set_ylabel(name, fontsize="small")
    axes[0].set_title(f"Monitoring since {result.reference.observation_end}: checks per period (cumulative)")
    axes[-1].set_xlabel(f"period ({result.config.period_days} days)")
    figure.tight_layout()
    return figure


def summary_dict(result: Monitoring, model: dict[str, str], exit_code: int) -> dict[str, Any]:
    """``clv monitor --summary``: the verdict, the exit code, the model, the thresholds and every period."""
    return {
        "verdict": result.verdict,
        "exit_code": exit_code,
        "failing": list(result.failing),
        "failed_recently": {name: list(at) for name, at in result.failed_recently.items()},
        "stale_from_period": result.stale_from,
        "model": model,
        "observation_end": str(result.reference.observation_end),
        "reference": {
            "churn_auc": result.reference.churn_auc,
            "rows_in": result.reference.rows_in,
            "rows_quarantined": result.reference.rows_quarantined,
            "rows_untimed": result.reference.rows_untimed,
        },
        "thresholds": result.config.model_dump(),
        "periods": [
            {
                "period": p.index,
                "end": str(p.end),
                "metrics": p.metrics,
                "checks": [
                    {"name": c.name, "value": c.value, "threshold": c.threshold, "passed": c.passed} for c in p.checks
                ],
            }
            for p in result.periods
        ],
    }


def tracking_figure(result: Monitoring, model_label: str) -> Figure:
    """Training's weekly tracking plot, continued over the new data: the line marks where the model's data ended."""
    figure = plots.purchase_tracking(result.tracking, result.reference.observation_end, model_label)
    for ax in figure.axes:
        for line in ax.get_lines():
            if line.get_label() == "end of calibration":
                line.set_label("the model's data ended")
        ax.legend()
    figure.axes[0].set_title("Monitoring: repeat purchases of the customers the model knew")
    return figure
