"""One maximum-likelihood attempt of the fit stage (purchase or spend model), as recorded in the run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FitAttempt"]


@dataclass(frozen=True)
class FitAttempt:
    """One maximum-likelihood attempt: what was tried, and how it went."""

    remedy: str
    penalizer: float
    outcome: str
    """``ok``, ``failed`` (an error) or ``degenerate`` (a parameter ran off or left its bounds); the spend
    model's fallback is recorded as one more attempt (remedy ``pooled_mean``, outcome ``fallback``)."""
    message: str = ""
    log_likelihood: float = float("nan")
    holdout_log_likelihood: float = float("nan")
    restart: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "remedy": self.remedy,
            "penalizer": self.penalizer,
            "outcome": self.outcome,
            "message": self.message,
            "log_likelihood": self.log_likelihood,
            "holdout_log_likelihood": self.holdout_log_likelihood,
        }
