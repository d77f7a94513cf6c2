"""``clv train`` for ``business.type: contractual``: the workflow in one MLflow run, registration, alias last."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from pipeline.config import Config
from pipeline.contractual.report import report_html
from pipeline.contractual.workflow import ContractualResult, check_business_type, train_contractual
from pipeline.engines import open_engine
from pipeline.outputs import write_tables
from pipeline.recorder import store
from pipeline.recorder.contractual import log_subscription_model, record_contractual, register_subscription

__all__ = ["run_contractual_training"]


def run_contractual_training(
    config: Config, config_yaml: str, output_dir: Path | None = None, checkpoint: Callable[[], None] = lambda: None
) -> ContractualResult:
    """Train, record and (when the gate passes) register and promote the subscription model."""
    check_business_type(config, config.engine.name)
    experiment_id = store.connect(config.tracking.experiment)
    engine = open_engine(config.engine)
    data = engine.open(config.data)
    with store.run(experiment_id) as run_id:
        result = dataclasses.replace(train_contractual(config, engine, data), run_id=run_id)
        record_contractual(result, config_yaml, report_html(result))
        if not result.gate.passed or result.model is None:
            _write(result, output_dir)
            return result
        checkpoint()
        model_uri = log_subscription_model(result, config_yaml)
        checkpoint()
        version = register_subscription(model_uri, config, result)
    checkpoint()
    store.set_alias(config.tracking.model_name, config.tracking.alias, version)
    result = dataclasses.replace(result, version=version)
    _write(result, output_dir)
    return result


def _write(result: ContractualResult, output_dir: Path | None) -> None:
    if output_dir is None:
        return
    tables = {"survival_holdout": result.validation.curves, "churn_holdout": result.validation.holdout}
    if result.scores is not None:
        tables["scores"] = result.scores
    if result.payback is not None:
        tables["payback"] = result.payback
    write_tables(output_dir, tables)
