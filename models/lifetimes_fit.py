"""Maximum-likelihood fits through lifetimes' fitters: the ``mle`` hook of BG/NBD, MBG/NBD and Pareto/NBD.

A :class:`LifetimesFitter` names the lifetimes class; lifetimes is imported when a fit runs, so scoring
(which needs only the formulas) never imports it. lifetimes divides time by the largest T and starts every
log-parameter at 0.1; a start given in the data's time units is rescaled to lifetimes' units here.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.definition import MleFit
from models.fitted import FitError

if TYPE_CHECKING:
    from models.definition import PurchaseModel

__all__ = ["LifetimesFitter"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LifetimesFitter:
    """The maximum-likelihood hook of a model that lifetimes fits.

    ``natural_params``: the fitter optimises the parameters themselves (Pareto/NBD), not their logarithms;
    it then starts at 1 (lifetimes would start from the unseeded global random generator) and, since
    lifetimes ignores whether its Nelder-Mead succeeded, the optimum is checked here.
    """

    fitter: str
    natural_params: bool = False

    def __call__(
        self, model: PurchaseModel[Any], rows: pd.DataFrame, penalizer: float, start: FloatArray | None
    ) -> MleFit:
        with warnings.catch_warnings():
            # lifetimes mutes FutureWarning process-wide when imported; keep the caller's filters intact.
            import lifetimes

        names = model.param_names
        fitter = getattr(lifetimes, self.fitter)(penalizer_coef=penalizer)
        initial = np.ones(len(names)) if self.natural_params else None
        if start is not None:
            largest = float(rows["T"].to_numpy().max())
            scaled = np.asarray([v / largest if k in model.rates else v for k, v in zip(names, start, strict=True)])
            initial = scaled if self.natural_params else np.log(scaled)
        _run_fit(
            fitter,
            model.label,
            penalizer,
            rows["frequency"],
            rows["recency"],
            rows["T"],
            weights=rows["weight"],
            initial_params=initial,
        )
        if self.natural_params and not _pareto_converged(fitter, rows, penalizer):
            raise FitError(
                f"{model.label} did not converge (penalizer {penalizer}): Nelder-Mead stopped away from an optimum"
            )
        return MleFit({k: float(fitter.params_[k]) for k in names}, _standard_errors(fitter, names))


def _run_fit(fitter: Any, name: str, penalizer: float, *data: Any, **kwargs: Any) -> None:
    """``fitter.fit(*data)`` with lifetimes' numerical warnings muted and its ConvergenceError as FitError."""
    from lifetimes.utils import ConvergenceError

    try:
        # lifetimes prints scipy's result to stdout when it gives up: keep stdout for our own output.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", RuntimeWarning)
            fitter.fit(*data, **kwargs)
    except ConvergenceError as exc:
        raise FitError(f"{name} did not converge (penalizer {penalizer}): {str(exc).strip()}") from exc


def _pareto_converged(fitter: Any, rows: pd.DataFrame, penalizer: float, tolerance: float = 1e-4) -> bool:
    """lifetimes' Pareto/NBD ignores whether Nelder-Mead succeeded: check the optimum ourselves.

    The gradient of lifetimes' own objective with respect to the log-parameters, by central
    differences, must be tiny relative to the objective (about 1e-7 at CDNOW's optimum, 1e-2 when a
    parameter is 10% off).
    """
    scale = fitter._scale
    point = np.asarray(
        [fitter.params_["r"], fitter.params_["alpha"] * scale, fitter.params_["s"], fitter.params_["beta"] * scale]
    )
    args = (
        rows["frequency"].to_numpy(),
        rows["recency"].to_numpy() * scale,
        rows["T"].to_numpy() * scale,
        rows["weight"].to_numpy(),
        penalizer,
    )

    def objective(log_params: FloatArray) -> float:
        with np.errstate(all="ignore"):
            return float(fitter._negative_log_likelihood(np.exp(log_params), *args))

    centre, step = np.log(point), 1e-5
    value = objective(centre)
    gradient = [(objective(centre + step * e) - objective(centre - step * e)) / (2 * step) for e in np.eye(4)]
    return bool(np.isfinite(value) and max(abs(g) for g in gradient) <= tolerance * max(abs(value), 1.0))


def _standard_errors(fitter: Any, names: tuple[str, ...]) -> dict[str, float]:
    """lifetimes' standard errors from the inverse Hessian (not every fitter stores them; NaN if singular)."""
    errors = getattr(fitter, "standard_errors_", None)
    if errors is None:
        try:
            errors = fitter._compute_standard_errors()
        except (AttributeError, ValueError, np.linalg.LinAlgError):
            return dict.fromkeys(names, float("nan"))
    return {k: float(errors[k]) for k in names}
