"""What the contractual job records in its MLflow run, and its registration: every name it writes is here."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from models.subscription_model import subscription_signature, write_subscription_params
from pipeline.config import Config, config_as_dict
from pipeline.contractual.workflow import ContractualResult
from pipeline.recorder import model_log, names, store

__all__ = ["COHORT_TABLE", "CURVES_TABLE", "log_subscription_model", "record_contractual", "register_subscription"]

CURVES_TABLE = "tables/survival_holdout.csv"
COHORT_TABLE = "tables/cohort_params.csv"
SCORES_TABLE = "tables/scores.parquet"
PAYBACK_TABLE = "tables/payback.csv"
CHARGE_INTERVAL_METRIC = "median_charge_interval_days"
LONGER_INTERVAL_METRIC = "longer_interval_share"
"""The share of the subscribers charged on two days or more charged at least twice the billing period apart (a
mix of plans: :func:`pipeline.contractual.intervals.mixed_plans_advice`)."""
LIFETIME_CAP_METRIC = "at_lifetime_cap"
"""The active subscribers whose ``expected_remaining_lifetime`` the model's horizon decides
(:func:`models.subscription_model.at_lifetime_cap`; the summary's ``scores.at_lifetime_cap``); logged when the run
scored."""


def _fit_metrics(prefix: str, result: ContractualResult) -> dict[str, float]:
    fits = result.calibration_fits if prefix == "" else result.production_fits
    if fits is None:
        return {}
    pooled = fits.pooled
    diagnostics = fits.diagnostics.as_dict() if fits.diagnostics is not None else {}
    return {
        f"{prefix}sbg_alpha": pooled.params.alpha,
        f"{prefix}sbg_beta": pooled.params.beta,
        f"{prefix}sbg_log_likelihood": pooled.stats.log_likelihood,
        f"{prefix}sbg_cohorts_own_fit": float(len(fits.own)),
        **{f"{prefix}mcmc_{name}": value for name, value in diagnostics.items()},
    }


def _interval_metrics(result: ContractualResult) -> dict[str, float]:
    """The feed's median interval between a subscriber's charges (the advice compares it with the billing
    period) and the share of its subscribers charged at least twice the period apart; nothing when they were not
    measured."""
    interval = result.subscribers.charge_interval
    if interval is None:
        return {}
    return {CHARGE_INTERVAL_METRIC: interval.median_days, LONGER_INTERVAL_METRIC: interval.longer_share}


def _score_metrics(result: ContractualResult) -> dict[str, float]:
    """How many active subscribers the lifetime horizon decides; nothing when the run scored none (a failed gate)."""
    if result.lifetime_capped is None:
        return {}
    return {LIFETIME_CAP_METRIC: float(result.lifetime_capped)}


def record_contractual(result: ContractualResult, config_yaml: str, report_html: str) -> None:
    """Config, tags, ledger, metrics, gate, tables and report of a contractual run (no model)."""
    config = result.config
    store.log_config(config_as_dict(config), config_yaml)
    ledger = result.subscribers.ledger
    store.set_tags(
        {
            "business.type": config.business.type,
            "data.source": result.data.description,
            "data.fingerprint": result.data.fingerprint,
            "fit.method": result.calibration_fits.method,
            "gate.passed": str(result.gate.passed).lower(),
            **{f"gate.{c.name}": str(c.passed).lower() for c in result.gate.checks},
            **{f"advice.{i}": line for i, line in enumerate(result.advice)},
            **names.timestamp_format_tags(config.data.timestamp_format, result.subscribers.timestamp_format),
        }
    )
    metrics: dict[str, float] = {
        "rows_in": float(ledger.rows_in),
        "rows_used": float(ledger.rows_used),
        "rows_quarantined": float(ledger.rows_quarantined),
        "subscribers": float(len(result.subscribers.full)),
        **_interval_metrics(result),
        **_score_metrics(result),
        **result.validation.metrics,
        **_fit_metrics("", result),
        **_fit_metrics("production_", result),
        **names.stage_metrics(result.timings),
    }
    store.log_metrics(metrics)
    store.log_dict(ledger.as_dict(), names.LEDGER_ARTIFACT)
    store.log_table(result.validation.curves, CURVES_TABLE)
    store.log_table(result.calibration_fits.table(), COHORT_TABLE)
    if len(result.subscribers.quarantine):
        store.log_table(result.subscribers.quarantine, names.QUARANTINE_TABLE)
    if result.scores is not None:
        store.log_table(result.scores, SCORES_TABLE)
    if result.payback is not None:
        store.log_table(result.payback, PAYBACK_TABLE)
    store.log_text(report_html, names.REPORT_ARTIFACT)


def log_subscription_model(result: ContractualResult, config_yaml: str) -> str:
    """Log the production subscription model in the run; its URI."""
    assert result.model is not None
    assert result.scores is not None
    example = result.scores.loc[:, ["customer_id", "cohort", "renewals", "price"]].head(5).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        params = write_subscription_params(result.model, Path(tmp) / "params.json")
        return model_log.log_code_model(
            "subscription_serving.py", params, example, config_yaml, subscription_signature()
        )


def register_subscription(model_uri: str, config: Config, result: ContractualResult) -> int:
    """Register the logged model, tagged with its business type and gate (the alias is not moved here)."""
    tags: dict[str, Any] = {
        "run_id": result.run_id,
        "data.fingerprint": result.data.fingerprint,
        "business.type": config.business.type,
        "gate.passed": "true",
        **{f"gate.{c.name}": f"{c.value:.6g}" for c in result.gate.checks},
    }
    version = store.register(model_uri, config.tracking.model_name, {k: str(v) for k, v in tags.items()})
    store.set_tags({"registered_model": config.tracking.model_name, "registered_version": version})
    return version
