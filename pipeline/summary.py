"""What the job reports at the end: the summary JSON (``--summary``), the console text and the report's notes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.purchase import LABELS
from pipeline.baselines import BASELINES, PURCHASE_BASELINES
from pipeline.workflow import TrainResult

if TYPE_CHECKING:
    from pipeline.champion import ChampionComparison
    from pipeline.engines.prepared import PreparedData
    from pipeline.fit import FittedModels


def _data(result: TrainResult) -> dict[str, Any]:
    ledger, prepared = result.prepared.ledger, result.prepared
    return {
        "source": result.data.description,
        "fingerprint": result.data.fingerprint,
        "rows_in": ledger.rows_in,
        "rows_used": ledger.rows_used,
        "rows_quarantined": ledger.quarantined,
        "customers_calibration": len(prepared.calibration),
        "customers_full": len(prepared.full),
        "customers_new_in_holdout": prepared.customers_new_in_holdout,
        "returns_netted": ledger.returns_netted,
        "returns_unmatched": ledger.returns_unmatched,
        "calibration_end": str(prepared.calibration_end),
        "observation_end": str(prepared.observation_end),
        "has_amounts": prepared.has_amounts,
        "timestamp_format": prepared.timestamp_format,
    }


def _fit(result: TrainResult) -> dict[str, Any]:
    fit, production = result.calibration_fit, result.production_fit
    spend_ll = {} if fit.spend is None else {fit.spend_model: fit.spend.stats.log_likelihood}
    return {
        "parameters": {
            "calibration": fit.params(),
            "production": production.params() if production is not None else None,
        },
        "purchase_model": fit.model,
        "fit_method": fit.method,
        "fit_attempts": [a.as_dict() for a in fit.attempts],
        "mcmc_diagnostics": fit.diagnostics.as_dict() if fit.diagnostics is not None else None,
        "log_likelihood": {fit.model: fit.purchase.stats.log_likelihood, **spend_ll},
        "spend_model": fit.spend_model,
        "spend_fallback": fit.spend_fallback or None,
        "spend_fit_attempts": [a.as_dict() for a in fit.spend_attempts],
        "spend_spread_test": None if fit.spread_test is None else fit.spread_test.as_dict(),
    }


def summary_dict(result: TrainResult) -> dict[str, Any]:
    selection, check = result.selection, result.repeat_check
    return {
        "run_id": result.run_id,
        "model_name": result.config.tracking.model_name,
        "version": result.version,
        "promoted": result.promoted,
        "alias": result.config.tracking.alias if result.promoted else None,
        "data": _data(result),
        **_fit(result),
        "selection": (
            None
            if selection is None
            else {
                "winner": selection.winner,
                "metric": selection.metric,
                "reason": selection.reason,
                "candidates": selection.table.to_dict(orient="records"),
            }
        ),
        "repeat_purchase_check": (
            None
            if check is None
            else {
                "chi_square": check.chi_square,
                "degrees_of_freedom": check.degrees_of_freedom,
                "p_value": check.p_value,
            }
        ),
        "warnings": list(result.warnings),
        "metrics": result.validation.metrics,
        "checks": [c.as_dict() for c in result.gate.checks],
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in result.timings.items()},
        "contest": None if result.contest is None else result.contest.as_dict(),
    }


def _fmt(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _quarantine_text(quarantined: dict[str, int]) -> str:
    return f" ({', '.join(f'{n:,} {reason}' for reason, n in quarantined.items())})" if quarantined else ""


def _spend_line(result: TrainResult) -> str:
    fitted = result.calibration_fit
    if fitted.spend is None:
        return "  spend       none: the feed has no amounts, so no expected order value or CLV"
    values = "  ".join(f"{k}={v:.4g}" for k, v in fitted.spend.params.as_dict().items())
    if fitted.spend_model == "pooled_mean":
        return f"  spend       pooled mean {values.removeprefix('mean=')} for everyone ({fitted.spend_fallback})"
    return f"  Gamma-Gamma {values}"


def _baseline_lines(m: dict[str, float]) -> list[str]:
    """The model against each baseline: on revenue with a spend model, on purchases without."""
    kind, baselines = ("revenue", BASELINES) if "revenue_mae" in m else ("purchases", PURCHASE_BASELINES)
    lines = [f"  {kind:<11} model MAE {_fmt(m[f'{kind}_mae'])}, Spearman {m[f'{kind}_spearman']:.3f}"]
    for name in baselines:
        mae = m[f"baseline_{name}_{kind}_mae"]
        change = (m[f"{kind}_mae"] - mae) / mae * 100 if mae else float("nan")
        lines.append(
            f"              baseline {name}: MAE {_fmt(mae)} (model {'better' if change < 0 else 'worse'} by "
            f"{abs(change):.1f}%), Spearman {m[f'baseline_{name}_{kind}_spearman']:.3f}"
        )
    return lines


def _gate_lines(result: TrainResult) -> list[str]:
    lines = ["  gate"]
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
    return lines


def detected_format_text(configured: str | None, used: str | None) -> str:
    """What the printed summary's data line adds when the timestamps were read with a detected format."""
    return f"; timestamps read as {used} (detected)" if used is not None and configured is None else ""


