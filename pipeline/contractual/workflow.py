"""The contractual training workflow: prepare -> sBG by cohort on the calibration -> holdout validation ->
gate -> refit on the whole history -> score the active subscribers. No files, no tracking store: the
command (:mod:`pipeline.contractual.command`) records and registers what this returns."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import duckdb
import pandas as pd

from models import sbg
from models.subscription_model import CAP_TOLERANCE, SubscriptionParams, at_lifetime_cap, score_subscribers
from pipeline.advice import advice_lines, charges_summary, feed_shape, padded_id_advice
from pipeline.config import Config
from pipeline.contractual.intervals import billing_period_advice
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.contractual.validation import (
    CohortFits,
    SubscriptionValidation,
    calibration_checks,
    fit_cohorts,
    subscription_gate,
    validate_subscriptions,
)
from pipeline.contractual.window import check_window
from pipeline.engines import Engine, Source
from pipeline.errors import ConfigError, InputError
from pipeline.gate import GateResult, diagnostic_checks

__all__ = [
    "ContractualResult",
    "check_business_type",
    "lifetime_cap_note",
    "payback_by_cohort",
    "subscription_params",
    "train_contractual",
]


@dataclass(frozen=True)
class ContractualResult:
    """What the contractual job did; ``run_id`` and ``version`` are set by the command."""

    config: Config
    data: Source
    subscribers: Subscribers
    calibration_fits: CohortFits
    validation: SubscriptionValidation
    gate: GateResult
    advice: tuple[str, ...] = ()
    production_fits: CohortFits | None = None
    model: SubscriptionParams | None = None
    scores: pd.DataFrame | None = None
    payback: pd.DataFrame | None = None
    """Per cohort, with ``business.cac``: the mean price and the periods until a new subscriber pays back CAC."""
    lifetime_capped: int | None = None
    """Active subscribers whose ``expected_remaining_lifetime`` the model's horizon decides
    (:func:`models.subscription_model.at_lifetime_cap`); None when nothing was scored."""
    notes: tuple[str, ...] = ()
    """Notes on the scores (:func:`lifetime_cap_note`), in the summary's ``scores`` and the report; not advice on
    the data (``warnings``)."""
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


def check_business_type(config: Config, engine_name: str) -> None:
    """One line (exit 2) when the contractual job is asked to run on another engine than DuckDB, or to sample
    the sBG with flat priors (improper along the geometric limit, alpha and beta to infinity together: the
    chains wander off, measured r-hat 1.7e7)."""
    if engine_name != "duckdb":
        raise ConfigError(
            f"business.type: 'contractual' runs on DuckDB only; set engine.name: duckdb (not {engine_name})"
        )
    if config.fit.method == "mcmc" and config.fit.priors == "flat":
        raise ConfigError(
            "fit.method: mcmc on the sBG needs proper priors (flat ones leave the posterior improper); "
            "set fit.priors: pymc_marketing, or use fit.method: map or mle"
        )


def subscription_params(config: Config, fits: CohortFits) -> SubscriptionParams:
    """The scoring model of fitted cohorts, with the configured discount rate and churn-risk horizon."""
    business = config.business
    return SubscriptionParams(
        pooled=fits.pooled.params,
        cohorts=dict(fits.params),
        discount_rate=business.discount_rate_per_period(config.score.annual_discount_rate),
        risk_periods=business.churn_risk_periods,
        billing_period=business.billing_period,
    )


def payback_by_cohort(subscribers: pd.DataFrame, model: SubscriptionParams, cac: float) -> pd.DataFrame:
    """Per acquisition cohort: subscribers, mean price, and the billing periods a new subscriber needs to pay
    back ``cac`` at the cohort's sBG retention (NaN when not within 600 periods)."""
    cohorts = pd.to_datetime(subscribers["cohort"]).dt.strftime("%Y-%m-%d")
    table = subscribers.groupby(cohorts).agg(subscribers=("customer_id", "size"), mean_price=("price", "mean"))
    table["payback_periods"] = [
        float(sbg.payback_periods(model.for_cohort(str(c)), price, cac, model.discount_rate)[()])
        for c, price in table["mean_price"].items()
    ]
    return table.rename_axis("cohort").reset_index()


