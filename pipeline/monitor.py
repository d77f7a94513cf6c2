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
  not know them); ``quarantine``: quarantine rate of the rows dated in (T0, period end] minus training's rate.
  A row counts in the period its timestamp falls in, as the engine's prepare read it, whatever it was
  quarantined for (:class:`FeedRows`); rows without a readable timestamp (missing or invalid) cannot be placed
  in a period: both rates leave them out, and the feed's count of them is reported apart (``rows_untimed``).

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
from pipeline.engines.prepared import WINDOW_REASON, PreparedData
from pipeline.errors import InputError
from pipeline.metrics import pct
from pipeline.validate import validate

__all__ = [
    "RETRAIN_EXIT_CODE",
    "Check",
    "FeedRows",
    "MonitorConfig",
    "Monitoring",
    "Period",
    "Reference",
    "evaluate_checks",
    "feed_rows",
    "monitor",
    "period_ends",
    "psi",
    "verdict",
]

RETRAIN_EXIT_CODE: Final[int] = 4
"""``clv monitor``'s exit code when a retrain is due (0: healthy)."""
IGNORED_QUARANTINE: Final[str] = WINDOW_REASON
"""Rows after a period's end are quarantined for that period only: not a data problem (the engine's count of the
quarantined rows per day leaves them out)."""
UNTIMED_QUARANTINE: Final[tuple[str, ...]] = ("missing_timestamp", "invalid_timestamp")
"""The reasons of rows without a readable timestamp: they cannot be placed in a period."""


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
    """What training knew: where its data ended, its holdout churn AUC and its quarantine counts (rows up to
    ``observation_end``; ``rows_untimed`` of them quarantined without a readable timestamp)."""

    observation_end: dt.date
    churn_auc: float = float("nan")
    rows_in: int = 0
    rows_quarantined: int = 0
    rows_untimed: int = 0

    @property
    def quarantine_rate(self) -> float:
        """Training's quarantine rate over its rows with a readable timestamp (as the monitor counts the new rows)."""
        dated = self.rows_in - self.rows_untimed
        return (self.rows_quarantined - self.rows_untimed) / dated if dated > 0 else 0.0


@dataclass(frozen=True)
class FeedRows:
    """The feed's rows the quarantine check counts: the rows used up to T0 (``used_to_start``), how many rows
    were quarantined on each day (``quarantined``: every reason but lying after a period's end, dated by their
    timestamp as the engine's prepare read it), and how many quarantined rows have no readable timestamp
    (``untimed``)."""

    used_to_start: int
    quarantined: Mapping[dt.date, int]
    untimed: int = 0

    def quarantined_in(self, start: dt.date, end: dt.date) -> int:
        """Quarantined rows dated in (``start``, ``end``]."""
        return sum(n for day, n in self.quarantined.items() if start < day <= end)


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

    @property
    def failed_recently(self) -> dict[str, tuple[int, ...]]:
        """Each check that failed in any of the last ``stale_after`` periods (or of fewer, when fewer have
        passed), with the periods it failed in."""
        failed: dict[str, tuple[int, ...]] = {}
        for period in self.periods[-self.config.stale_after :]:
            for name in period.failed:
                failed[name] = (*failed.get(name, ()), period.index)
        return dict(sorted(failed.items()))


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


def feed_rows(engine: Engine, data: Source, config: PrepareConfig, prepared: PreparedData, start: dt.date) -> FeedRows:
    """What the quarantine check counts in ``data``: ``prepared`` is the feed prepared to the last period's end
    (its quarantine holds every row quarantined for a reason of its own, whatever its date), whose quarantined
    rows the engine counts per day as its prepare dated them (:meth:`pipeline.engines.Engine.quarantined_days`)."""
    used_to_start = engine.prepare_as_of(data, config, start).ledger.rows_used
    days = engine.quarantined_days(prepared)
    untimed = days.pop(None, 0)
    return FeedRows(used_to_start, {d: n for d, n in days.items() if d is not None}, untimed)


def _data_metrics(prepared: PreparedData, start: dt.date, reference: Reference, rows: FeedRows) -> dict[str, float]:
    """Customers, and the quarantine rate of the rows dated in (T0, the period's end] (used or quarantined)."""
    new = int((pd.to_datetime(prepared.full["first_purchase"]) > pd.Timestamp(start)).sum())
    returning = int((prepared.calibration["frequency_holdout"] > 0).sum())
    quarantined_new = rows.quarantined_in(start, prepared.observation_end)
    rows_new = prepared.ledger.rows_used - rows.used_to_start + quarantined_new
    rate = quarantined_new / rows_new if rows_new > 0 else 0.0
    return {
        "customers_known": float(len(prepared.calibration)),
        "customers_returning": float(returning),
        "customers_new": float(new),
        "new_customers": new / (new + returning) if new + returning else 0.0,
        "rows_new": float(rows_new),
        "rows_quarantined_new": float(quarantined_new),
        "rows_untimed": float(rows.untimed),
        "quarantine_rate_new": rate,
        "quarantine": rate - reference.quarantine_rate,
    }


def _period_metrics(
    model: CLVModelParams, prepared: PreparedData, reference: Reference, period_length: float, rows: FeedRows
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
    return out | _data_metrics(prepared, start, reference, rows), tracking


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
    """Every complete period since the model's data ended (up to ``last``, default the feed's last date; not
    before the model's data ended: ValueError), measured and checked; the verdict over the last ``stale_after``
    periods. ``period_length``: one merge period in the model's time unit."""
    config = config or MonitorConfig()
    start = reference.observation_end
    if last is not None and last < start:
        raise ValueError(f"last day to judge {last} is before the model's data ended ({start})")

    def prepared_to(end: dt.date | None) -> PreparedData:
        update = {"calibration_end": start, "observation_end": end}
        try:
            return engine.prepare(data, prepare_config.model_copy(update=update))
        except InputError as exc:
            if end is None or "outside the data" not in str(exc):
                raise
            raise InputError(
                f"{data.description}: no transaction after the model's data ended ({start}), so nothing to judge "
                f"up to {last}: is the feed up to date?"
            ) from None

    if last is None:
        try:
            last = prepared_to(None).last_date
        except InputError as exc:
            if "outside the data" not in str(exc):
                raise
            last = start  # no transaction after the model's data ended: nothing to judge yet
    ends = period_ends(start, last, config.period_days)
    periods: list[Period] = []
    tracking = pd.DataFrame()
    rows: FeedRows | None = None
    for index in range(len(ends), 0, -1):  # the last period first: its quarantine dates every period's
        prepared = prepared_to(ends[index - 1])
        if rows is None:
            rows = feed_rows(engine, data, prepare_config, prepared, start)
        metrics, measured = _period_metrics(model, prepared, reference, period_length, rows)
        if index == len(ends):
            tracking = measured
        periods.insert(0, Period(index, ends[index - 1], metrics, evaluate_checks(metrics, reference, config)))
    status, failing, stale_from = verdict(tuple(periods), config.stale_after)
    return Monitoring(reference, tuple(periods), tracking, status, failing, stale_from, config)
