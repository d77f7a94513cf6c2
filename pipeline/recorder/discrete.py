"""What the discrete (BG/BB) job records in its MLflow run, its model and its registration."""

from __future__ import annotations

import tempfile
from pathlib import Path

from models.opportunity_model import opportunity_signature
from pipeline.config import config_as_dict
from pipeline.discrete.workflow import DiscreteResult
from pipeline.recorder import model_log, names, store

__all__ = ["HOLDOUT_TABLE", "SCORES_TABLE", "log_opportunity_model", "record_discrete", "register_discrete"]

HOLDOUT_TABLE = "tables/holdout.parquet"
SCORES_TABLE = "tables/scores.parquet"


def record_discrete(result: DiscreteResult, config_yaml: str) -> None:
    config = result.config
    ledger = result.histories.ledger
    store.log_config(config_as_dict(config), config_yaml)
    store.set_tags(
        {
            "business.type": config.business.type,
            "data.source": result.data.description,
            "data.fingerprint": result.data.fingerprint,
            "gate.passed": str(result.gate.passed).lower(),
            "bgbb.remedy": result.validation.fit.remedy,
            **{f"advice.{i}": line for i, line in enumerate(result.advice)},
            **names.timestamp_format_tags(config.data.timestamp_format, result.histories.timestamp_format),
        }
    )
    fit = result.validation.fit
    metrics = {
        "rows_in": float(ledger.rows_in),
        "rows_used": float(ledger.rows_used),
        "rows_quarantined": float(ledger.rows_quarantined),
        "customers": float(len(result.histories.full)),
        **result.validation.metrics,
        **{f"bgbb_{k}": v for k, v in fit.params.as_dict().items()},
        "bgbb_log_likelihood": fit.stats.log_likelihood,
        "bgbb_penalizer": fit.penalizer,
        **names.stage_metrics(result.timings),
    }
    if result.production_fit is not None:
        metrics |= {f"production_bgbb_{k}": v for k, v in result.production_fit.params.as_dict().items()}
        metrics["production_bgbb_penalizer"] = result.production_fit.penalizer
        store.set_tags({"production_bgbb.remedy": result.production_fit.remedy})
        # The spend model is fitted with the production BG/BB, on the whole history: named as the
        # non-contractual job's production fit (production_gamma_gamma_p, production_spend_model, ...).
        spend = result.spend
        if spend is not None:
            metrics |= names.spend_fit_metrics("production_", spend.fit)
        store.set_tags(
            names.spend_tags(
                "production_", "none" if spend is None else spend.fit.model, "" if spend is None else spend.fallback
            )
        )
    store.log_metrics(metrics)
    store.log_dict(ledger.as_dict(), names.LEDGER_ARTIFACT)
    store.log_table(result.validation.holdout, HOLDOUT_TABLE)
    if len(result.histories.quarantine):
        store.log_table(result.histories.quarantine, names.QUARANTINE_TABLE)
    if result.scores is not None:
        store.log_table(result.scores, SCORES_TABLE)


def log_opportunity_model(result: DiscreteResult, config_yaml: str) -> str:
    assert result.model is not None
    assert result.scores is not None
    example = result.scores.loc[:, list(result.model.input_columns)].head(5)
    with tempfile.TemporaryDirectory() as tmp:
        params = result.model.write(Path(tmp) / "params.json")
        return model_log.log_code_model(
            "opportunity_serving.py",
            params,
            example.reset_index(drop=True),
            config_yaml,
            opportunity_signature(result.model),
        )


def register_discrete(model_uri: str, result: DiscreteResult) -> int:
    config = result.config
    tags = {
        "run_id": result.run_id,
        "data.fingerprint": result.data.fingerprint,
        "business.type": config.business.type,
        "gate.passed": "true",
        **{f"gate.{c.name}": f"{c.value:.6g}" for c in result.gate.checks},
    }
    version = store.register(model_uri, config.tracking.model_name, tags)
    store.set_tags({"registered_model": config.tracking.model_name, "registered_version": version})
    return version
