"""What the training workflow reports as it goes: the :class:`Observer` protocol.

The workflow computes; an observer records. ``clv train`` passes :class:`pipeline.recorder.training.
TrainingRecorder` (MLflow); notebooks and tests that only want the numbers pass nothing (:class:`NullObserver`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import pandas as pd

if TYPE_CHECKING:
    from pipeline.champion import ChampionComparison
    from pipeline.checks import RepeatPurchaseCheck
    from pipeline.contest import ChallengerContest
    from pipeline.engines import Source
    from pipeline.engines.prepared import PreparedData
    from pipeline.fit import FittedModels
    from pipeline.gate import GateResult
    from pipeline.selection import Selection
    from pipeline.validate import Validation
    from pipeline.workflow import Candidate

__all__ = ["NullObserver", "Observer"]


class Observer(Protocol):
    """Called by :func:`pipeline.workflow.train` after each step, in the order the steps run."""

    def prepared(self, data: Source, prepared: PreparedData) -> None: ...
    def fit_input(self, prefix: str, info: dict[str, float]) -> None: ...
    def candidate(self, name: str) -> AbstractContextManager[None]: ...
    def candidate_done(self, name: str, status: str, candidate: Candidate | None) -> None: ...
    def selected(self, selection: Selection) -> None: ...
    def calibrated(
        self,
        fitted: FittedModels,
        validation: Validation,
        check: RepeatPurchaseCheck,
        prepared: PreparedData,
        warning: str | None,
        figures: Mapping[str, bytes],
    ) -> None: ...
    def champion(self, comparison: ChampionComparison) -> None: ...
    def contested(self, contest: ChallengerContest) -> None: ...
    def fitted(self, prefix: str, fitted: FittedModels) -> None: ...
    def scored(self, scores: pd.DataFrame, tables: dict[str, pd.DataFrame], metrics: dict[str, float]) -> None: ...
    def gated(self, gate: GateResult) -> None: ...
    def timed(self, timings: dict[str, float]) -> None: ...


class NullObserver:
    """Records nothing."""

    def prepared(self, data: Source, prepared: PreparedData) -> None:
        pass

    def fit_input(self, prefix: str, info: dict[str, float]) -> None:
        pass

    @contextlib.contextmanager
    def candidate(self, name: str) -> Iterator[None]:
        yield

    def candidate_done(self, name: str, status: str, candidate: Candidate | None) -> None:
        pass

    def selected(self, selection: Selection) -> None:
        pass

    def calibrated(
        self,
        fitted: FittedModels,
        validation: Validation,
        check: RepeatPurchaseCheck,
        prepared: PreparedData,
        warning: str | None,
        figures: Mapping[str, bytes],
    ) -> None:
        pass

    def champion(self, comparison: ChampionComparison) -> None:
        pass

    def contested(self, contest: ChallengerContest) -> None:
        pass

    def fitted(self, prefix: str, fitted: FittedModels) -> None:
        pass

    def scored(self, scores: pd.DataFrame, tables: dict[str, pd.DataFrame], metrics: dict[str, float]) -> None:
        pass

    def gated(self, gate: GateResult) -> None:
        pass

    def timed(self, timings: dict[str, float]) -> None:
        pass