def summary_text(result: TrainResult) -> str:
    m = result.validation.metrics
    fitted = result.calibration_fit
    ledger = result.prepared.ledger
    detected = detected_format_text(result.data.timestamp_format, result.prepared.timestamp_format)
    lines = [
        f"clv train: run {result.run_id}",
        f"  data        {result.data.description}: {ledger.rows_in:,} rows in, "
        f"{ledger.rows_used:,} used, {ledger.rows_quarantined:,} quarantined{_quarantine_text(ledger.quarantined)}; "
        f"{len(result.prepared.calibration):,} customers in calibration{detected}",
        f"  {LABELS[fitted.model]:<11} "
        + "  ".join(f"{k}={v:.4g}" for k, v in fitted.purchase.params.as_dict().items())
        + f"  (log-likelihood {fitted.purchase.stats.log_likelihood:,.2f}; {fitted.method}"
        + (f", {fitted.chosen.remedy}" if fitted.chosen is not None and fitted.chosen.remedy != "plain" else "")
        + ")",
        _spend_line(result),
        f"  holdout     purchases MAE {_fmt(m['purchases_mae'])}, "
        f"total error {m['purchases_total_pct_error']:+.1f}%;"
        f" churn AUC {m['churn_auc']:.3f}, Brier {m['churn_brier']:.3f}",
        *_baseline_lines(m),
    ]
    if result.repeat_check is not None:
        repeat = result.repeat_check
        lines.append(
            f"  repeat purchases  chi-square {repeat.chi_square:,.2f} on {repeat.degrees_of_freedom} df "
            f"(p = {repeat.p_value:.3g})"
        )
    if result.selection is not None:
        lines.append(f"  selection   {result.selection.reason}")
    if fitted.diagnostics is not None:
        d = fitted.diagnostics
        lines.append(
            f"  mcmc        max r-hat {d.max_rhat:.4f}, min ESS bulk {d.min_ess_bulk:,.0f} / tail "
            f"{d.min_ess_tail:,.0f}, {d.divergences} divergences"
        )
    lines += [f"  warning     {w}" for w in result.warnings]
    lines += result.contest.lines() if result.contest is not None else []
    lines += _gate_lines(result)
    if result.timings:
        stages = ", ".join(f"{stage.replace('_', ' ')} {seconds:.1f} s" for stage, seconds in result.timings.items())
        lines.append(f"  time        {stages}")
    name = result.config.tracking.model_name
    if result.promoted:
        lines.append(f"  registered  {name} version {result.version}, alias '{result.config.tracking.alias}' moved")
    else:
        lines.append(
            f"  not promoted: validation failed; nothing registered, '{result.config.tracking.alias}' unchanged"
        )
    return "\n".join(lines)


def _report_notes(fitted: FittedModels, champion: ChampionComparison, prepared: PreparedData) -> tuple[str, ...]:
    """What the reader must know before the numbers: a spend-model fallback, no amounts, the champion."""
    notes = []
    if fitted.spend_fallback:
        notes.append(f"Spend model: the pooled mean spend replaced Gamma-Gamma ({fitted.spend_fallback}).")
    if not prepared.has_amounts or fitted.spend is None:
        notes.append(
            "No spend model: this feed has no amounts (or fit.spend_model is none), so expected order value, "
            "CLV and the revenue metrics are not computed; the model is judged on purchases and churn."
        )
    if champion.note:
        notes.append(champion.note)
    return tuple(notes)


def report_notes(result: TrainResult) -> tuple[str, ...]:
    """The notes the report shows under its verdict."""
    advice = tuple(w for w in result.warnings if w.startswith("advice:"))
    return advice + _report_notes(result.calibration_fit, result.champion, result.prepared)
