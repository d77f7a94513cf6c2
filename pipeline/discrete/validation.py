"""Fit and judge BG/BB on a holdout of later opportunities.

- **Fit**: BG/BB by maximum likelihood on the calibration histories (:func:`models.bgbb.fit_bgbb`), penalized
  by the first of ``fit.remedies.penalizers`` that converges when the plain fit does not.
- **Holdout**: each calibration customer's purchases in the opportunities after the calibration end
  (``frequency_holdout``), against the model's expected transactions over those n* opportunities
  (FHS 2010, eq. 13); ``purchases_mae`` per customer, ``purchases_total_error`` in relative terms.
- **Baselines**: ``last_period`` (the customer's purchases in the last n* calibration opportunities, scaled
  to n* when fewer were observed) and ``average_rate`` (the customer's x / n, or the pooled rate when n = 0,
  times n*).
- **Gate**: ``beats_historical_baseline`` (purchases MAE below every baseline's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import bgbb
from pipeline.gate import Check, GateResult

__all__ = ["BASELINES", "DiscreteValidation", "discrete_gate", "holdout_frame", "validate_bgbb"]

BASELINES = ("last_period", "average_rate")


@dataclass(frozen=True)
class DiscreteValidation:
    fit: bgbb.BGBBFit
    metrics: dict[str, float]
    holdout: pd.DataFrame


def holdout_frame(calibration: pd.DataFrame, full: pd.DataFrame) -> pd.DataFrame:
    """Calibration histories with ``n_holdout`` (opportunities after the calibration end) and
    ``frequency_holdout`` (purchases in them)."""
    later = full.set_index("customer_id").loc[calibration["customer_id"], ["frequency", "n_periods"]]
    out = calibration.copy()
    out["n_holdout"] = later["n_periods"].to_numpy() - calibration["n_periods"].to_numpy()
    out["frequency_holdout"] = later["frequency"].to_numpy() - calibration["frequency"].to_numpy()
    return out


def _last_period(frame: pd.DataFrame, recent: pd.Series, n_star: np.ndarray) -> np.ndarray:
    window = np.minimum(n_star, frame["n_periods"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(window > 0, recent.to_numpy() * n_star / window, 0.0)
    return np.asarray(scaled, dtype=np.float64)


def validate_bgbb(
    calibration: pd.DataFrame, full: pd.DataFrame, penalizers: tuple[float, ...] = ()
) -> DiscreteValidation:
    """BG/BB fitted on ``calibration`` (with ``recent``, the purchases in its last n* opportunities; a
    penalized fit when the plain one does not converge, :func:`models.bgbb.fit_bgbb_with_remedies`), judged
    on the opportunities ``full`` adds."""
    frame = holdout_frame(calibration, full)
    x, t_x, n = (frame[c].to_numpy() for c in ("frequency", "recency", "n_periods"))
    fit = bgbb.fit_bgbb_with_remedies(x, t_x, n, penalizers)
    n_star = frame["n_holdout"].to_numpy()
    actual = frame["frequency_holdout"].to_numpy(dtype=np.float64)
    predicted = bgbb.expected_transactions(fit.params, n_star, x, t_x, n)
    pooled = float(x.sum() / max(n.sum(), 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, x / np.maximum(n, 1), pooled)
    baselines = {
        "last_period": _last_period(frame, frame["recent"], n_star),
        "average_rate": rate * n_star,
    }
    metrics = {
        "purchases_mae": float(np.mean(np.abs(predicted - actual))),
        "purchases_total_error": float(predicted.sum() / actual.sum() - 1.0) if actual.sum() > 0 else math.nan,
        **{f"baseline_{k}_purchases_mae": float(np.mean(np.abs(v - actual))) for k, v in baselines.items()},
    }
    frame["expected_holdout"] = predicted
    return DiscreteValidation(fit, metrics, frame)


def discrete_gate(metrics: dict[str, float]) -> GateResult:
    model = metrics.get("purchases_mae", math.nan)
    best = min(metrics.get(f"baseline_{b}_purchases_mae", math.nan) for b in BASELINES)
    passed = not math.isnan(model) and not math.isnan(best) and model < best
    return GateResult((Check("beats_historical_baseline", "purchases_mae", model, best, "lower", passed),))
