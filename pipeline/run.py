"""The one module that chains the stages: prepare -> fit -> validate -> gate -> refit -> score -> register.

The stages are pure; this module does the I/O through ``sources``, ``outputs`` and ``tracking``.
Registry changes come last, and only after every validation check has passed: a model that fails
the gate is never registered, and moving the alias is the final step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException

from models.bundle import CLVModelParams
from models.clv import DAYS_PER_UNIT
from models.contract import required_columns
from models.purchase import LABELS
from pipeline import business, plots, tracking
from pipeline.cac import read_cac
from pipeline.checks import RepeatPurchaseCheck, repeat_purchase_check, spend_independence_warning
from pipeline.config import CandidateConfig, Config, DataConfig, config_as_dict, parse_config
from pipeline.engines import Engine, Source, open_engine
from pipeline.engines.prepared import Ledger, PreparedData
from pipeline.errors import InputError
from pipeline.fit import FitInput, FittedModels, fit_histories
from pipeline.gate import GateResult, check_criteria_known, check_selection_known, diagnostic_checks, evaluate_gate
from pipeline.glossary import scoring_definitions
from pipeline.outputs import TableWriter, write_summary, write_tables, write_text
from pipeline.report import BusinessView, render_report
from pipeline.selection import NoCandidateError, Selection, select
from pipeline.validate import BASELINES, Validation, metric_direction, validate

DAYS_PER_PERIOD = {"day": 1.0, "week": 7.0}


@dataclass(frozen=True)
class ScoreResult:
    model_uri: str
    as_of: dt.date
    ledger: Ledger
    customers: int
    output: Path
    quarantine: Path | None


def _scoring_source(data: DataConfig, input_path: Path) -> DataConfig:
    """The training config's column mapping and CSV options, exactly as the user set them, pointed at the
    file to score."""
    suffix = input_path.suffix.lower()
    if input_path.is_dir() or suffix == ".parquet":
        return data.pointed_at("parquet", input_path)
    if suffix in (".csv", ".txt", ".tsv"):
        return data.pointed_at("csv", input_path)
    raise InputError(f"--input {input_path}: expected a .csv or .parquet file, or a folder of .parquet files")


def score_from_registry(
    model_uri: str,
    input_path: Path,
    output: Path,
    as_of: dt.date,
    chunk_rows: int = 1_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreResult:
    """``clv score``: prepare raw transactions with the model's own config, score them in chunks, and add the
    business columns that training writes too (``clv_<N>d``, ``value_segment``: ranked over all customers)."""
    model, config_yaml = tracking.load_scoring_model(model_uri)
    config = parse_config(yaml.safe_load(config_yaml), f"{model_uri} (training config)").resolved()
    data_config = _scoring_source(config.data, input_path)
    writer = TableWriter(output)  # checks the output suffix before any work
    engine = open_engine(config.engine)
    data = engine.open(data_config)
    with engine.errors(data.description):
        prepared = engine.prepare_as_of(data, config.prepare, as_of)
    customers = prepared.customers
    params = model.model
    assert params is not None  # loaded with its context
    inputs = list(required_columns(params.has_spend))
    parts = []
    for start in range(0, len(customers), chunk_rows):
        chunk = customers.iloc[start : start + chunk_rows]
        try:
            scores = model.predict(None, chunk.loc[:, inputs].reset_index(drop=True))
        except (ValueError, MlflowException) as exc:  # contract, schema or non-finite scores
            raise InputError(f"{model_uri}: cannot score {data.description}: {str(exc).splitlines()[0]}") from None
        if prepared.has_amounts:
            scores["historical_clv"] = chunk["total_spend"].to_numpy()
        parts.append(scores)
        if progress is not None:
            progress(start + len(chunk), len(customers))
    scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if parts:
        scored = business.with_views(params, customers.reset_index(drop=True), scored)
    with writer:
        for start in range(0, len(scored), chunk_rows):
            writer.write(scored.iloc[start : start + chunk_rows])
    quarantine = None
    if prepared.ledger.rows_quarantined:
        with engine.errors(data.description):
            quarantine = engine.write_quarantine(prepared, output.with_name(f"{output.stem}.quarantine.parquet"))
    engine.close()
    return ScoreResult(model_uri, as_of, prepared.ledger, len(customers), output, quarantine)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    config: Config
    data: Source
    prepared: PreparedData
    calibration_fit: FittedModels
    validation: Validation
    gate: GateResult
    production_fit: FittedModels | None
    scores: pd.DataFrame | None
    version: int | None
    selection: Selection | None = None
    repeat_check: RepeatPurchaseCheck | None = None
    warnings: tuple[str, ...] = ()

    @property
    def promoted(self) -> bool:
        return self.version is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.promoted else 1


def _fit_metrics(prefix: str, fitted: FittedModels) -> dict[str, float]:
    """Parameters (and standard errors, or posterior sd for MCMC) under the model's name, e.g. ``bgnbd_r`` and
    ``gamma_gamma_p`` (``pooled_mean_mean`` for the pooled-mean spend model)."""
    metrics: dict[str, float] = {}
    model = fitted.model
    for name, value in fitted.purchase.params.as_dict().items():
        metrics[f"{prefix}{model}_{name}"] = value
        metrics[f"{prefix}{model}_{name}_se"] = fitted.purchase.standard_errors[name]
    fits = [(model, fitted.purchase.stats), ("purchase", fitted.purchase.stats)]
    if fitted.spend is not None:
        spend = fitted.spend_model
        for name, value in fitted.spend.params.as_dict().items():
            metrics[f"{prefix}{spend}_{name}"] = value
            metrics[f"{prefix}{spend}_{name}_se"] = fitted.spend.standard_errors[name]
        fits.append((spend, fitted.spend.stats))
    for kind, stats in fits:
        metrics[f"{prefix}{kind}_log_likelihood"] = stats.log_likelihood
        metrics[f"{prefix}{kind}_aic"] = stats.aic
        metrics[f"{prefix}{kind}_bic"] = stats.bic
        metrics[f"{prefix}{kind}_customers"] = stats.n_observations
    metrics[f"{prefix}purchase_unique_histories"] = fitted.purchase.n_unique_rows
    metrics[f"{prefix}spend_frequency_correlation"] = fitted.spend_frequency_correlation
    metrics[f"{prefix}fit_attempts"] = len(fitted.attempts)
    metrics[f"{prefix}spend_fit_attempts"] = len(fitted.spend_attempts)
    if fitted.spread_test is not None:
        metrics[f"{prefix}spend_spread_statistic"] = fitted.spread_test.statistic
        metrics[f"{prefix}spend_spread_p_value"] = fitted.spread_test.p_value
    if fitted.diagnostics is not None:
        metrics |= {f"{prefix}mcmc_{k}": v for k, v in fitted.diagnostics.as_dict().items()}
    return metrics


def _log_fit(prefix: str, fitted: FittedModels) -> None:
    tracking.log_metrics(_fit_metrics(prefix, fitted))
    tags: dict[str, object] = {
        f"{prefix}purchase_model": fitted.model,
        f"{prefix}fit.method": fitted.method,
        f"{prefix}spend_model": fitted.spend_model,
    }
    if fitted.chosen is not None:
        tags[f"{prefix}fit.remedy"] = fitted.chosen.remedy
    if fitted.spend_fallback:
        tags[f"{prefix}spend.fallback"] = fitted.spend_fallback
    tracking.set_tags(tags)
    if fitted.attempts:
        tracking.log_table(pd.DataFrame([a.as_dict() for a in fitted.attempts]), f"tables/{prefix}fit_attempts.csv")
    if fitted.spend_attempts:
        attempts = pd.DataFrame([a.as_dict() for a in fitted.spend_attempts])
        tracking.log_table(attempts, f"tables/{prefix}spend_fit_attempts.csv")


@dataclass(frozen=True)
class Candidate:
    """A candidate fitted on the calibration period and validated on the holdout."""

    config: CandidateConfig
    fitted: FittedModels
    validation: Validation
    repeat_check: RepeatPurchaseCheck


def _fit_candidate(
    config: Config,
    prepared: PreparedData,
    fit_input: FitInput,
    candidate: CandidateConfig,
    period_length: float,
    label: str,
) -> Candidate:
    fitted = fit_histories(fit_input, config.fit, label, candidate)
    validation = validate(
        fitted.bundle(config.scoring_spec()),
        prepared.calibration,
        period_length,
        weekly=prepared.weekly,
        calibration_end=prepared.calibration_end,
        observation_end=prepared.observation_end,
        full=prepared.full,
    )
    return Candidate(candidate, fitted, validation, repeat_purchase_check(fitted.purchase.params, prepared.calibration))


def _check_metrics(check: RepeatPurchaseCheck) -> dict[str, float]:
    return {
        "repeat_purchases_chi_square": check.chi_square,
        "repeat_purchases_dof": float(check.degrees_of_freedom),
        "repeat_purchases_p_value": check.p_value,
    }


def _select_candidate(
    config: Config,
    prepared: PreparedData,
    fit_input: FitInput,
    period_length: float,
    label: str,
    checkpoint: Callable[[], None],
) -> tuple[Candidate, Selection | None]:
    """One candidate: fit it. Several: fit and validate each in a child run, and pick the best."""
    candidates = config.fit.candidate_list()
    if len(candidates) == 1:
        return _fit_candidate(config, prepared, fit_input, candidates[0], period_length, label), None
    done: dict[str, Candidate] = {}
    statuses: dict[str, str] = {}
    metric = config.fit.selection_metric
    for candidate in candidates:
        checkpoint()
        with tracking.child_run(candidate.name):
            tracking.set_tags({"candidate": candidate.name})
            try:
                result = _fit_candidate(config, prepared, fit_input, candidate, period_length, label)
            except InputError as exc:
                statuses[candidate.name] = f"failed: {exc}"
                tracking.set_tags({"candidate.status": statuses[candidate.name]})
                continue
            _log_fit("", result.fitted)
            tracking.log_metrics(result.validation.metrics | _check_metrics(result.repeat_check))
            failed = [
                c.name for c in diagnostic_checks(result.fitted.diagnostics, config.fit.diagnostics) if not c.passed
            ]
            statuses[candidate.name] = f"diagnostics failed: {', '.join(failed)}" if failed else "ok"
            tracking.set_tags({"candidate.status": statuses[candidate.name]})
            done[candidate.name] = result
    values = {name: result.validation.metrics.get(metric, float("nan")) for name, result in done.items()}
    try:
        selection = select(values, statuses, metric, config.fit.selection_direction or metric_direction(metric))
    except NoCandidateError as exc:
        raise InputError(f"{label}: {exc}") from None
    tracking.set_tags(
        {"selection.winner": selection.winner, "selection.metric": metric, "selection.reason": selection.reason}
    )
    tracking.log_table(selection.table, "tables/model_selection.csv")
    return done[selection.winner], selection


def _ledger_metrics(prepared: PreparedData) -> dict[str, float]:
    ledger = prepared.ledger
    metrics = {
        "rows_in": float(ledger.rows_in),
        "rows_used": float(ledger.rows_used),
        "rows_quarantined": float(ledger.rows_quarantined),
        "customers_calibration": float(len(prepared.calibration)),
        "customers_full": float(len(prepared.full)),
        "customers_new_in_holdout": float(prepared.customers_new_in_holdout),
        "returns_netted": float(ledger.returns_netted),
        "returns_unmatched": float(ledger.returns_unmatched),
        "duration_holdout": prepared.duration_holdout,
    }
    metrics.update({f"quarantined_{reason}": float(n) for reason, n in ledger.quarantined.items()})
    return metrics


def _log_quarantine(engine: Engine, prepared: PreparedData, output_dir: Path | None) -> None:
    """Quarantined rows with their reason: to ``output_dir`` when given, and always to the run."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = output_dir if output_dir is not None else Path(tmp)
        path = engine.write_quarantine(prepared, folder / "quarantine.parquet")
        tracking.log_file(path, "tables")


