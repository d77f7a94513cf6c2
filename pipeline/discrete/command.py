"""``clv train`` for ``business.type: discrete``: the workflow in one MLflow run, registration, alias last;
and its summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.spend import LABELS, spend_model_name
from pipeline.config import Config
from pipeline.discrete.workflow import DiscreteResult, train_discrete
from pipeline.engines import open_engine
from pipeline.errors import ConfigError
from pipeline.outputs import write_tables
from pipeline.recorder import store
from pipeline.recorder.discrete import log_opportunity_model, record_discrete, register_discrete
from pipeline.summary import detected_format_text

__all__ = ["discrete_summary_dict", "discrete_summary_text", "run_discrete_training"]


def run_discrete_training(
    config: Config, config_yaml: str, output_dir: Path | None = None, checkpoint: Callable[[], None] = lambda: None
) -> DiscreteResult:
    if config.engine.name != "duckdb":
        raise ConfigError(
            f"business.type: 'discrete' runs on DuckDB only; set engine.name: duckdb (not {config.engine.name})"
        )
    experiment_id = store.connect(config.tracking.experiment)
    engine = open_engine(config.engine)
    data = engine.open(config.data)
    with store.run(experiment_id) as run_id:
        result = dataclasses.replace(train_discrete(config, engine, data), run_id=run_id)
        record_discrete(result, config_yaml)
        if not result.gate.passed or result.model is None:
            _write(result, output_dir)
            return result
        checkpoint()
        model_uri = log_opportunity_model(result, config_yaml)
        checkpoint()
        version = register_discrete(model_uri, result)
    checkpoint()
    store.set_alias(config.tracking.model_name, config.tracking.alias, version)
    result = dataclasses.replace(result, version=version)
    _write(result, output_dir)
    return result


def _write(result: DiscreteResult, output_dir: Path | None) -> None:
    if output_dir is None:
        return
    tables = {"holdout": result.validation.holdout}
    if result.scores is not None:
        tables["scores"] = result.scores
    write_tables(output_dir, tables)


def discrete_summary_dict(result: DiscreteResult) -> dict[str, Any]:
    config = result.config
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
            **result.histories.ledger.as_dict(),
            "has_amounts": result.histories.has_amounts,
            "timestamp_format": result.histories.timestamp_format,
            "customers": len(result.histories.full),
            "calibration_end": str(result.histories.calibration_end),
            "observation_end": str(result.histories.observation_end),
        },
        "fit": {
            "model": "bgbb",
            "calibration": result.validation.fit.params.as_dict(),
            "production": result.production_fit.params.as_dict() if result.production_fit is not None else None,
            "remedy": result.validation.fit.remedy,
            "production_remedy": result.production_fit.remedy if result.production_fit is not None else "",
            "spend_model": _spend_name(result),
            "spend": result.spend.fit.params.as_dict() if result.spend is not None else None,
            "spend_fallback": result.spend.fallback if result.spend is not None else "",
        },
        "advice": list(result.advice),
        "warnings": list(result.warnings),
        "metrics": result.validation.metrics,
        "checks": [c.as_dict() for c in result.gate.checks],
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in result.timings.items()},
    }


def _spend_name(result: DiscreteResult) -> str:
    return spend_model_name(None if result.spend is None else result.spend.fit.params)


def discrete_summary_text(result: DiscreteResult) -> str:
    m = result.validation.metrics
    ledger = result.histories.ledger
    p = result.validation.fit.params
    verdict = (
        f"registered as {result.config.tracking.model_name} version {result.version}, alias "
        f"'{result.config.tracking.alias}'"
        if result.promoted
        else "not registered: " + ", ".join(c.name for c in result.gate.failed)
    )
    return "\n".join(
        [
            f"clv train: run {result.run_id} (business.type discrete)",
            f"  data        {result.data.description}: {ledger.rows_in:,} rows in, {ledger.rows_used:,} used, "
            f"{ledger.rows_quarantined:,} quarantined; {len(result.histories.full):,} customers"
            + detected_format_text(result.config.data.timestamp_format, result.histories.timestamp_format),
            f"  model       BG/BB: alpha {p.alpha:.4g}, beta {p.beta:.4g}, gamma {p.gamma:.4g}, delta {p.delta:.4g}"
            + (f"; {result.validation.fit.remedy}" if result.validation.fit.remedy else ""),
            f"  holdout     purchases MAE {m['purchases_mae']:.4f} (baselines: last period "
            f"{m['baseline_last_period_purchases_mae']:.4f}, average rate "
            f"{m['baseline_average_rate_purchases_mae']:.4f})",
            *_spend_lines(result),
            f"  gate        {'passed' if result.gate.passed else 'FAILED'}; {verdict}",
            *(f"  {line}" for line in result.advice),
        ]
    )


def _spend_lines(result: DiscreteResult) -> list[str]:
    if result.spend is None:
        if result.model is None:  # the gate failed: no production fit, no spend model
            return []
        why = "fit.spend_model: none" if result.histories.has_amounts else "an event feed: no amounts"
        return [
            f"  spend       none ({why}): expected_transactions counts purchases; no expected order value or CLV "
            "in money"
        ]
    values = ", ".join(f"{k} {v:.4g}" for k, v in result.spend.fit.params.as_dict().items())
    note = f" (fallback: {result.spend.fallback})" if result.spend.fallback else ""
    return [f"  spend       {LABELS[_spend_name(result)]}: {values}{note}"]
