"""What ``clv train`` records in its MLflow run, as the workflow goes: the :class:`TrainingRecorder`.

Names come from :mod:`pipeline.recorder.names`; every write goes through :mod:`pipeline.recorder.store`.

The per-customer tables (``PER_CUSTOMER_TABLES``) are stored as ``tracking.tables`` says: whole, a sample
with a pointer to the ``--output`` file (the default when ``--output`` is given: the big tables are not
stored twice), or the pointer alone. See docs/explanation/benchmarks.md for what a run stores and how big.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from models.bundle import CLVModelParams
from models.purchase import LABELS
from pipeline import plots
from pipeline.champion import ChampionComparison
from pipeline.checks import RepeatPurchaseCheck
from pipeline.config import Config, config_as_dict
from pipeline.engines import Engine, Source
from pipeline.engines.prepared import PreparedData
from pipeline.fit import FittedModels
from pipeline.gate import GateResult
from pipeline.outputs import write_text
from pipeline.recorder import batch, model_log, names, store
from pipeline.recorder.contest import ContestRecorder
from pipeline.selection import Selection
from pipeline.validate import Validation
from pipeline.workflow import Candidate, TrainResult

__all__ = ["PER_CUSTOMER_TABLES", "TrainingRecorder", "config_hash", "log_model", "register"]

PER_CUSTOMER_TABLES = ("holdout", "scores", "at_risk_valuable", "clv_cac")
"""One row per customer: stored in the run as ``tracking.tables`` says (the others are small, always whole)."""


def config_hash(config: Config) -> str:
    """SHA-256 of the config's canonical JSON: the same hash and data fingerprint mean a rerun."""
    return hashlib.sha256(json.dumps(config_as_dict(config), sort_keys=True).encode()).hexdigest()