def lifetime_cap_note(model: SubscriptionParams, active: int, capped: int) -> tuple[str, ...]:
    """The note when the horizon decides ``capped`` of the ``active`` subscribers' expected remaining lifetime
    (none when it decides none)."""
    if capped == 0:
        return ()
    horizon, period = model.horizon_periods, model.billing_period
    cohorts = list(model.cohorts.values()) or [model.pooled]
    endless = sum(p.alpha <= 1 for p in cohorts)
    infinite = f" (infinite in the {endless} of {len(cohorts)} cohorts with alpha <= 1: no finite mean)"
    return (
        f"expected_remaining_lifetime is capped at {horizon:,} periods: it is the renewals expected within "
        f"{horizon:,} {period}s, and for {capped:,} of {active:,} active subscribers the mean lifetime would be over "
        f"{CAP_TOLERANCE:.0%} higher uncapped{infinite if endless else ''}",
    )


def _active(subscribers: pd.DataFrame) -> pd.DataFrame:
    """The scoring input of the subscribers still active at the observation end."""
    active = subscribers.loc[~subscribers["churned"], ["customer_id", "cohort", "renewals", "price"]].copy()
    active["cohort"] = pd.to_datetime(active["cohort"]).dt.strftime("%Y-%m-%d")
    return active.reset_index(drop=True)


def train_contractual(config: Config, engine: Engine, data: Source) -> ContractualResult:
    """The whole contractual job on ``data`` (opened by ``engine``, DuckDB): nothing is registered here."""
    from pipeline.engines.duckdb_engine import DuckDBEngine

    check_business_type(config, engine.name)
    if not isinstance(engine, DuckDBEngine) or not hasattr(data.handle, "columns"):
        raise ConfigError("business.type: 'contractual' runs on DuckDB only; set engine.name: duckdb")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with engine.errors(data.description):
        relation = data.handle
        assert isinstance(relation, duckdb.DuckDBPyRelation)  # opened by the DuckDB engine
        subscribers = prepare_contract_feed(
            engine.connection, relation, config, source=data.description, column_names=data.column_names
        )
    timings["prepare"] = time.perf_counter() - start
    period_advice = billing_period_advice(subscribers.charge_interval, config.business.billing_period)
    check_window(subscribers, config, data.description, period_advice)
    advice = period_advice + advice_lines(feed_shape(charges_summary(subscribers.charges), 1.0), "contractual")
    advice += padded_id_advice(subscribers.full["customer_id"])
    start = time.perf_counter()
    try:
        calibration_fits = fit_cohorts(subscribers.calibration, config.fit)
        validation = validate_subscriptions(subscribers.calibration, subscribers.full, calibration_fits)
    except ValueError as exc:
        raise InputError(f"{data.description}: cannot validate the sBG on this feed: {exc}") from None
    timings["calibration_fit"] = time.perf_counter() - start
    limits = config.fit.diagnostics
    checks = calibration_checks(validation.metrics) + diagnostic_checks(calibration_fits.diagnostics, limits)
    gate = subscription_gate(validation.metrics, checks)
    result = ContractualResult(config, data, subscribers, calibration_fits, validation, gate, advice)
    if not gate.passed:
        return dataclasses.replace(result, timings=timings)
    start = time.perf_counter()
    production_fits = fit_cohorts(subscribers.full, config.fit)
    gate = GateResult(gate.checks + diagnostic_checks(production_fits.diagnostics, limits, "production_"))
    if not gate.passed:
        timings["production_fit"] = time.perf_counter() - start
        return dataclasses.replace(result, gate=gate, production_fits=production_fits, timings=timings)
    model = subscription_params(config, production_fits)
    active = _active(subscribers.full)
    scores = active.merge(score_subscribers(model, active), on="customer_id", how="left")
    capped = int(at_lifetime_cap(model, active).sum())
    cac = config.business.cac
    payback = payback_by_cohort(subscribers.full, model, cac) if cac is not None else None
    timings["production_fit"] = time.perf_counter() - start
    return dataclasses.replace(
        result,
        gate=gate,
        production_fits=production_fits,
        model=model,
        scores=scores,
        payback=payback,
        lifetime_capped=capped,
        notes=lifetime_cap_note(model, len(active), capped),
        timings=timings,
    )