def _log_validation(validation: Validation, prepared: PreparedData, model_label: str) -> None:
    tracking.log_metrics(validation.metrics)
    tracking.log_table(validation.holdout, "tables/holdout.parquet")
    tracking.log_table(validation.by_frequency, "tables/holdout_by_frequency.csv")
    tracking.log_table(validation.tracking, "tables/purchase_tracking.csv")
    tracking.log_table(validation.churn_calibration, "tables/churn_calibration.csv")
    for name, figure in validation_figures(validation, prepared, model_label).items():
        tracking.log_figure(figure, f"plots/{name}.png")


def _write_report(text: str, output_dir: Path | None) -> None:
    """The HTML report: to the run as ``report.html``, and to ``output_dir`` when given."""
    tracking.log_text(text, "report.html")
    if output_dir is not None:
        write_text(output_dir / "report.html", text)


def validation_figures(
    validation: Validation, prepared: PreparedData, model_label: str = "BG/NBD"
) -> dict[str, Figure]:
    figures = {"purchases_by_frequency": plots.purchases_by_frequency(validation.by_frequency, model_label)}
    if "actual_revenue" in validation.by_frequency.columns:  # not without amounts
        figures["revenue_by_frequency"] = plots.revenue_by_frequency(validation.by_frequency, BASELINES, model_label)
    figures["purchase_tracking"] = plots.purchase_tracking(validation.tracking, prepared.calibration_end, model_label)
    figures["churn_calibration"] = plots.churn_calibration(validation.churn_calibration)
    return figures


