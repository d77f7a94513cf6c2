"""The training workflow: prepare -> fit -> validate -> gate -> refit -> score, chained in one function.

:func:`train` takes the config, an engine and its opened source, and returns a :class:`TrainResult`. It writes
no files and talks to no tracking store: what should be recorded is handed to an :class:`~pipeline.observer.
Observer` as it happens (``clv train`` passes the MLflow recorder; a notebook passes nothing). Registering the
model and moving the alias are the command's job, after this returns a result that passed the gate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.bundle import CLVModelParams
from models.clv import DAYS_PER_UNIT
from models.purchase import LABELS
from models.scoring import score_columns
from pipeline import business, mapped, plots
from pipeline.advice import prepared_advice
from pipeline.business_views import business_views
from pipeline.champion import ChampionComparison, ChampionParams, compare_champion
from pipeline.checks import RepeatPurchaseCheck, repeat_purchase_check, spend_independence_warning
from pipeline.columns import CALIBRATION_COLUMNS, CUSTOMER_COLUMNS, HOLDOUT_COLUMNS, check_stage_output
from pipeline.config import CandidateConfig, Config
from pipeline.contest import ChallengerContest, ServedBlend, challenge, with_blend
from pipeline.engines import Engine, Source
from pipeline.engines.prepared import PreparedData
from pipeline.errors import InputError
from pipeline.fit import FittedModels, fit_histories
from pipeline.gate import GateResult, check_criteria_known, check_selection_known, diagnostic_checks, evaluate_gate
from pipeline.metrics import metric_direction
from pipeline.observer import Observer
from pipeline.report import BusinessView
from pipeline.selection import NoCandidateError, Selection, select
from pipeline.validate import Validation, validate

__all__ = [
    "DAYS_PER_PERIOD",
    "Candidate",
    "TrainResult",
    "check_config",
    "period_length",
    "prepare_data",
    "train",
]

DAYS_PER_PERIOD = {"day": 1.0, "week": 7.0}


def period_length(config: Config) -> float:
    """One prepare period in the model's time unit (a week is 1.0 in weeks, 7.0 in days)."""
    return DAYS_PER_PERIOD[config.prepare.period] / DAYS_PER_UNIT[config.prepare.time_unit]


@dataclass(frozen=True)
class Candidate:
    """A candidate fitted on the calibration period and validated on the holdout."""

    config: CandidateConfig
    fitted: FittedModels
    validation: Validation
    repeat_check: RepeatPurchaseCheck


@dataclass(frozen=True)
class TrainResult:
    """What the job did. ``run_id`` and ``version`` are set by the command that recorded and registered it."""

    config: Config
    data: Source
    prepared: PreparedData
    calibration_fit: FittedModels
    validation: Validation
    gate: GateResult
    production_fit: FittedModels | None = None
    scores: pd.DataFrame | None = None
    selection: Selection | None = None
    repeat_check: RepeatPurchaseCheck | None = None
    warnings: tuple[str, ...] = ()
    champion: ChampionComparison = dataclasses.field(default_factory=lambda: ChampionComparison(None))
    business: tuple[BusinessView, ...] = ()
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    run_id: str = ""
    version: int | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    """Wall seconds per stage (prepare, calibration_fit, champion, contest, set_aside, production_fit, score,
    business)."""
    contest: ChallengerContest | None = None
    """The challenger's contest against BTYD (None when ``challenger.enabled`` is false)."""
    figures: dict[str, bytes] = dataclasses.field(default_factory=dict)
    """The validation figures as PNG, rendered once for the run's artifacts and the report."""

    @property
    def promoted(self) -> bool:
        return self.version is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.promoted else 1


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = time.perf_counter() - start


def _validated(config: Config, prepared: PreparedData, candidate: CandidateConfig, fitted: FittedModels) -> Candidate:
    validation = validate(
        fitted.bundle(config.scoring_spec()),
        prepared.calibration,
        period_length(config),
        weekly=prepared.weekly,
        calibration_end=prepared.calibration_end,
        observation_end=prepared.observation_end,
        full=prepared.full,
    )
    check_stage_output(validation.holdout, HOLDOUT_COLUMNS, "validate (holdout)", fitted.spend is not None)
    return Candidate(candidate, fitted, validation, repeat_purchase_check(fitted.purchase.params, prepared.calibration))


