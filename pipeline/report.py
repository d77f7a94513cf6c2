"""One self-contained HTML validation report per run: verdict, model against baselines, plots, tables.

``render_report`` is pure: figures are embedded as base64 PNG and tables as HTML, so the file opens
anywhere without the MLflow server. Tracking logs it as ``report.html``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from pipeline.gate import GateResult
from pipeline.validate import BASELINES, Validation

_STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.verdict { padding: 0.8em 1em; border-radius: 6px; font-size: 1.15em; margin: 1em 0; }
.pass { background: #e6f4ea; border: 1px solid #34a853; } .fail { background: #fce8e6; border: 1px solid #d93025; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th { background: #f5f5f5; } td:first-child, th:first-child { text-align: left; }
.better { color: #188038; font-weight: 600; } .worse { color: #c5221f; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; } .muted { color: #666; font-size: 0.9em; }
.scroll { overflow-x: auto; }
"""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.4g}" if abs(value) < 10_000 else f"{value:,.0f}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(False))
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"


def comparison_table(metrics: Mapping[str, float], model_label: str = "BG/NBD") -> pd.DataFrame:
    """Model against each baseline on per-customer holdout revenue, with the model's relative gain."""
    rows = [(f"{model_label} x Gamma-Gamma", "revenue")]
    rows += [(f"baseline: {b}", f"baseline_{b}_revenue") for b in BASELINES]
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


def _gain_lines(metrics: Mapping[str, float]) -> str:
    items = []
    for b in BASELINES:
        base = metrics.get(f"baseline_{b}_revenue_mae", math.nan)
        model = metrics.get("revenue_mae", math.nan)
        if not base or math.isnan(base) or math.isnan(model):
            continue
        change = (model - base) / base * 100
        word, css = ("better", "better") if change < 0 else ("worse", "worse")
        items.append(
            f"<li>against <b>{html.escape(b)}</b>: per-customer revenue MAE {model:,.2f} vs {base:,.2f} "
            f"(<span class='{css}'>{abs(change):.1f}% {word}</span>); Spearman "
            f"{_fmt(metrics.get('revenue_spearman', math.nan))} vs "
            f"{_fmt(metrics.get(f'baseline_{b}_revenue_spearman', math.nan))}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def render_report(
    *,
    title: str,
    run_id: str,
    data_description: str,
    ledger: Mapping[str, object],
    parameters: Mapping[str, float],
    validation: Validation,
    gate: GateResult,
    figures: Mapping[str, Figure],
    business: Sequence[tuple[str, pd.DataFrame]] = (),
    registered: str | None = None,
    model_label: str = "BG/NBD",
) -> str:
    """The whole report as one HTML string."""
    m = validation.metrics
    verdict = (
        f"<div class='verdict pass'>Validation passed: {html.escape(registered or 'promoted')}.</div>"
        if gate.passed
        else "<div class='verdict fail'>Validation failed: nothing was registered and the alias did not move. "
        f"Failed checks: {html.escape(', '.join(c.name for c in gate.failed))}.</div>"
    )
    checks = pd.DataFrame(
        [
            {
                "check": c.name,
                "metric": c.metric,
                "value": c.value,
                "threshold": c.threshold,
                "direction": c.direction,
                "result": "pass" if c.passed else "FAIL",
            }
            for c in gate.checks
        ]
    )
    key = pd.DataFrame(
        [
            {"metric": name, "value": m.get(name, math.nan)}
            for name in (
                "purchases_mae",
                "purchases_rmse",
                "purchases_total_pct_error",
                "purchases_cumulative_pct_error",
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
        ]
    )
    images = "".join(
        f"<h3>{html.escape(name.replace('_', ' '))}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,"
        f"{_png(figure)}'>"
        for name, figure in figures.items()
    )
    business_html = "".join(f"<h3>{html.escape(name)}</h3>{_table(frame)}" for name, frame in business)
    params = pd.DataFrame([{"parameter": k, "value": v} for k, v in parameters.items()])
    ledger_frame = pd.DataFrame([{"item": k, "value": v} for k, v in ledger.items()])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">run {html.escape(run_id)} &middot; data {html.escape(data_description)}</p>
{verdict}
<h2>Checks</h2>{_table(checks)}
<h2>Does the model beat past spending?</h2>
{_gain_lines(m)}
{_table(comparison_table(m, model_label))}
<p class="muted">Per-customer holdout revenue. Normalised Gini: 1 ranks customers perfectly, 0 at random.
Top 10%/20% share: the share of actual holdout revenue held by the customers each predictor ranks highest.</p>
<h2>Key metrics</h2>{_table(key)}
<h2>By calibration frequency</h2>
<p class="muted">Where the model fails: mean actual and predicted holdout purchases and revenue, and the revenue
error of the model and of each baseline, by number of repeat purchases in calibration.</p>
{_table(validation.by_frequency)}
<h2>Plots</h2>{images}
<h2>Churn risk calibration</h2>{_table(validation.churn_calibration)}
<p class="muted">Isotonic recalibration, fitted on a random half of the holdout customers and checked on the
other half: Brier score {_fmt(m.get("churn_brier_check_raw", math.nan))} raw against
{_fmt(m.get("churn_brier_check_isotonic", math.nan))} recalibrated (lower is better).</p>
{"<h2>Business views (production model)</h2>" + business_html if business_html else ""}
<h2>Fitted parameters (calibration)</h2>{_table(params)}
<h2>Data</h2>{_table(ledger_frame)}
</body></html>
"""
