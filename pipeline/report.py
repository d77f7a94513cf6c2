"""One self-contained HTML validation report per run: verdict, model against baselines, plots, tables.

``render_report`` is pure: the page comes from the Jinja2 template ``templates/report.html.j2``,
figures are embedded as base64 PNG and tables as HTML, so the file opens anywhere without the MLflow
server. Tracking logs it as ``report.html``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import jinja2
import pandas as pd

from models.challenger_explain import IMPORTANCE_CUSTOMERS, IMPORTANCE_REPEATS
from pipeline import plots
from pipeline.baselines import BASELINES, PURCHASE_BASELINES
from pipeline.contest_plots import contest_figures
from pipeline.gate import GateResult
from pipeline.glossary import DEFINITIONS, metric_label
from pipeline.validate import Validation

if TYPE_CHECKING:
    from pipeline.contest import ChallengerContest

__all__ = ["BusinessView", "comparison_table", "purchase_comparison_table", "render_report"]

_STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.verdict { padding: 0.8em 1em; border-radius: 6px; font-size: 1.15em; margin: 1em 0; }
.pass { background: #e6f4ea; border: 1px solid #34a853; } .fail { background: #fce8e6; border: 1px solid #d93025; }
.note { background: #fef7e0; border: 1px solid #f9ab00; padding: 0.5em 1em; border-radius: 6px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left; white-space: nowrap; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #188038; font-weight: 600; } .worse { color: #c5221f; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; } .muted { color: #666; font-size: 0.9em; }
.scroll { overflow-x: auto; } dt { font-weight: 600; margin-top: 0.5em; } dd { margin-left: 1.5em; }
"""


@dataclass(frozen=True)
class BusinessView:
    """A table of the business section, with an optional note under its title (e.g. where the full table is)."""

    title: str
    frame: pd.DataFrame
    note: str = ""


def _base64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _number(value: object) -> str:
    """Floats to 4 significant digits (thousands separated), NaN as n/a; anything else as text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.4g}" if abs(value) < 10_000 else f"{value:,.0f}"
    return str(value)


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    return env.get_template("report.html.j2")


def _predictor_rows(metrics: Mapping[str, float], rows: list[tuple[str, str]]) -> pd.DataFrame:
    records = []
    for label, prefix in rows:
        records.append(
            {
                "predictor": label,
                "MAE": metrics.get(f"{prefix}_mae", math.nan),
                "RMSE": metrics.get(f"{prefix}_rmse", math.nan),
                "Spearman": metrics.get(f"{prefix}_spearman", math.nan),
                "normalised Gini": metrics.get(f"{prefix}_gini", math.nan),
                "top 10% share": metrics.get(f"{prefix}_top10_share", math.nan),
                "top 20% share": metrics.get(f"{prefix}_top20_share", math.nan),
                "total predicted": metrics.get(f"{prefix}_total_predicted", math.nan),
            }
        )
    return pd.DataFrame(records)


def comparison_table(metrics: Mapping[str, float], model_label: str = "BG/NBD") -> pd.DataFrame:
    """Model against each baseline on per-customer holdout revenue."""
    rows = [(f"{model_label} x Gamma-Gamma", "revenue")]
    rows += [(f"baseline: {b}", f"baseline_{b}_revenue") for b in BASELINES]
    return _predictor_rows(metrics, rows)


def purchase_comparison_table(metrics: Mapping[str, float], model_label: str = "BG/NBD") -> pd.DataFrame:
    """Model against each purchase baseline on per-customer holdout purchases (errors, rank correlation, total)."""
    rows = [(model_label, "purchases")]
    rows += [(f"baseline: {b}", f"baseline_{b}_purchases") for b in PURCHASE_BASELINES]
    return _predictor_rows(metrics, rows)[["predictor", "MAE", "RMSE", "Spearman", "total predicted"]]


def _gains(metrics: Mapping[str, float]) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    model = metrics.get("revenue_mae", math.nan)
    for b in BASELINES:
        base = metrics.get(f"baseline_{b}_revenue_mae", math.nan)
        if not base or math.isnan(base) or math.isnan(model):
            continue
        change = (model - base) / base * 100
        lines.append(
            {
                "baseline": b,
                "model": model,
                "base": base,
                "change": abs(change),
                "word": "better" if change < 0 else "worse",
                "model_spearman": metrics.get("revenue_spearman", math.nan),
                "base_spearman": metrics.get(f"baseline_{b}_revenue_spearman", math.nan),
            }
        )
    return lines


IMPORTANCE_ROWS = 10
"""Features shown in the report's importance table (all are in the run's ``tables/challenger_importance.csv``)."""

KEY_METRICS: tuple[str, ...] = (
    "purchases_mae",
    "purchases_rmse",
    "purchases_total_pct_error",
    "purchases_cumulative_pct_error",
    "purchases_mae_skill",
    "churn_auc",
    "churn_brier",
    "churn_rate_actual",
    "churn_brier_check_raw",
    "churn_brier_check_isotonic",
    "revenue_total_actual",
    "revenue_total_pct_error",
    "revenue_mae_skill",
    "historical_clv_retention",
)


def _key_metrics(metrics: Mapping[str, float]) -> pd.DataFrame:
    rows = [
        {"metric": metric_label(name), "value": metrics[name], "MLflow name": name}
        for name in KEY_METRICS
        if name in metrics
    ]
    return pd.DataFrame(rows, columns=["metric", "value", "MLflow name"])


def _ledger_tables(ledger: Mapping[str, object]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The ledger as rows, and the quarantine counts (a mapping in the ledger) as their own table."""
    rows = [{"item": k.replace("_", " "), "value": v} for k, v in ledger.items() if not isinstance(v, Mapping)]
    reasons = ledger.get("quarantined")
    if not isinstance(reasons, Mapping) or not reasons:
        return pd.DataFrame(rows), None
    total = sum(int(n) for n in reasons.values())
    quarantine = pd.DataFrame(
        [{"reason": str(k), "rows": int(n), "share of quarantined": int(n) / total} for k, n in reasons.items()]
    )
    return pd.DataFrame(rows), quarantine


