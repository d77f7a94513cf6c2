"""The promotion gate: each criterion is a metric, a threshold and a direction.

The built-in check ``beats_historical_baseline`` requires the model's holdout error
(``validate.baseline_metric``: revenue MAE by default, purchases MAE for a model without spend) to be
lower than that of every historical baseline. A metric that is missing or NaN fails its check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.pymc_fit import Diagnostics
from pipeline.baselines import BASELINES, PURCHASE_BASELINES
from pipeline.config import DiagnosticsConfig, FitConfig, ValidateConfig
from pipeline.errors import ConfigError
from pipeline.metrics import METRIC_NAMES, MONEY_METRICS

__all__ = ["Check", "GateResult", "check_criteria_known", "check_selection_known", "diagnostic_checks", "evaluate_gate"]


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    value: float
    threshold: float
    direction: str
    passed: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "direction": self.direction,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)


def check_criteria_known(config: ValidateConfig, has_spend: bool = True) -> None:
    """Fail fast (before any work) on a criterion that names a metric the job does not compute."""
    for index, criterion in enumerate(config.criteria_for(has_spend)):
        if criterion.metric not in METRIC_NAMES:
            raise ConfigError(
                f"validate.criteria.{index}.metric: unknown metric {criterion.metric!r}; "
                f"known: {', '.join(METRIC_NAMES)}"
            )
        if not has_spend and criterion.metric in MONEY_METRICS:
            raise ConfigError(
                f"validate.criteria.{index}.metric: {criterion.metric!r} needs amounts, and this job has no spend "
                "model (fit.spend_model: none or no amount column); use a purchases_* or churn_* metric"
            )
    if not has_spend and config.baseline_metric_for(has_spend) in MONEY_METRICS:
        raise ConfigError(
            f"validate.baseline_metric: {config.baseline_metric!r} needs amounts, and this job has no spend model; "
            "use purchases_mae or purchases_rmse"
        )


def check_selection_known(config: FitConfig) -> None:
    """Fail fast on a model-selection metric the job does not compute."""
    if len(config.candidate_list()) > 1 and config.selection_metric not in METRIC_NAMES:
        raise ConfigError(
            f"fit.selection_metric: unknown metric {config.selection_metric!r}; known: {', '.join(METRIC_NAMES)}"
        )


def _number(value: float) -> str:
    """A threshold as it appears in a check name (an MLflow tag key: no '+')."""
    return f"{value:g}".replace("+", "")


def _check(name: str, metric: str, value: float, threshold: float, direction: str) -> Check:
    if math.isnan(value):
        passed = False
    elif direction == "higher":
        passed = value >= threshold
    else:
        passed = value <= threshold
    return Check(name, metric, value, threshold, direction, passed)


def diagnostic_checks(
    diagnostics: Diagnostics | None, limits: DiagnosticsConfig, prefix: str = ""
) -> tuple[Check, ...]:
    """MCMC convergence checks (none for maximum likelihood or MAP): r-hat, bulk and tail ESS, divergences."""
    if diagnostics is None:
        return ()
    rows = (
        ("mcmc_max_rhat", diagnostics.max_rhat, limits.max_rhat, "lower"),
        ("mcmc_min_ess_bulk", diagnostics.min_ess_bulk, limits.min_ess, "higher"),
        ("mcmc_min_ess_tail", diagnostics.min_ess_tail, limits.min_ess, "higher"),
        ("mcmc_divergences", float(diagnostics.divergences), float(limits.max_divergences), "lower"),
    )
    return tuple(
        _check(f"{prefix}{metric}_{direction}_than_{_number(threshold)}", metric, value, threshold, direction)
        for metric, value, threshold, direction in rows
    )


def evaluate_gate(
    metrics: dict[str, float],
    config: ValidateConfig,
    champion_value: float | None = None,
    extra: tuple[Check, ...] = (),
    has_spend: bool = True,
) -> GateResult:
    """All checks; ``champion_value`` is the champion's ``baseline_metric`` on this holdout (None: no champion).

    ``extra`` checks (the MCMC diagnostics) are added as they are. Without a spend model the built-in checks
    compare purchases (against the purchase baselines).
    """
    kind = config.baseline_metric_for(has_spend)
    baselines = BASELINES if kind.startswith("revenue") else PURCHASE_BASELINES
    best = min(metrics.get(f"baseline_{b}_{kind}", math.nan) for b in baselines)
    model_value = metrics.get(kind, math.nan)
    beats = Check(
        name="beats_historical_baseline",
        metric=kind,
        value=model_value,
        threshold=best,
        direction="lower",
        passed=not math.isnan(model_value) and not math.isnan(best) and model_value < best,
    )
    if champion_value is None:
        champion = Check("does_not_lose_to_champion", kind, model_value, math.nan, "lower", True)
    else:
        limit = champion_value * (1 + config.champion_tolerance)
        champion = Check(
            "does_not_lose_to_champion",
            kind,
            model_value,
            limit,
            "lower",
            not math.isnan(model_value) and model_value <= limit,
        )
    checks = [beats, champion, *extra]
    for criterion in config.criteria_for(has_spend):
        name = f"{criterion.metric}_{criterion.direction}_than_{_number(criterion.threshold)}"
        value = metrics.get(criterion.metric, math.nan)
        checks.append(_check(name, criterion.metric, value, criterion.threshold, criterion.direction))
    return GateResult(tuple(checks))
