"""The contractual job's summary (printed, and as JSON with ``--summary``) and its HTML report."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.contractual.retention import retention_curves, retention_png, retention_table
from pipeline.contractual.workflow import ContractualResult
from pipeline.discrete.workflow import DiscreteResult
from pipeline.summary import detected_format_text

__all__ = ["report_html", "summary_dict", "summary_text"]


def summary_dict(result: ContractualResult | DiscreteResult) -> dict[str, Any]:
    """The summary of a contractual or a discrete run (``--summary``)."""
    if isinstance(result, DiscreteResult):
        from pipeline.discrete.command import discrete_summary_dict

        return discrete_summary_dict(result)
    config = result.config
    pooled = result.calibration_fits.pooled.params
    production = result.production_fits.pooled.params if result.production_fits is not None else None
    interval = result.subscribers.charge_interval
    return {
        "run_id": result.run_id,
        "business_type": config.business.type,
        "model_name": config.tracking.model_name,
        "version": result.version,
        "promoted": result.promoted,
        "alias": config.tracking.alias if result.promoted else None,
        "data": {
            "source": result.data.description,
            "fingerprint": result.data.fingerprint,
            **result.subscribers.ledger.as_dict(),
            "subscribers": len(result.subscribers.full),
            "calibration_end": str(result.subscribers.calibration_end),
            "observation_end": str(result.subscribers.observation_end),
            "charge_interval": interval.as_dict() if interval is not None else None,
            "timestamp_format": result.subscribers.timestamp_format,
        },
        "fit": {
            "model": "sbg",
            "calibration": pooled.as_dict(),
            "production": production.as_dict() if production is not None else None,
            "cohorts_with_own_fit": len(result.calibration_fits.own),
            "cohorts": len(result.calibration_fits.params),
        },
        "scores": _scores_dict(result),
        "payback": result.payback.to_dict("records") if result.payback is not None else None,
        "advice": list(result.advice),
        "warnings": list(result.warnings),
        "metrics": result.validation.metrics,
        "checks": [c.as_dict() for c in result.gate.checks],
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in result.timings.items()},
    }


def _scores_dict(result: ContractualResult) -> dict[str, Any] | None:
    """The active subscribers scored, how many of them the lifetime horizon decides, and the note saying so (None
    when nothing was scored)."""
    if result.scores is None or result.model is None:
        return None
    return {
        "active_subscribers": len(result.scores),
        "horizon_periods": result.model.horizon_periods,
        "at_lifetime_cap": result.lifetime_capped,
        "notes": list(result.notes),
    }


def summary_text(result: ContractualResult | DiscreteResult) -> str:
    """What ``clv train`` prints for a contractual or a discrete run."""
    if isinstance(result, DiscreteResult):
        from pipeline.discrete.command import discrete_summary_text

        return discrete_summary_text(result)
    m = result.validation.metrics
    ledger = result.subscribers.ledger
    pooled = result.calibration_fits.pooled.params
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(ledger.reasons.items())) or "none"
    verdict = (
        f"registered as {result.config.tracking.model_name} version {result.version}, alias "
        f"'{result.config.tracking.alias}'"
        if result.promoted
        else "not registered: " + ", ".join(c.name for c in result.gate.failed)
    )
    lines = [
        f"clv train: run {result.run_id} (business.type contractual)",
        f"  data        {result.data.description}: {ledger.rows_in:,} rows in, {ledger.rows_used:,} used, "
        f"{ledger.rows_quarantined:,} quarantined ({reasons}); {len(result.subscribers.full):,} subscribers"
        + detected_format_text(result.config.data.timestamp_format, result.subscribers.timestamp_format),
        f"  model       sBG by cohort: pooled alpha {pooled.alpha:.4g}, beta {pooled.beta:.4g}; "
        f"{len(result.calibration_fits.own)} of {len(result.calibration_fits.params)} cohorts with their own fit",
        f"  holdout     survival MAPE {m['survival_mape']:.4f} (baselines: last period "
        f"{m['baseline_last_period_survival_mape']:.4f}, average lifetime "
        f"{m['baseline_average_lifetime_survival_mape']:.4f}); churn AUC {m['churn_auc']:.4f}",
        f"  gate        {'passed' if result.gate.passed else 'FAILED'}; {verdict}",
    ]
    lines += [f"  {line}" for line in result.advice]
    lines += [f"  note        {line}" for line in result.notes]
    return "\n".join(lines)


def _table(rows: Sequence[Mapping[Any, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}</td>" for v in r.values())
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _retention_section(result: ContractualResult) -> str:
    """Retention by cohort over the whole history, against the production sBG (the calibration one when the
    gate failed): a figure of a few cohorts and a table of every cohort."""
    fits = result.production_fits or result.calibration_fits
    which = "production fit" if result.production_fits is not None else "calibration fit"
    curves = retention_curves(result.subscribers.full, fits)
    return (
        f"<h2>Retention by cohort</h2><p>Share of each cohort still subscribed after t renewal decisions: observed "
        f"over the whole history and the sBG ({which}).</p>"
        f"<img alt='retention by cohort' src='data:image/png;base64,{retention_png(curves)}'>"
        f"{_table(retention_table(curves).to_dict('records'))}"
    )


def _payback_section(result: ContractualResult) -> str:
    if result.payback is None:
        return ""
    return (
        f"<h2>Payback against CAC</h2><p>Billing periods until a new subscriber's expected payments cover the "
        f"acquisition cost ({result.config.business.cac:g}), at each cohort's sBG retention.</p>"
        f"{_table(result.payback.to_dict('records'))}"
    )


def report_html(result: ContractualResult) -> str:
    """A self-contained HTML report: verdict, advice, holdout metrics, gate, retention curves by cohort, cohort
    parameters and errors."""
    title = html.escape(f"CLV validation report: {result.config.tracking.model_name} (contractual, sBG)")
    metrics = [{"metric": k, "value": v} for k, v in result.validation.metrics.items()]
    checks = [c.as_dict() for c in result.gate.checks]
    advice = "".join(f"<li>{html.escape(line)}</li>" for line in result.advice)
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in result.notes)
    by_cohort = result.validation.by_cohort.rename(columns={"model": "sbg_mape"}).to_dict("records")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>Gate: {'passed' if result.gate.passed else 'failed'}</p>"
        f"<h2>Advice on the data</h2><ul>{advice or '<li>none</li>'}</ul>"
        f"{f'<h2>Notes on the scores</h2><ul>{notes}</ul>' if notes else ''}"
        f"<h2>Holdout metrics</h2>{_table(metrics)}<h2>Gate</h2>{_table(checks)}{_retention_section(result)}"
        f"<h2>sBG by cohort (calibration)</h2>{_table(result.calibration_fits.table().to_dict('records'))}"
        f"<h2>Survival MAPE by cohort</h2>{_table(by_cohort)}{_payback_section(result)}</body></html>"
    )
