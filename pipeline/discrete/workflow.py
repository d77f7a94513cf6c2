"""The discrete training workflow: prepare -> BG/BB on the calibration -> holdout validation -> gate ->
refit on the whole history -> the spend model -> score every customer. No files, no tracking store.

The spend model is the non-contractual job's (:func:`pipeline.fit.fit_spend_model`: Gamma-Gamma with its
remedies and its pooled-mean fallback) on the repeat buyers' mean spend per opportunity, unless
``fit.spend_model`` says ``pooled_mean`` or ``none`` (then no money columns). An event feed (no amount, no
quantity x unit price) has no spend model, as in the non-contractual job: the model counts purchases
(``expected_transactions``) and its scores have no money columns."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from models import bgbb
from models.fitted import FitError
from models.opportunity_model import OpportunityParams, score_opportunities
from pipeline.advice import padded_id_advice
from pipeline.config import Config
from pipeline.discrete.prepare import Histories, prepare_opportunities
from pipeline.discrete.validation import DiscreteValidation, discrete_gate, validate_bgbb
from pipeline.engines import Engine, Source
from pipeline.errors import ConfigError, InputError
from pipeline.fit import fit_spend_model
from pipeline.gate import GateResult
from pipeline.spend_fit import SpendOutcome

__all__ = ["HORIZON_PERIODS", "DiscreteResult", "fit_discrete_spend", "train_discrete"]

HORIZON_PERIODS = {"week": 52, "month": 12, "year": 5}
"""Expected transactions are scored over the next year of opportunities (five of yearly ones)."""


@dataclass(frozen=True)
class DiscreteResult:
    config: Config
    data: Source
    histories: Histories
    validation: DiscreteValidation
    gate: GateResult
    production_fit: bgbb.BGBBFit | None = None
    model: OpportunityParams | None = None
    scores: pd.DataFrame | None = None
    spend: SpendOutcome | None = None
    advice: tuple[str, ...] = ()
    """Advice on the data (ids that differ only by leading zeros): in the summary and the run's tags."""
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    run_id: str = ""
    version: int | None = None

    @property
    def promoted(self) -> bool:
        return self.version is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.promoted else 1

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.advice


def fit_discrete_spend(config: Config, histories: pd.DataFrame) -> SpendOutcome | None:
    """The spend model on the histories' ``frequency`` and ``monetary_value`` (None for ``fit.spend_model: none``):
    the non-contractual job's :func:`pipeline.fit.fit_spend_model`. Histories without ``monetary_value`` (an
    event feed) have none; InputError when ``fit.spend_model`` asks for one all the same."""
    if "monetary_value" not in histories.columns:
        _check_no_spend_model(config)
        return None
    f = histories["frequency"].to_numpy(dtype=np.float64)
    m = histories["monetary_value"].to_numpy(dtype=np.float64)
    return fit_spend_model(config.fit.spend_model or "gamma_gamma", f, m, config.fit)


def _check_no_spend_model(config: Config) -> None:
    """InputError when ``fit.spend_model`` asks for a spend model of a feed without amounts."""
    if config.fit.spend_model not in (None, "none"):
        raise InputError(
            f"fit.spend_model {config.fit.spend_model!r} needs amounts, but the feed has none (an event feed): "
            "set fit.spend_model: none, or map data.columns.amount (or quantity and unit_price)"
        )


def train_discrete(config: Config, engine: Engine, data: Source) -> DiscreteResult:
    """The whole discrete job on ``data`` (opened by the DuckDB engine): nothing is registered here."""
    from pipeline.engines.duckdb_engine import DuckDBEngine

    if not isinstance(engine, DuckDBEngine):
        raise ConfigError("business.type: 'discrete' runs on DuckDB only; set engine.name: duckdb")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with engine.errors(data.description):
        relation = data.handle
        assert isinstance(relation, duckdb.DuckDBPyRelation)  # opened by the DuckDB engine
        histories = prepare_opportunities(
            engine.connection, relation, config, source=data.description, column_names=data.column_names
        )
    timings["prepare"] = time.perf_counter() - start
    if not histories.has_amounts:
        _check_no_spend_model(config)  # before any fit
    start = time.perf_counter()
    try:
        validation = validate_bgbb(histories.calibration, histories.full, config.fit.remedies.penalizers)
    except (FitError, ValueError) as exc:
        raise InputError(f"{data.description}: cannot validate BG/BB on this feed: {exc}") from None
    timings["calibration_fit"] = time.perf_counter() - start
    gate = discrete_gate(validation.metrics)
    advice = padded_id_advice(histories.full["customer_id"])
    result = DiscreteResult(config, data, histories, validation, gate, advice=advice, timings=timings)
    if not gate.passed:
        return result
    start = time.perf_counter()
    full = histories.full
    try:
        production = bgbb.fit_bgbb_with_remedies(
            full["frequency"], full["recency"], full["n_periods"], config.fit.remedies.penalizers
        )
    except FitError as exc:  # a fit that does not converge ends the job with one line, as in the other jobs
        raise InputError(f"{data.description}: cannot fit BG/BB on the whole history: {exc}") from None
    spend = fit_discrete_spend(config, full)
    period = config.business.billing_period
    rate = config.business.discount_rate_per_period(config.score.annual_discount_rate)
    money = None if spend is None else spend.fit.params
    model = OpportunityParams(
        production.params, HORIZON_PERIODS[period], period, money, rate if money is not None else 0.0
    )
    inputs = full.loc[:, list(model.input_columns)]
    scores = inputs.merge(score_opportunities(model, inputs), on="customer_id", how="left")
    timings["production_fit"] = time.perf_counter() - start
    return dataclasses.replace(
        result, production_fit=production, model=model, scores=scores, spend=spend, timings=timings
    )
