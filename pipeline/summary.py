"""What the job reports at the end: the summary JSON (``--summary``) and the console text."""

from __future__ import annotations

from typing import Any

from pipeline.run import TrainResult
from pipeline.validate import BASELINES


def summary_dict(result: TrainResult) -> dict[str, Any]:
    ledger = result.prepared.ledger
    production = result.production_fit
    return {
        "run_id": result.run_id,
        "model_name": result.config.tracking.model_name,
        "version": result.version,
        "promoted": result.promoted,
        "alias": result.config.tracking.alias if result.promoted else None,
        "data": {
            "source": result.data.description,
            "fingerprint": result.data.fingerprint,
            "rows_in": ledger.rows_in,
            "rows_used": ledger.rows_used,
            "rows_quarantined": ledger.quarantined,
            "customers_calibration": len(result.prepared.calibration),
            "customers_full": len(result.prepared.full),
            "customers_new_in_holdout": result.prepared.customers_new_in_holdout,
            "returns_netted": ledger.returns_netted,
            "returns_unmatched": ledger.returns_unmatched,
        },
        "parameters": {
            "calibration": result.calibration_fit.params(),
            "production": production.params() if production is not None else None,
        },
        "log_likelihood": {
            "bgnbd": result.calibration_fit.purchase.stats.log_likelihood,
            "gamma_gamma": result.calibration_fit.spend.stats.log_likelihood,
        },
        "metrics": result.validation.metrics,
        "checks": [c.as_dict() for c in result.gate.checks],
    }


def _fmt(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def summary_text(result: TrainResult) -> str:
    m = result.validation.metrics
    params = result.calibration_fit.params()
    ledger = result.prepared.ledger
    lines = [
        f"clv train: run {result.run_id}",
        f"  data        {result.data.description}: {ledger.rows_in:,} rows in, "
        f"{ledger.rows_used:,} used, {ledger.rows_quarantined:,} quarantined; "
        f"{len(result.prepared.calibration):,} customers in calibration",
        "  BG/NBD      "
        + "  ".join(f"{k}={params[k]:.4g}" for k in ("r", "alpha", "a", "b"))
        + f"  (log-likelihood {result.calibration_fit.purchase.stats.log_likelihood:,.2f})",
        "  Gamma-Gamma " + "  ".join(f"{k}={params[k]:.4g}" for k in ("p", "q", "v")),
        f"  holdout     purchases MAE {_fmt(m['purchases_mae'])}, "
        f"total error {m['purchases_total_pct_error']:+.1f}%;"
        f" churn AUC {m['churn_auc']:.3f}, Brier {m['churn_brier']:.3f}",
        f"  revenue     model MAE {_fmt(m['revenue_mae'])}, Spearman {m['revenue_spearman']:.3f}",
    ]
    for name in BASELINES:
        mae = m[f"baseline_{name}_revenue_mae"]
        change = (m["revenue_mae"] - mae) / mae * 100 if mae else float("nan")
        lines.append(
            f"              baseline {name}: MAE {_fmt(mae)} (model {'better' if change < 0 else 'worse'} by "
            f"{abs(change):.1f}%), Spearman {m[f'baseline_{name}_revenue_spearman']:.3f}"
        )
    lines.append("  gate")
    for check in result.gate.checks:
        sign = ">=" if check.direction == "higher" else "<="
        if check.name == "beats_historical_baseline":
            sign = "<"
        if check.name == "does_not_lose_to_champion" and check.threshold != check.threshold:  # NaN
            lines.append(f"    [pass] {check.name}: no champion yet")
            continue
        lines.append(
            f"    [{'pass' if check.passed else 'FAIL'}] {check.name}: {check.metric} = {check.value:.4g} "
            f"(needs {sign} {check.threshold:.4g})"
        )
    name = result.config.tracking.model_name
    if result.promoted:
        lines.append(f"  registered  {name} version {result.version}, alias '{result.config.tracking.alias}' moved")
    else:
        lines.append(
            f"  not promoted: validation failed; nothing registered, '{result.config.tracking.alias}' unchanged"
        )
    return "\n".join(lines)