@dataclass(frozen=True)
class ChampionComparison:
    """The current champion's calibration parameters on this run's holdout (``value`` of the baseline
    metric; None when there is no comparable champion), and what the report should say about it."""

    value: float | None
    note: str = ""


def _champion_on_this_holdout(
    config: Config, prepared: PreparedData, period_length: float, fingerprint: str
) -> ChampionComparison:
    """The current champion's calibration parameters, evaluated on this run's holdout."""
    found = tracking.champion_calibration_params(config.tracking.model_name, config.tracking.alias)
    if found is None:
        return ChampionComparison(None)
    metric = config.validate_.baseline_metric_for(config.has_spend)
    name = f"{config.tracking.model_name} version {found.version}"
    if found.units != (config.prepare.period, config.prepare.time_unit):
        tracking.set_tags(
            {"champion.version": found.version, "champion.comparable": "false (other period or time unit)"}
        )
        return ChampionComparison(None, f"The champion ({name}) uses other periods or time units: not compared.")
    if (found.spend_model != "none") != config.has_spend:
        tracking.set_tags({"champion.version": found.version, "champion.comparable": "false (spend model)"})
        return ChampionComparison(None, f"The champion ({name}) has a different spend model: not compared.")
    champion = CLVModelParams.from_params(found.params, config.scoring_spec(), found.model, found.spend_model)
    value = validate(champion, prepared.calibration, period_length).metrics[metric]
    tracking.log_metrics({f"champion_{metric}": value})
    tags: dict[str, object] = {"champion.version": found.version}
    note = ""
    if found.fingerprint and found.fingerprint != fingerprint:
        tags["champion.same_data"] = "false"
        note = (
            f"The champion ({name}) was trained on other data (fingerprint {found.fingerprint[:12]}, this run "
            f"{fingerprint[:12]}): its calibration parameters were evaluated on this run's holdout."
        )
    tracking.set_tags(tags)
    return ChampionComparison(value, note)


