"""``challenger``: the machine-learning challenger and its contest against the BTYD model.

Off by default: the contest needs a full label window (the holdout length) before the calibration end,
and the job then fits two gradient-boosted models more. When on, the challenger is trained at
``calibration_end - H`` (H = the holdout length) on data up to ``calibration_end`` only, rescaled to the BTYD
forecast total, blended with BTYD with ``weight``, and replaces BTYD's revenue and churn risk only when the
contest says so (:mod:`pipeline.contest`).
"""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import StrictModel

__all__ = ["ChallengerConfig"]


class ChallengerConfig(StrictModel):
    enabled: bool = False
    weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """Weight of the challenger in the blend: (1 - weight) x BTYD + weight x challenger."""
    mae_tolerance: float = Field(default=0.05, ge=0.0)
    """The blend's revenue MAE may be at most this fraction above BTYD's."""
    total_tolerance: float = Field(default=0.10, ge=0.0)
    """|predicted / actual holdout revenue - 1| at most this."""
    bootstrap_draws: int = Field(default=1000, ge=100)
    level: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = 17
    """Seed of the paired bootstrap over customers (the run is reproducible)."""
