"""``clv train``: the training workflow in one MLflow run, then registration and the alias move, last."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from models.purchase import LABELS
from pipeline.cac import read_cac
from pipeline.config import Config
from pipeline.engines import open_engine
from pipeline.glossary import scoring_definitions
from pipeline.outputs import write_tables
from pipeline.recorder import names, store
from pipeline.recorder.training import TrainingRecorder, log_model, register
from pipeline.report import render_report
from pipeline.summary import report_notes
from pipeline.workflow import TrainResult, check_config, train

if TYPE_CHECKING:
    from pipeline.contractual.workflow import ContractualResult
    from pipeline.discrete.workflow import DiscreteResult

__all__ = ["run_business_training", "run_training"]


@contextlib.contextmanager
def _staging(output_dir: Path | None, needed: bool) -> Iterator[Path]:
    """Where the Spark executors write the scores before the model is promoted: a scratch folder in
    ``output_dir`` (renamed to ``scores.parquet`` after the alias moved), or a temporary one."""
    if not needed:
        yield Path(os.devnull)
        return
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".clv-scores-", dir=output_dir) as scratch:
        yield Path(scratch) / "scores.parquet"


def _report(result: TrainResult, registered: str | None) -> str:
    config = result.config
    label = LABELS[result.calibration_fit.model]
    return render_report(
        title=f"CLV validation report: {config.tracking.model_name}",
        run_id=result.run_id,
        data_description=result.data.description,
        ledger=names.ledger_dict(result.prepared),
        parameters=result.calibration_fit.params(),
        validation=result.validation,
        gate=result.gate,
        figures=result.figures,
        business=result.business if registered else (),
        registered=registered,
        model_label=label,
        notes=report_notes(result),
        definitions=scoring_definitions(config.scoring_spec(), config.has_spend),
        contest=result.contest,
    )


def _write_outputs(result: TrainResult, output_dir: Path, staging: Path, distributed: bool) -> None:
    tables = {"holdout": result.validation.holdout}
    if not result.promoted:
        write_tables(output_dir, tables)
        return
    assert result.scores is not None
    if distributed:  # the executors' Parquet folder is the scores output
        target = output_dir / "scores.parquet"
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        staging.rename(target)
        write_tables(output_dir, tables)
    else:
        write_tables(output_dir, {"scores": result.scores, **tables})
    write_tables(output_dir, result.tables)


def run_training(
    config: Config, config_yaml: str, output_dir: Path | None = None, checkpoint: Callable[[], None] = lambda: None
) -> TrainResult:
    """Run the whole job in one MLflow run and return what it did.

    ``checkpoint`` is called between stages and before each registry change; the CLI's raises when a
    SIGTERM has arrived, so a stop is honoured even if a library swallowed the signal's exception.
    A model that fails the gate is never registered, and moving the alias is the job's last step.
    """
    check_config(config)
    written, config = config, config.resolved()
    experiment_id = store.connect(config.tracking.experiment)
    engine = open_engine(config.engine)
    data = engine.open(config.data)
    champion = store.champion_calibration_params(config.tracking.model_name, config.tracking.alias)
    distributed = config.engine.name == "spark"
    with _staging(output_dir, distributed) as staging:
        with store.run(experiment_id) as run_id:
            recorder = TrainingRecorder(engine, output_dir)
            recorder.start(written, config_yaml, data)
            result = train(
                config,
                engine,
                data,
                observer=recorder,
                champion=champion,
                checkpoint=checkpoint,
                staging=staging,
                cac=lambda customers: read_cac(config.business, customers),
                scratch=config.engine.temp_directory or Path(tempfile.gettempdir()),
            )
            result = dataclasses.replace(result, run_id=run_id)
            if not result.gate.passed or result.production_fit is None:
                recorder.report(_report(result, None))
                if output_dir is not None:
                    _write_outputs(result, output_dir, staging, distributed)
                return result
            production = result.production_fit.bundle(result.config.scoring_spec())
            checkpoint()
            model_uri = log_model(production, result, config_yaml)
            checkpoint()
            version = register(model_uri, result.config, run_id, data.fingerprint, result.gate)
            tracking = result.config.tracking
            registered = f"registered as {tracking.model_name} version {version}, alias '{tracking.alias}'"
            recorder.report(_report(result, registered))
            checkpoint()
        # The run has ended FINISHED; moving the alias is the last step of the job (not after a SIGTERM
        # that came while the run was ending).
        checkpoint()
        store.set_alias(tracking.model_name, tracking.alias, version)
        result = dataclasses.replace(result, version=version)
        if output_dir is not None:
            _write_outputs(result, output_dir, staging, distributed)
    return result


def run_business_training(
    config: Config, config_yaml: str, output_dir: Path | None = None, checkpoint: Callable[[], None] = lambda: None
) -> TrainResult | ContractualResult | DiscreteResult:
    """``clv train`` by ``business.type``: today's job, the sBG job (contractual) or the BG/BB job (discrete)."""
    if config.business.type == "non_contractual":
        return run_training(config, config_yaml, output_dir, checkpoint)
    if config.business.type == "discrete":
        from pipeline.discrete.command import run_discrete_training

        return run_discrete_training(config, config_yaml, output_dir, checkpoint)
    from pipeline.contractual.command import run_contractual_training

    return run_contractual_training(config, config_yaml, output_dir, checkpoint)