def _select_candidate(
    config: Config,
    prepared: PreparedData,
    engine: Engine,
    label: str,
    observer: Observer,
    checkpoint: Callable[[], None],
) -> tuple[Candidate, Selection | None]:
    """One candidate: fit it. Several: fit and validate each (the observer records each one), and pick the best."""
    candidates = config.fit.candidate_list()
    fit_input = engine.fit_input(prepared, "calibration")
    observer.fit_input("", fit_input.info)
    if len(candidates) == 1:  # the fit's histories (340 MB at 10M customers) are let go before the validation
        fitted = fit_histories(fit_input, config.fit, label, candidates[0])
        del fit_input
        return _validated(config, prepared, candidates[0], fitted), None
    done: dict[str, Candidate] = {}
    statuses: dict[str, str] = {}
    metric = config.fit.selection_metric
    for candidate in candidates:
        checkpoint()
        with observer.candidate(candidate.name):
            try:
                fitted = fit_histories(fit_input, config.fit, label, candidate)
                result = _validated(config, prepared, candidate, fitted)
            except InputError as exc:
                statuses[candidate.name] = f"failed: {exc}"
                observer.candidate_done(candidate.name, statuses[candidate.name], None)
                continue
            checks = diagnostic_checks(result.fitted.diagnostics, config.fit.diagnostics)
            failed = [c.name for c in checks if not c.passed]
            statuses[candidate.name] = f"diagnostics failed: {', '.join(failed)}" if failed else "ok"
            observer.candidate_done(candidate.name, statuses[candidate.name], result)
            done[candidate.name] = result
    values = {name: result.validation.metrics.get(metric, float("nan")) for name, result in done.items()}
    try:
        selection = select(values, statuses, metric, config.fit.selection_direction or metric_direction(metric))
    except NoCandidateError as exc:
        raise InputError(f"{label}: {exc}") from None
    observer.selected(selection)
    return done[selection.winner], selection


def _production(
    config: Config,
    engine: Engine,
    prepared: PreparedData,
    chosen: Candidate,
    label: str,
    observer: Observer,
    staging: Path,
    cac: Callable[[pd.Series], pd.Series | None],
    timings: dict[str, float],
    blend: Callable[[CLVModelParams, pd.DataFrame], tuple[pd.DataFrame, str | None, ServedBlend | None]] | None = None,
) -> tuple[FittedModels, pd.DataFrame, list[BusinessView], dict[str, pd.DataFrame], str | None, ServedBlend | None]:
    """Refit the chosen candidate on the whole history and score every customer with it (and, when the
    challenger's blend won the contest, add the blend's columns with ``blend``)."""
    with _timed(timings, "production_fit"):
        full_input = engine.fit_input(prepared, "full")
        observer.fit_input("production_", full_input.info)
        production_fit = fit_histories(
            full_input,
            config.fit,
            f"{label} (full history)",
            chosen.config,
            reuse=chosen.fitted.chosen,
            warm_start=chosen.fitted.purchase.params,  # the calibration optimum: fewer passes, the same optimum
        )
        del full_input  # not kept through scoring and the business views
    observer.fitted("production_", production_fit)
    production = production_fit.bundle(config.scoring_spec())
    with _timed(timings, "score"):
        with engine.errors(label):
            scores = engine.score(production, prepared, staging)
        check_stage_output(scores, score_columns(production), "score")
    warning, served = None, None
    if blend is not None:  # first: the value segment and the business tables rank on the winner's clv
        with _timed(timings, "production_blend"):
            scores, warning, served = blend(production, scores)
    with _timed(timings, "business"):
        scores = business.with_views(production, prepared.full, scores)
        views, tables, metrics = business_views(config, production, prepared, scores, cac(scores["customer_id"]))
    observer.scored(scores, tables, metrics)
    return production_fit, scores, views, tables, warning, served


def _evaluated(
    config: Config,
    data: Source,
    prepared: PreparedData,
    chosen: Candidate,
    selection: Selection | None,
    comparison: ChampionComparison,
    warning: str | None,
) -> TrainResult:
    """The chosen candidate judged by the gate (not yet refitted on the full history)."""
    gate = evaluate_gate(
        chosen.validation.metrics,
        config.validate_,
        comparison.value,
        extra=diagnostic_checks(chosen.fitted.diagnostics, config.fit.diagnostics),
        has_spend=config.has_spend,
    )
    return TrainResult(
        config,
        data,
        prepared,
        chosen.fitted,
        chosen.validation,
        gate,
        selection=selection,
        repeat_check=chosen.repeat_check,
        warnings=(warning,) if warning else (),
        champion=comparison,
    )


def _produced(
    result: TrainResult,
    engine: Engine,
    chosen: Candidate,
    observer: Observer,
    staging: Path,
    cac: Callable[[pd.Series], pd.Series | None],
    timings: dict[str, float],
) -> TrainResult:
    """``result`` with the production fit and the scores (with the blend's columns when the blend won)."""
    config, data, prepared = result.config, result.data, result.prepared
    won = result.contest is not None and result.contest.blend_wins
    blend = (lambda model, scores: with_blend(config, engine, data, prepared, model, scores)) if won else None
    fit, scores, views, tables, blend_warning, served = _production(
        config, engine, prepared, chosen, data.description, observer, staging, cac, timings, blend
    )
    contest = dataclasses.replace(result.contest, served=served) if result.contest is not None else None
    gate = GateResult(result.gate.checks + diagnostic_checks(fit.diagnostics, config.fit.diagnostics, "production_"))
    warnings = result.warnings + ((blend_warning,) if blend_warning else ())
    return dataclasses.replace(
        result,
        gate=gate,
        production_fit=fit,
        scores=scores,
        business=tuple(views),
        tables=tables,
        warnings=warnings,
        contest=contest,
    )