def config_hash(config: Config) -> str:
    """SHA-256 of the config's canonical JSON: the same hash and data fingerprint mean a rerun."""
    return hashlib.sha256(json.dumps(config_as_dict(config), sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _staging(output_dir: Path | None) -> Iterator[Path]:
    """Where an engine that scores elsewhere (Spark's executors) writes the scores before the model is
    promoted: a path in a scratch folder in ``output_dir`` (renamed to ``scores.parquet`` after the alias
    moved), or in a temporary one. Nothing is written there by an engine that scores in process."""
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".clv-scores-", dir=output_dir) as scratch:
        yield Path(scratch) / "scores.parquet"


def _assumption_warnings(config: Config, fitted: FittedModels) -> tuple[str, ...]:
    """Gamma-Gamma's independence assumption: a warning (and a run tag) when it looks violated."""
    warning = spend_independence_warning(fitted.spend_frequency_correlation, config.fit.spend_correlation_threshold)
    tracking.set_tags({"assumption.spend_frequency_independence": "violated" if warning else "ok"})
    return (warning,) if warning else ()


def _report_notes(fitted: FittedModels, champion: ChampionComparison, prepared: PreparedData) -> list[str]:
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
    return notes


def _business_views(
    config: Config, production: CLVModelParams, prepared: PreparedData, scores: pd.DataFrame
) -> tuple[list[BusinessView], dict[str, pd.DataFrame]]:
    """The report's business views and the tables behind them (written to the run and to ``--output``)."""
    business_config = config.business
    at_risk = business.at_risk_valuable(
        scores, business_config.at_risk_clv_quantile, business_config.at_risk_churn_risk
    )
    value = "CLV" if config.has_spend else "expected purchases"
    shown = min(len(at_risk), AT_RISK_SHOWN)
    views = [
        BusinessView(
            f"At risk and valuable (top {1 - business_config.at_risk_clv_quantile:.0%} by {value}, churn risk >= "
            f"{business_config.at_risk_churn_risk:g})",
            business.report_columns(at_risk.head(AT_RISK_SHOWN)),
            f"Showing {shown:,} of {len(at_risk):,} customers, most valuable first; the full list is the run's "
            "tables/at_risk_valuable.parquet (and at_risk_valuable.parquet in --output).",
        )
    ]
    if config.has_spend:
        views.append(BusinessView("Value segments", business.segment_table(scores)))
    cohort_title = f"{value[0].upper()}{value[1:]} by acquisition cohort (month of first purchase)"
    views.append(BusinessView(cohort_title, business.cohort_table(scores, prepared.full)))
    tables = {"at_risk_valuable": at_risk}
    cac = read_cac(business_config, scores["customer_id"]) if config.has_spend else None
    if cac is not None:
        cac_view = business.clv_cac(production, prepared.full, scores, cac)
        cac_summary = business.cac_summary(cac_view, config.score.clv_horizon_months)
        views.append(BusinessView("CLV:CAC and payback", cac_summary))
        tables["clv_cac"] = cac_view
        tracking.log_metrics({str(k): float(v) for k, v in cac_summary.iloc[0].items()})
    return views, tables


AT_RISK_SHOWN = 25
"""At-risk customers shown in the report (the whole list is a table of the run)."""


def prepare_only(config: Config, output_dir: Path) -> PreparedData:
    """``clv prepare``: run the prepare stage alone and write its tables (no MLflow)."""
    config = config.resolved()
    engine = open_engine(config.engine)
    data = engine.open(config.data)
    with engine.errors(data.description):
        prepared = engine.prepare(data, config.prepare)
        engine.write_quarantine(prepared, output_dir / "quarantine.parquet")
    write_tables(output_dir, {"calibration": prepared.calibration, "customers": prepared.full})
    write_summary(output_dir / "ledger.json", ledger_dict(prepared))
    return prepared


def ledger_dict(prepared: PreparedData) -> dict[str, object]:
    ledger = prepared.ledger
    return {
        "rows_in": ledger.rows_in,
        "rows_used": ledger.rows_used,
        "rows_quarantined": ledger.rows_quarantined,
        "quarantined": ledger.quarantined,
        "reconciled": ledger.reconciled,
        "returns_netted": ledger.returns_netted,
        "returns_unmatched": ledger.returns_unmatched,
        "customers_calibration": len(prepared.calibration),
        "customers_full": len(prepared.full),
        "customers_new_in_holdout": prepared.customers_new_in_holdout,
        "first_date": str(prepared.first_date),
        "last_date": str(prepared.last_date),
        "calibration_end": str(prepared.calibration_end),
        "observation_end": str(prepared.observation_end),
    }


def train(
    config: Config, config_yaml: str, output_dir: Path | None = None, checkpoint: Callable[[], None] = lambda: None
) -> TrainResult:
    """Run the whole job in one MLflow run and return what it did.

    ``checkpoint`` is called between stages and before each registry change; the CLI's raises when a
    SIGTERM has arrived, so a stop is honoured even if a library swallowed the signal's exception.
    """
    check_criteria_known(config.validate_, config.has_spend)
    check_selection_known(config.fit)
    written, config = config, config.resolved()
    experiment_id = tracking.connect(config.tracking.experiment)
    engine = open_engine(config.engine)
    data = engine.open(config.data)
    with _staging(output_dir) as staging:
        with tracking.run(experiment_id) as run_id:
            tracking.log_config(config_as_dict(written), config_yaml)
            tracking.set_tags(
                {
                    "data.source": data.description,
                    "data.fingerprint": data.fingerprint,
                    "config.hash": config_hash(written),
                }
            )

            with engine.errors(data.description):
                prepared = engine.prepare(data, config.prepare)
            if prepared.timestamp_format is not None:
                how = "given" if data.timestamp_format else "detected"
                tracking.set_tags({"data.timestamp_format": f"{prepared.timestamp_format} ({how})"})
            tracking.log_metrics(_ledger_metrics(prepared))
            tracking.log_dict(ledger_dict(prepared), "ledger.json")
            if prepared.ledger.rows_quarantined:
                with engine.errors(data.description):
                    _log_quarantine(engine, prepared, output_dir)

            spec = config.scoring_spec()
            period_length = DAYS_PER_PERIOD[config.prepare.period] / DAYS_PER_UNIT[config.prepare.time_unit]
            checkpoint()
            calibration_input = engine.fit_input(prepared, "calibration")
            tracking.log_metrics({f"spark_{k}": v for k, v in calibration_input.info.items()})
            chosen, selection = _select_candidate(
                config, prepared, calibration_input, period_length, f"{data.description} (calibration)", checkpoint
            )
            calibration_fit, validation, repeat_check = chosen.fitted, chosen.validation, chosen.repeat_check
            model_label = LABELS[calibration_fit.model]
            _log_fit("", calibration_fit)
            warnings = _assumption_warnings(config, calibration_fit)
            _log_validation(validation, prepared, model_label)
            tracking.log_metrics(_check_metrics(repeat_check))
            tracking.log_table(repeat_check.table, "tables/repeat_purchases.csv")
            tracking.log_figure(
                plots.repeat_purchases(repeat_check.table, model_label, repeat_check.chi_square, repeat_check.p_value),
                "plots/repeat_purchases.png",
            )

            champion = _champion_on_this_holdout(config, prepared, period_length, data.fingerprint)
            checkpoint()
            gate = evaluate_gate(
                validation.metrics,
                config.validate_,
                champion.value,
                extra=diagnostic_checks(calibration_fit.diagnostics, config.fit.diagnostics),
                has_spend=config.has_spend,
            )
            production_fit = None
            if gate.passed:
                # Validation passed: refit the chosen candidate on the full history (MCMC diagnostics gate it too).
                checkpoint()
                full_input = engine.fit_input(prepared, "full")
                tracking.log_metrics({f"spark_production_{k}": v for k, v in full_input.info.items()})
                production_fit = fit_histories(
                    full_input,
                    config.fit,
                    f"{data.description} (full history)",
                    chosen.config,
                    reuse=calibration_fit.chosen,
                )
                _log_fit("production_", production_fit)
                extra = diagnostic_checks(production_fit.diagnostics, config.fit.diagnostics, prefix="production_")
                gate = GateResult(gate.checks + extra)
            tracking.set_tags(
                {
                    "gate.passed": gate.passed,
                    **{f"gate.{c.name}": "pass" if c.passed else "fail" for c in gate.checks},
                }
            )
            tables = {"holdout": validation.holdout}
            figures = validation_figures(validation, prepared, model_label)
            report = functools.partial(
                render_report,
                title=f"CLV validation report: {config.tracking.model_name}",
                run_id=run_id,
                data_description=data.description,
                ledger=ledger_dict(prepared),
                parameters=calibration_fit.params(),
                validation=validation,
                gate=gate,
                figures=figures,
                model_label=model_label,
                notes=_report_notes(calibration_fit, champion, prepared),
                definitions=scoring_definitions(spec, config.has_spend),
            )
            result = TrainResult(
                run_id,
                config,
                data,
                prepared,
                calibration_fit,
                validation,
                gate,
                None,
                None,
                None,
                selection,
                repeat_check,
                warnings,
            )
            if not gate.passed or production_fit is None:
                _write_report(report(), output_dir)
                if output_dir is not None:
                    write_tables(output_dir, tables)
                return result

            # Score everyone with the production fit, then register and promote.
            production = production_fit.bundle(spec)
            with engine.errors(data.description):
                scores = engine.score(production, prepared, staging)
            scores = business.with_views(production, prepared.full, scores)
            views, tables_out = _business_views(config, production, prepared, scores)
            tracking.log_table(scores, "tables/scores.parquet")
            for name, table in tables_out.items():
                tracking.log_table(table, f"tables/{name}.parquet")
            example = prepared.full.head(5).reset_index(drop=True)
            checkpoint()
            model_uri = tracking.log_model(production, example, config_yaml)
            version_tags = {
                "run_id": run_id,
                "data.fingerprint": data.fingerprint,
                "gate.passed": "true",
                **{f"gate.{c.name}": f"{c.value:.6g}" for c in gate.checks},
            }
            checkpoint()
            version = tracking.register(model_uri, config.tracking.model_name, version_tags)
            tracking.set_tags({"registered_model": config.tracking.model_name, "registered_version": version})
            registered = (
                f"registered as {config.tracking.model_name} version {version}, alias '{config.tracking.alias}'"
            )
            _write_report(report(business=views, registered=registered), output_dir)
            checkpoint()
        # The run has ended FINISHED; moving the alias is the last step of the job (not after a SIGTERM
        # that came while the run was ending).
        checkpoint()
        tracking.set_alias(config.tracking.model_name, config.tracking.alias, version)
        if output_dir is not None and staging.exists():
            # The executors' Parquet folder is the scores output; the business views are in the run.
            target = output_dir / "scores.parquet"
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            staging.rename(target)
            write_tables(output_dir, tables)
        elif output_dir is not None:
            write_tables(output_dir, {"scores": scores, **tables})
        if output_dir is not None:
            write_tables(output_dir, tables_out)
    return dataclasses.replace(result, production_fit=production_fit, scores=scores, version=version)
