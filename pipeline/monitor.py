"""Monitor stage: the champion's predictions from the day its data ended, against what happened since.

The model was fitted on the history up to T0 (its training run's observation end). The feed, now longer, is
prepared with ``calibration_end = T0`` and ``observation_end`` at the end of each monitoring period, so the
"holdout" is exactly the new data and :func:`pipeline.validate.validate` measures it with the training job's
own metrics. Per period (cumulative since T0) it checks:

- ``purchases``: repeat purchases predicted vs actual for the customers known at T0 (% error);
- ``spend``: the model's expected order value vs the actual spend per purchase since T0, weighted by the
  purchases made (% error): a change of spend that leaves purchase counts alone trips this check only;
- ``churn_brier``: how far the Brier score of the churn risk is from the Brier score a calibrated model gets on the
  same risks (mean of risk x (1 - risk)); ``churn_auc``: AUC against the training holdout's;
- ``psi_purchases``, ``psi_order_value``: population stability index of purchases per active customer and
  spend per purchase, in the window after T0 against the window of the same length before it;
- ``new_customers``: share of the customers active since T0 whose first purchase is after T0 (the model does
  not know them); ``quarantine``: quarantine rate of the new rows minus training's rate.

A retrain is due when one check fails in each of the last ``stale_after`` periods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.bundle import CLVModelParams
from pipeline.config import PrepareConfig
from pipeline.engines import Engine, Source
from pipeline.engines.prepared import PreparedData
from pipeline.errors import InputError
from pipeline.metrics import pct
from pipeline.validate import validate

__all__ = [
    "RETRAIN_EXIT_CODE",
    "Check",
    "MonitorConfig",
    "Monitoring",
    "Period",
    "Reference",
    "evaluate_checks",
    "monitor",
    "period_ends",
    "psi",
    "verdict",
]

RETRAIN_EXIT_CODE: Final[int] = 4
"""``clv monitor``'s exit code when a retrain is due (0: healthy)."""
IGNORED_QUARANTINE: Final[str] = "after_observation_end"
"""Rows after a period's end are quarantined for that period only: not a data problem."""