def _calibrated(
    config: Config, prepared: PreparedData, chosen: Candidate, observer: Observer
) -> tuple[str | None, dict[str, bytes]]:
    """The chosen calibration fit's spend-independence warning and validation figures, handed to the observer."""
    warning = spend_independence_warning(
        chosen.fitted.spend_frequency_correlation, config.fit.spend_correlation_threshold
    )
    figures = plots.validation_pngs(chosen.validation, prepared.calibration_end, LABELS[chosen.fitted.model])
    observer.calibrated(chosen.fitted, chosen.validation, chosen.repeat_check, prepared, warning, figures)
    return warning, figures


def _set_aside(
    result: TrainResult, chosen: Candidate, scratch: Path, timings: dict[str, float]
) -> tuple[TrainResult, Candidate]:
    """Before production: the frames it does not read mapped from disk (:func:`~pipeline.mapped.set_aside`)."""
    bound = result.config.engine.set_aside_customers
    if bound is None or len(result.prepared.calibration) < bound:  # kept in memory
        return result, chosen
    with _timed(timings, "set_aside"):
        prepared, validation, notes = mapped.set_aside(result.prepared, result.validation, scratch, bound)
    warnings = result.warnings + notes
    result = dataclasses.replace(result, prepared=prepared, validation=validation, warnings=warnings)
    return result, dataclasses.replace(chosen, validation=validation)


def check_config(config: Config) -> None:
    """Config values only the workflow can judge (gate criteria, selection metric): before any work is done."""
    check_criteria_known(config.validate_, config.has_spend)
    check_selection_known(config.fit)


def train(
    config: Config,
    engine: Engine,
    data: Source,
    *,
    observer: Observer | None = None,
    champion: ChampionParams | None = None,
    checkpoint: Callable[[], None] = lambda: None,
    staging: Path | None = None,
    cac: Callable[[pd.Series], pd.Series | None] = lambda _: None,
    scratch: Path | None = None,
) -> TrainResult:
    """The whole training job on ``data`` (opened by ``engine``): nothing is registered here. ``champion``: the
    current champion's calibration parameters, compared on this run's holdout by the gate. ``checkpoint`` is
    called between stages (the CLI's raises after a SIGTERM). ``staging``: where a distributed engine writes the
    scores. ``cac``: acquisition cost per customer id (the CLV:CAC view), or None. ``scratch``: a folder on disk
    to map large frames production does not read from (:func:`_set_aside`); None keeps them in memory.
    """
    from pipeline.observer import NullObserver

    observer = observer if observer is not None else NullObserver()
    check_config(config)
    config = config.resolved()
    timings: dict[str, float] = {}
    with _timed(timings, "prepare"):
        with engine.errors(data.description):
            prepared = engine.prepare(data, config.prepare)
        check_stage_output(prepared.calibration, CALIBRATION_COLUMNS, "prepare (calibration)", prepared.has_amounts)
        check_stage_output(prepared.full, CUSTOMER_COLUMNS, "prepare (customers)", prepared.has_amounts)
    observer.prepared(data, prepared)
    advice = prepared_advice(prepared, config)
    checkpoint()
    with _timed(timings, "calibration_fit"):  # every candidate's fit and validation
        label = f"{data.description} (calibration)"
        chosen, selection = _select_candidate(config, prepared, engine, label, observer, checkpoint)
    warning, figures = _calibrated(config, prepared, chosen, observer)

    with _timed(timings, "champion"):
        comparison = compare_champion(config, prepared, period_length(config), data.fingerprint, champion)
    observer.champion(comparison)
    checkpoint()
    result = dataclasses.replace(
        _evaluated(config, data, prepared, chosen, selection, comparison, warning), figures=figures
    )
    if config.challenger.enabled:
        with _timed(timings, "contest"):
            contest = challenge(config, engine, data, prepared, chosen.validation.holdout)
        observer.contested(contest)
        result = dataclasses.replace(result, contest=contest)
        checkpoint()
    if result.gate.passed:  # validation passed: refit on the full history (MCMC diagnostics gate it too) and score
        checkpoint()
        result, chosen = _set_aside(result, chosen, scratch, timings) if scratch is not None else (result, chosen)
        del prepared  # the result holds it (its calibration summary mapped from disk when large)
        result = _produced(result, engine, chosen, observer, staging or Path(), cac, timings)
    gate = result.gate
    observer.gated(gate)
    observer.timed(timings)
    return dataclasses.replace(result, timings=timings, warnings=advice + result.warnings)


def prepare_data(config: Config, engine: Engine | None = None) -> tuple[PreparedData, Source]:
    """The prepare stage alone on the configured input (a notebook's first step): the prepared data and its
    source (description, fingerprint). ``engine``: the configured one (``engine.name``) when None."""
    from pipeline.engines import open_engine

    config = config.resolved()
    engine = engine if engine is not None else open_engine(config.engine)
    data = engine.open(config.data)
    with engine.errors(data.description):
        return engine.prepare(data, config.prepare), data