def _checks(gate: GateResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "check": c.name,
                "metric": metric_label(c.metric),
                "value": c.value,
                "threshold": c.threshold,
                "direction": c.direction,
                "result": "pass" if c.passed else "FAIL",
            }
            for c in gate.checks
        ]
    )


def _contest_parts(contest: ChallengerContest | None) -> dict[str, object]:
    """The contest section: its table with intervals, the noise sentence, the importance table and figures."""
    importance = None if contest is None else contest.importance
    return {
        "contest": contest,
        "contest_table": contest.table() if contest is not None else None,
        "contest_noise": contest.noise() if contest is not None else "",
        "contest_importance": None if importance is None else importance.head(IMPORTANCE_ROWS),
        "contest_images": []
        if contest is None
        else [(k, _base64(plots.png(v))) for k, v in contest_figures(contest).items()],
        "importance_repeats": IMPORTANCE_REPEATS,
        # the importance runs on the training window's customers, IMPORTANCE_CUSTOMERS of them at the most
        "importance_customers": min(IMPORTANCE_CUSTOMERS, contest.training_customers) if contest is not None else 0,
    }


def render_report(
    *,
    title: str,
    run_id: str,
    data_description: str,
    ledger: Mapping[str, object],
    parameters: Mapping[str, float],
    validation: Validation,
    gate: GateResult,
    figures: Mapping[str, bytes],
    business: Sequence[tuple[str, pd.DataFrame] | BusinessView] = (),
    registered: str | None = None,
    model_label: str = "BG/NBD",
    notes: Sequence[str] = (),
    definitions: Mapping[str, str] | None = None,
    contest: ChallengerContest | None = None,
) -> str:
    """The whole report as one HTML string.

    ``figures``: PNG images by name (:func:`pipeline.plots.validation_pngs`), shown as they are.
    ``notes`` are shown under the verdict (a spend-model fallback, a champion trained on other data);
    ``definitions`` (churn risk, CLV horizon, discount rate, ...) close the page, after the glossary's own.
    ``contest``: the challenger contest of the run (its section is left out without one): the table with
    bootstrap intervals, whether the winner's margin is inside the noise, the challenger's permutation
    importance and the decile chart of each contender.
    """
    m = validation.metrics
    ledger_frame, quarantine = _ledger_tables(ledger)
    views = [v if isinstance(v, BusinessView) else BusinessView(v[0], v[1]) for v in business]
    return _template().render(
        title=title,
        style=_STYLE,
        run_id=run_id,
        data_description=data_description,
        gate=gate,
        registered=registered,
        notes=list(notes),
        checks=_checks(gate),
        revenue="revenue_mae" in m,
        gains=_gains(m),
        comparison=comparison_table(m, model_label),
        purchase_comparison=purchase_comparison_table(m, model_label),
        key_metrics=_key_metrics(m),
        by_frequency=validation.by_frequency,
        images=[(name, _base64(png)) for name, png in figures.items()],
        churn_calibration=validation.churn_calibration,
        brier_raw=m.get("churn_brier_check_raw", math.nan),
        brier_isotonic=m.get("churn_brier_check_isotonic", math.nan),
        business=views,
        parameters=pd.DataFrame([{"parameter": k, "value": v} for k, v in parameters.items()]),
        ledger=ledger_frame,
        quarantine=quarantine,
        definitions=list({**DEFINITIONS, **(definitions or {})}.items()),
        **_contest_parts(contest),
    )