class TrainingRecorder(ContestRecorder):
    """Records the training workflow's steps in the active MLflow run (an :class:`~pipeline.observer.Observer`).

    ``output_dir``: where the quarantined rows are also written (``clv train --output``), or None.
    """

    def __init__(self, engine: Engine, output_dir: Path | None) -> None:
        self.engine = engine
        self.output_dir = output_dir
        self.tables: Literal["full", "sample", "none"] = "full"
        self.sample_rows = 10_000

    def start(self, written: Config, config_yaml: str, data: Source) -> None:
        """The config as the user wrote it, and where the data came from."""
        self.tables = written.tracking.table_mode(self.output_dir is not None)
        self.sample_rows = written.tracking.table_sample_rows
        store.log_config(config_as_dict(written), config_yaml)
        tags = {
            "data.source": data.description,
            "data.fingerprint": data.fingerprint,
            "config.hash": config_hash(written),
        }
        if written.data.path is not None:
            tags[names.DATA_PATH_TAG] = str(written.data.path.resolve())
        store.set_tags(tags)

    def prepared(self, data: Source, prepared: PreparedData) -> None:
        tags = names.timestamp_format_tags(data.timestamp_format, prepared.timestamp_format)
        batch.log_batch(names.ledger_metrics(prepared), tags)
        store.log_dict(names.ledger_dict(prepared), names.LEDGER_ARTIFACT)
        if prepared.ledger.rows_quarantined:  # to --output when given, and always to the run
            with tempfile.TemporaryDirectory() as tmp:
                folder = self.output_dir if self.output_dir is not None else Path(tmp)
                with self.engine.errors(data.description):
                    path = self.engine.write_quarantine(prepared, folder / Path(names.QUARANTINE_TABLE).name)
                store.log_file(path, names.QUARANTINE_DIR)

    def fit_input(self, prefix: str, info: dict[str, float]) -> None:
        store.log_metrics({f"spark_{prefix}{k}": v for k, v in info.items()})

    def candidate(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self._child(name)

    @contextlib.contextmanager
    def _child(self, name: str) -> Iterator[None]:
        with store.child_run(name):
            store.set_tags({"candidate": name})
            yield

    def candidate_done(self, name: str, status: str, candidate: Candidate | None) -> None:
        metrics: dict[str, float] = {}
        tags: dict[str, object] = {"candidate.status": status}
        files: dict[str, batch.ArtifactContent] = {}
        if candidate is not None:
            metrics, fit_tags, files = _fit_record("", candidate.fitted)
            metrics |= candidate.validation.metrics | names.check_metrics(candidate.repeat_check)
            tags |= fit_tags
        batch.log_batch(metrics, tags)
        batch.log_files(files)

    def selected(self, selection: Selection) -> None:
        store.set_tags(
            {
                "selection.winner": selection.winner,
                "selection.metric": selection.metric,
                "selection.reason": selection.reason,
            }
        )
        store.log_table(selection.table, names.MODEL_SELECTION_TABLE)

    def fitted(self, prefix: str, fitted: FittedModels) -> None:
        metrics, tags, files = _fit_record(prefix, fitted)
        batch.log_batch(metrics, tags)
        batch.log_files(files)

    def calibrated(
        self,
        fitted: FittedModels,
        validation: Validation,
        check: RepeatPurchaseCheck,
        prepared: PreparedData,
        warning: str | None,
        figures: Mapping[str, bytes],
    ) -> None:
        """The chosen calibration fit, its validation on the holdout (``figures``: its plots, as PNG) and its
        repeat-purchase check: one write of metrics and tags, one of files."""
        metrics, tags, files = _fit_record("", fitted)
        tags["assumption.spend_frequency_independence"] = "violated" if warning else "ok"
        holdout_tags, holdout_files = self._per_customer("holdout", validation.holdout)
        tables = {"holdout_by_frequency": validation.by_frequency, "purchase_tracking": validation.tracking}
        tables |= {"churn_calibration": validation.churn_calibration, "repeat_purchases": check.table}
        figure = plots.repeat_purchases(check.table, LABELS[fitted.model], check.chi_square, check.p_value)
        files |= holdout_files | {names.table_artifact(name, "csv"): table for name, table in tables.items()}
        files |= {names.plot_artifact(name): png for name, png in figures.items()}
        files[names.plot_artifact("repeat_purchases")] = plots.png(figure)
        batch.log_batch(metrics | validation.metrics | names.check_metrics(check), tags | holdout_tags)
        batch.log_files(files)

    def champion(self, comparison: ChampionComparison) -> None:
        batch.log_batch(comparison.metrics, comparison.tags)

    def _per_customer(self, name: str, table: pd.DataFrame) -> tuple[dict[str, object], dict[str, pd.DataFrame]]:
        """A per-customer table, as ``tracking.tables`` says: the tags and files to log. A sample or nothing is
        tagged with the whole table's ``--output`` file (``tables.<name>``) and its row count
        (``tables.<name>.rows``)."""
        if self.tables == "full" or self.output_dir is None:
            return {}, {names.table_artifact(name): table}
        tags: dict[str, object] = {f"tables.{name}": str(self.output_dir / f"{name}.parquet")}
        tags[f"tables.{name}.rows"] = len(table)
        if self.tables == "sample":
            return tags, {names.table_artifact(f"{name}.sample"): table.head(self.sample_rows)}
        return tags, {}

    def scored(self, scores: pd.DataFrame, tables: dict[str, pd.DataFrame], metrics: dict[str, float]) -> None:
        tags, files = self._per_customer("scores", scores)
        for name, table in tables.items():
            if name in PER_CUSTOMER_TABLES:
                table_tags, table_files = self._per_customer(name, table)
                tags, files = tags | table_tags, files | table_files
            else:
                files[names.table_artifact(name)] = table
        batch.log_batch(metrics, tags)
        batch.log_files(files)

    def gated(self, gate: GateResult) -> None:
        store.set_tags(
            {"gate.passed": gate.passed, **{f"gate.{c.name}": "pass" if c.passed else "fail" for c in gate.checks}}
        )

    def timed(self, timings: dict[str, float]) -> None:
        store.log_metrics(names.stage_metrics(timings))

    def report(self, text: str) -> None:
        """The HTML report, as ``report.html`` in the run (and in ``--output`` when given)."""
        store.log_text(text, names.REPORT_ARTIFACT)
        if self.output_dir is not None:
            write_text(self.output_dir / names.REPORT_ARTIFACT, text)


def log_model(model: CLVModelParams, result: TrainResult, config_yaml: str) -> str:
    """Log the production model in the run; its URI. When the blend won the contest and was built at
    observation end, the model serves it (``challenger.registered`` = ``true``); otherwise it is BTYD's."""
    served = result.contest.served if result.contest is not None else None
    if served is None:
        return model_log.log_model(model, result.prepared.full.head(5).reset_index(drop=True), config_yaml)
    uri = model_log.log_model(model, served.example, config_yaml, served.model)
    store.set_tags({names.CHALLENGER_REGISTERED_TAG: "true"})
    return uri


def register(model_uri: str, config: Config, run_id: str, fingerprint: str, gate: GateResult) -> int:
    """Register the logged model as a new version, tagged with its gate (the alias is not moved here)."""
    tags = {
        "run_id": run_id,
        "data.fingerprint": fingerprint,
        "gate.passed": "true",
        **{f"gate.{c.name}": f"{c.value:.6g}" for c in gate.checks},
    }
    version = store.register(model_uri, config.tracking.model_name, tags)
    store.set_tags({"registered_model": config.tracking.model_name, "registered_version": version})
    return version


def _fit_record(
    prefix: str, fitted: FittedModels
) -> tuple[dict[str, float], dict[str, object], dict[str, batch.ArtifactContent]]:
    """A fit's metrics, tags and attempt tables (when a remedy ran), by artifact path."""
    files: dict[str, batch.ArtifactContent] = {}
    for name, attempts in (("fit_attempts", fitted.attempts), ("spend_fit_attempts", fitted.spend_attempts)):
        if attempts:
            files[names.table_artifact(f"{prefix}{name}", "csv")] = pd.DataFrame([a.as_dict() for a in attempts])
    return dict(names.fit_metrics(prefix, fitted)), dict(names.fit_tags(prefix, fitted)), files
