"""``clv monitor``: the registered champion against the transactions since its data ended, as a ``monitor`` run.

Exit code 0: no retrain due (healthy, a warning, or too early to judge); :data:`pipeline.monitor.RETRAIN_EXIT_CODE`
(4): a retrain is due. An ``--as-of`` before the model's data ended is a ConfigError (exit 2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from models.purchase import LABELS
from pipeline.commands.customers import load_model, source_at
from pipeline.config import DataConfig
from pipeline.config.loading import describe, read_yaml
from pipeline.engines import open_engine
from pipeline.errors import ConfigError, InputError
from pipeline.monitor import IGNORED_QUARANTINE, UNTIMED_QUARANTINE, MonitorConfig, Monitoring, Reference, monitor
from pipeline.monitor_report import checks_figure, periods_table, summary_dict, tracking_figure
from pipeline.outputs import write_summary
from pipeline.recorder import names, store
from pipeline.workflow import period_length

__all__ = ["MonitorRun", "load_monitor_config", "reference_from", "run_monitor"]


@dataclass(frozen=True)
class MonitorRun:
    model: dict[str, str]
    """``uri``, ``name``, ``version`` and ``run_id`` of the model that was judged."""
    run_id: str
    result: Monitoring
    source: str

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def load_monitor_config(path: Path | None) -> MonitorConfig:
    """The ``monitor:`` mapping of a YAML file (every key optional); the defaults without a file."""
    if path is None:
        return MonitorConfig()
    try:
        raw = read_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict) or set(raw) - {"monitor"}:
        raise ConfigError(f"{path}: expected one top-level key, monitor (the thresholds of clv monitor)")
    try:
        return MonitorConfig.model_validate(raw.get("monitor") or {})
    except ValidationError as exc:
        raise ConfigError(describe(exc, str(path), "monitor.")) from None


def _training_source(data: DataConfig, record: dict[str, Any]) -> DataConfig:
    """The model's own training source: its config's, with the file or folder training read (an absolute path,
    tagged on the run) in place of a relative ``data.path``, which was relative to where training ran."""
    trained_on = record["tags"].get(names.DATA_PATH_TAG)
    if data.path is None or data.path.is_absolute() or not trained_on:
        return data
    return data.model_copy(update={"path": Path(trained_on)})


def reference_from(record: dict[str, Any]) -> Reference:
    """What the training run knew: its data's observation end (``ledger.json``), its holdout churn AUC and its
    quarantine counts (rows after its observation end left out, as the monitor leaves them out; those without a
    readable timestamp counted apart)."""
    try:
        end = dt.date.fromisoformat(str(record["ledger"]["observation_end"]))
    except (KeyError, ValueError):
        raise InputError(f"model version {record.get('version')}: its run has no ledger.json observation_end") from None
    metrics = record["metrics"]
    after = int(metrics.get(f"quarantined_{IGNORED_QUARANTINE}", 0))
    return Reference(
        observation_end=end,
        churn_auc=float(metrics.get("churn_auc", float("nan"))),
        rows_in=int(metrics.get("rows_in", 0)) - after,
        rows_quarantined=int(metrics.get("rows_quarantined", 0)) - after,
        rows_untimed=sum(int(metrics.get(f"quarantined_{reason}", 0)) for reason in UNTIMED_QUARANTINE),
    )


def _record(run: MonitorRun, tags: dict[str, str], experiment: str) -> str:
    result = run.result
    experiment_id = store.connect(names.linked_experiment(experiment, "monitor"))
    with store.run(experiment_id, run_name="monitor") as run_id:
        store.set_tags({names.RUN_TYPE_TAG: "monitor", **tags})
        for period in result.periods:
            metrics = {names.monitor_metric(k): v for k, v in period.metrics.items()}
            metrics |= {names.monitor_metric(f"check_{c.name}_passed"): float(c.passed) for c in period.checks}
            store.log_metrics(metrics, step=period.index)
        store.log_metrics(
            {names.monitor_metric("periods"): len(result.periods), names.monitor_metric("stale"): result.exit_code != 0}
        )
        if result.periods:
            store.log_table(periods_table(result), names.MONITOR_TABLE)
            store.log_figure(checks_figure(result), names.plot_artifact("monitor_checks"))
            label = LABELS.get(run.model.get("purchase_model", ""), "model")
            store.log_figure(tracking_figure(result, label), names.plot_artifact("monitor_tracking"))
        store.log_dict(summary_dict(result, run.model, result.exit_code), "monitor_summary.json")
    return run_id


def run_monitor(
    model_uri: str,
    input_path: Path | None = None,
    last: dt.date | None = None,
    config: MonitorConfig | None = None,
    summary: Path | None = None,
) -> MonitorRun:
    """``clv monitor``: judge the model on the feed (``input_path``, default the model's own training source) in
    every complete period since its data ended, up to ``last`` (default the feed's last date); record a
    ``monitor`` run linked to the model version; write the ``--summary`` JSON."""
    if not model_uri.startswith("models:/"):
        raise ConfigError(f"--model-uri {model_uri}: clv monitor needs a registered model (models:/NAME@ALIAS or /N)")
    model = load_model(model_uri)
    record = store.model_record(model_uri)
    reference = reference_from(record)
    if last is not None and last < reference.observation_end:
        raise ConfigError(
            f"--as-of {last} is before {model_uri}'s data ended (T0 {reference.observation_end}): nothing to judge; "
            f"give a date on or after {reference.observation_end}"
        )
    config = config or MonitorConfig()
    data_config = (
        _training_source(model.config.data, record) if input_path is None else source_at(model.config.data, input_path)
    )
    engine = open_engine(model.config.engine)
    data = engine.open(data_config)
    with engine.errors(data.description):
        result = monitor(
            model.params, engine, data, model.config.prepare, reference, period_length(model.config), config, last=last
        )
    engine.close()
    described = {k: str(record[k]) for k in ("name", "version", "run_id")}
    described |= {"uri": model_uri, "purchase_model": model.params.purchase_model}
    done = MonitorRun(described, "", result, data.description)
    tags = names.linked_tags(record, model_uri) | {
        "monitor.verdict": result.verdict,
        "monitor.failing": ", ".join(result.failing),
        "monitor.failed_recently": ", ".join(result.failed_recently),
        "monitor.observation_end": str(reference.observation_end),
        "monitor.source": data.description,
        "data.fingerprint": data.fingerprint,
    }
    run_id = _record(done, tags, model.config.tracking.experiment)
    if summary is not None:
        write_summary(summary, summary_dict(result, described, result.exit_code) | {"run_id": run_id})
    return MonitorRun(described, run_id, result, data.description)