class MonitorConfig(BaseModel):
    """Thresholds of ``clv monitor`` (the ``monitor:`` mapping of ``--config``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    period_days: int = Field(default=28, ge=1, description="length of a monitoring period")
    stale_after: int = Field(default=2, ge=1, description="a check failing in this many last periods: retrain")
    purchases_max_abs_pct_error: float = Field(default=20.0, gt=0)
    spend_max_abs_pct_error: float = Field(default=15.0, gt=0)
    churn_brier_max_excess: float = Field(default=0.03, gt=0)
    churn_auc_max_drop: float = Field(default=0.15, gt=0)
    psi_max: float = Field(default=0.25, gt=0)
    new_customers_max_share: float = Field(default=0.5, gt=0, le=1)
    quarantine_max_rise: float = Field(default=0.05, gt=0, le=1)


@dataclass(frozen=True)
class Reference:
    """What training knew: where its data ended, its holdout churn AUC and its quarantine counts."""

    observation_end: dt.date
    churn_auc: float = float("nan")
    rows_in: int = 0
    rows_quarantined: int = 0


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: float
    passed: bool


@dataclass(frozen=True)
class Period:
    index: int
    end: dt.date
    metrics: dict[str, float]
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)


@dataclass(frozen=True)
class Monitoring:
    reference: Reference
    periods: tuple[Period, ...]
    tracking: pd.DataFrame
    """Week by week since the first purchase: actual and expected repeat purchases (as training's tracking)."""
    verdict: str
    """``ok``, ``stale`` (retrain due) or ``too early`` (no complete period yet)."""
    failing: tuple[str, ...] = ()
    stale_from: int | None = None
    """The first period at which the verdict was ``stale``."""
    config: MonitorConfig = field(default_factory=MonitorConfig)

    @property
    def exit_code(self) -> int:
        return RETRAIN_EXIT_CODE if self.verdict == "stale" else 0


def period_ends(start: dt.date, last: dt.date, period_days: int) -> list[dt.date]:
    """Ends of the complete monitoring periods after ``start`` up to ``last``."""
    count = (last - start).days // period_days
    return [start + dt.timedelta(days=period_days * i) for i in range(1, count + 1)]


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index, bins at the reference's deciles (ties merged); NaN under 20 values a side."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if len(reference) < 20 or len(current) < 20:
        return float("nan")
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))[1:-1]
    expected = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1)
    actual = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1)
    e = np.maximum(expected / expected.sum(), 1e-4)
    a = np.maximum(actual / actual.sum(), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def _drift(calibration: pd.DataFrame, start: dt.date, window_days: int, money: bool) -> dict[str, float]:
    """Purchases per active customer (and spend per purchase) after T0 against the window before it, counting
    repeat purchases only: customers first seen inside the window before T0 are left out."""
    born = pd.to_datetime(calibration["first_purchase"])
    before = calibration[(born <= pd.Timestamp(start - dt.timedelta(days=window_days))).to_numpy()]
    before = before[before["recent_purchases"] > 0]
    after = calibration[calibration["frequency_holdout"] > 0]
    out = {"psi_purchases": psi(before["recent_purchases"].to_numpy(), after["frequency_holdout"].to_numpy())}
    if money:
        out["psi_order_value"] = psi(
            (before["recent_spend"] / before["recent_purchases"]).to_numpy(),
            (after["revenue_holdout"] / after["frequency_holdout"]).to_numpy(),
        )
    return out


def _spend_error(holdout: pd.DataFrame) -> float:
    """% error of the expected order value on the purchases actually made since T0."""
    made = holdout["actual_purchases"].to_numpy(dtype=float)
    if made.sum() == 0:
        return float("nan")
    predicted = float(np.sum(holdout["expected_order_value"].to_numpy() * made) / made.sum())
    return pct(predicted, float(holdout["actual_revenue"].sum() / made.sum()))


def _data_metrics(prepared: PreparedData, start: dt.date, reference: Reference) -> dict[str, float]:
    new = int((pd.to_datetime(prepared.full["first_purchase"]) > pd.Timestamp(start)).sum())
    returning = int((prepared.calibration["frequency_holdout"] > 0).sum())
    ledger = prepared.ledger
    ignored = ledger.quarantined.get(IGNORED_QUARANTINE, 0)
    rows_new = ledger.rows_in - ignored - reference.rows_in
    quarantined_new = ledger.rows_quarantined - ignored - reference.rows_quarantined
    training_rate = reference.rows_quarantined / reference.rows_in if reference.rows_in else 0.0
    return {
        "customers_known": float(len(prepared.calibration)),
        "customers_returning": float(returning),
        "customers_new": float(new),
        "new_customers": new / (new + returning) if new + returning else 0.0,
        "rows_new": float(rows_new),
        "quarantine_rate_new": quarantined_new / rows_new if rows_new > 0 else 0.0,
        "quarantine": (quarantined_new / rows_new if rows_new > 0 else 0.0) - training_rate,
    }


def _period_metrics(
    model: CLVModelParams, prepared: PreparedData, reference: Reference, period_length: float
) -> tuple[dict[str, float], pd.DataFrame]:
    start, end = reference.observation_end, prepared.observation_end
    validation = validate(model, prepared.calibration, period_length, prepared.weekly, start, end, full=prepared.full)
    m, holdout = validation.metrics, validation.holdout
    risk = holdout["churn_risk"].to_numpy()
    tracking = validation.tracking
    after = tracking[pd.to_datetime(tracking["week"]) > pd.Timestamp(start)]
    money = model.has_spend and prepared.has_amounts
    out = {
        "purchases_actual": m["purchases_total_actual"],
        "purchases_predicted": m["purchases_total_predicted"],
        "purchases": m["purchases_total_pct_error"],
        "tracking_pct_error": pct(float(after["expected"].sum()), float(after["actual"].sum())),
        "churn_auc": m["churn_auc"],
        "churn_brier": m["churn_brier"],
        "churn_brier_calibrated": float(np.mean(risk * (1 - risk))),
        "churn_rate_actual": m["churn_rate_actual"],
    }
    out["churn_brier_excess"] = out["churn_brier"] - out["churn_brier_calibrated"]
    if money:
        out |= {"revenue_actual": m["revenue_total_actual"], "revenue_pct_error": m["revenue_total_pct_error"]}
        out["spend"] = _spend_error(holdout)
    out |= _drift(prepared.calibration, start, (end - start).days, money)
    return out | _data_metrics(prepared, start, reference), tracking


def evaluate_checks(metrics: Mapping[str, float], reference: Reference, config: MonitorConfig) -> tuple[Check, ...]:
    """Each check of one period; a check whose metric is NaN (too little data, no spend) is left out."""
    rules = [
        ("purchases", abs(metrics["purchases"]), config.purchases_max_abs_pct_error),
        ("spend", abs(metrics.get("spend", float("nan"))), config.spend_max_abs_pct_error),
        ("churn_brier", abs(metrics["churn_brier_excess"]), config.churn_brier_max_excess),
        ("churn_auc", reference.churn_auc - metrics["churn_auc"], config.churn_auc_max_drop),
        ("psi_purchases", metrics["psi_purchases"], config.psi_max),
        ("psi_order_value", metrics.get("psi_order_value", float("nan")), config.psi_max),
        ("new_customers", metrics["new_customers"], config.new_customers_max_share),
        ("quarantine", metrics["quarantine"], config.quarantine_max_rise),
    ]
    return tuple(Check(name, float(v), t, bool(v <= t)) for name, v, t in rules if np.isfinite(v))


def verdict(periods: tuple[Period, ...], stale_after: int) -> tuple[str, tuple[str, ...], int | None]:
    """``stale`` when a check failed in each of the last ``stale_after`` periods (and the first period at which
    that held), ``ok`` otherwise; ``too early`` without a complete period."""
    if not periods:
        return "too early", (), None
    stale_from = None
    failing: tuple[str, ...] = ()
    for i in range(stale_after, len(periods) + 1):
        window = periods[i - stale_after : i]
        failing = tuple(sorted(set.intersection(*(set(p.failed) for p in window))))
        if failing and stale_from is None:
            stale_from = periods[i - 1].index
    return ("stale" if failing else "ok"), failing, stale_from


def monitor(
    model: CLVModelParams,
    engine: Engine,
    data: Source,
    prepare_config: PrepareConfig,
    reference: Reference,
    period_length: float,
    config: MonitorConfig | None = None,
    *,
    last: dt.date | None = None,
) -> Monitoring:
    """Every complete period since the model's data ended (up to ``last``, default the feed's last date),
    measured and checked; the verdict over the last ``stale_after`` periods. ``period_length``: one merge period
    in the model's time unit."""
    config = config or MonitorConfig()
    start = reference.observation_end

    def prepared_to(end: dt.date | None) -> PreparedData:
        update = {"calibration_end": start, "observation_end": end}
        return engine.prepare(data, prepare_config.model_copy(update=update))

    if last is None:
        try:
            last = prepared_to(None).last_date
        except InputError as exc:
            if "outside the data" not in str(exc):
                raise
            last = start  # no transaction after the model's data ended: nothing to judge yet
    periods = []
    tracking = pd.DataFrame()
    for index, end in enumerate(period_ends(start, last, config.period_days), start=1):
        try:
            prepared = prepared_to(end)
        except InputError as exc:
            if "outside the data" not in str(exc):
                raise
            raise InputError(
                f"{data.description}: no transaction after the model's data ended ({start}), so nothing to judge "
                f"up to {last}: is the feed up to date?"
            ) from None
        metrics, tracking = _period_metrics(model, prepared, reference, period_length)
        periods.append(Period(index, end, metrics, evaluate_checks(metrics, reference, config)))
    status, failing, stale_from = verdict(tuple(periods), config.stale_after)
    return Monitoring(reference, tuple(periods), tracking, status, failing, stale_from, config)
