"""The discrete training workflow: prepare -> BG/BB on the calibration -> holdout validation -> gate ->
refit on the whole history -> score every customer. No files, no tracking store."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import pandas as pd

from models import bgbb
from models.opportunity_model import OpportunityParams, score_opportunities
from pipeline.config import Config
from pipeline.discrete.prepare import Histories, prepare_opportunities
from pipeline.discrete.validation import DiscreteValidation, discrete_gate, validate_bgbb
from pipeline.engines import Engine, Source
from pipeline.errors import ConfigError, InputError
from pipeline.gate import GateResult

__all__ = ["HORIZON_PERIODS", "DiscreteResult", "train_discrete"]

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
        return ()


def train_discrete(config: Config, engine: Engine, data: Source) -> DiscreteResult:
    """The whole discrete job on ``data`` (opened by the DuckDB engine): nothing is registered here."""
    from pipeline.engines.duckdb_engine import DuckDBEngine

    if not isinstance(engine, DuckDBEngine):
        raise ConfigError("business.type: 'discrete' runs on DuckDB only; set engine.name: duckdb")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with engine.errors(data.description):
        histories = prepare_opportunities(engine.connection, data.handle, config)  # type: ignore[arg-type]
    timings["prepare"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        validation = validate_bgbb(histories.calibration, histories.full)
    except ValueError as exc:
        raise InputError(f"{data.description}: cannot validate BG/BB on this feed: {exc}") from None
    timings["calibration_fit"] = time.perf_counter() - start
    gate = discrete_gate(validation.metrics)
    result = DiscreteResult(config, data, histories, validation, gate, timings=timings)
    if not gate.passed:
        return result
    start = time.perf_counter()
    full = histories.full
    production = bgbb.fit_bgbb(full["frequency"], full["recency"], full["n_periods"])
    period = config.business.billing_period
    model = OpportunityParams(production.params, HORIZON_PERIODS[period], period)
    inputs = full.loc[:, ["customer_id", "frequency", "recency", "n_periods"]]
    scores = inputs.merge(score_opportunities(model, inputs), on="customer_id", how="left")
    timings["production_fit"] = time.perf_counter() - start
    return dataclasses.replace(result, production_fit=production, model=model, scores=scores, timings=timings)
