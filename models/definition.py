"""What a purchase model is, in one place: its name and label, parameters and bounds, formulas and fitters.

Each model module (:mod:`models.bgnbd`, :mod:`models.mbgnbd`, :mod:`models.pareto_nbd`) declares one
:class:`PurchaseModel` from its own functions, and :mod:`models.registry` registers it. Everything else
(scoring, validation, the checks, the maximum-likelihood and PyMC fits, the config) looks the model up by
name or by the type of its parameters, so adding a model is one module plus one registration line.

The formulas take the parameters as data (a frozen dataclass with one float field per parameter and
``as_dict``) and arrays of customer histories: ``frequency`` (repeat purchase periods), ``recency`` (age at
the last purchase) and ``T`` (age at the end of observation), in the model's time unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "POSITIVE",
    "MleFit",
    "MleFitter",
    "PurchaseModel",
    "PurchaseParams",
    "PymcSpec",
]

FloatArray = NDArray[np.float64]
POSITIVE = (0.0, float("inf"))
"""The bounds of a parameter that must be positive (every parameter of the gamma and beta mixtures)."""


class PurchaseParams(Protocol):
    """A purchase model's fitted parameters: a frozen dataclass of floats."""

    def as_dict(self) -> dict[str, float]: ...


P = TypeVar("P", bound=PurchaseParams)


@dataclass(frozen=True)
class MleFit:
    """A maximum-likelihood fitter's answer: the parameters and their standard errors (NaN when unknown)."""

    values: dict[str, float]
    standard_errors: dict[str, float]


MleFitter = Callable[["PurchaseModel[Any]", "pd.DataFrame", float, "FloatArray | None"], MleFit]
"""(the model; unique histories with ``frequency``, ``recency``, ``T`` and ``weight``; L2 penalizer; start values in the
natural scale, one per parameter, or None for the fitter's own start) -> the fit. Raises
:class:`models.fitted.FitError` when the optimum is not reached."""


@dataclass(frozen=True)
class PymcSpec:
    """How PyMC fits the model (see :mod:`models.bayes`): ``priors()`` creates the ``pymc_marketing``
    default prior variables inside the current ``pm.Model`` (``flat`` priors are HalfFlat on every parameter),
    and ``distribution(variables, T)`` is the joint (recency, frequency) distribution whose ``logp`` is the
    history's log-likelihood."""

    priors: Callable[[], dict[str, Any]]
    distribution: Callable[[Mapping[str, Any], FloatArray], Any]


@dataclass(frozen=True)
class PurchaseModel(Generic[P]):
    """One purchase model: everything the job, the fits and scoring need to know about it.

    ``rates`` are the parameters in time units (the rates of the gamma mixtures), so a fit can start them at
    the data's time scale; the others are shapes, which the fit stage checks for running off to a bound.
    ``bounds`` default to positive for every parameter. ``mle`` and ``pymc`` are None when the model has no
    fitter of that kind (the config then refuses the method).
    """

    name: str
    label: str
    params_type: type[P]
    rates: tuple[str, ...]
    p_alive: Callable[[P, ArrayLike, ArrayLike, ArrayLike], FloatArray]
    p_no_purchase: Callable[[P, ArrayLike, ArrayLike, ArrayLike, ArrayLike], FloatArray]
    expected_purchases: Callable[[P, ArrayLike, ArrayLike, ArrayLike, ArrayLike], FloatArray]
    expected_purchases_new_customer: Callable[[P, ArrayLike], FloatArray]
    log_likelihood_rows: Callable[[P, ArrayLike, ArrayLike, ArrayLike], FloatArray]
    repeat_count_pmf: Callable[[P, ArrayLike, ArrayLike], FloatArray]
    mle: MleFitter | None = None
    pymc: PymcSpec | None = None
    bounds: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(self.param_names)
        if unknown:
            raise ValueError(f"{self.name}: rates {sorted(unknown)} are not parameters {self.param_names}")

    @property
    def param_names(self) -> tuple[str, ...]:
        """The parameters, in the order of the parameter dataclass's fields."""
        return tuple(f.name for f in fields(self.params_type))  # type: ignore[arg-type]

    @property
    def shapes(self) -> tuple[str, ...]:
        """The parameters that are not rates."""
        return tuple(n for n in self.param_names if n not in self.rates)

    @property
    def methods(self) -> tuple[str, ...]:
        """The fit methods the model supports: ``mle`` with a maximum-likelihood fitter, ``map`` and ``mcmc``
        with a PyMC model."""
        return (("mle",) if self.mle is not None else ()) + (("map", "mcmc") if self.pymc is not None else ())

    def bounds_of(self, name: str) -> tuple[float, float]:
        return POSITIVE if self.bounds is None else self.bounds.get(name, POSITIVE)

    def make_params(self, values: Mapping[str, float]) -> P:
        """The parameters from a mapping with (at least) the model's parameter names."""
        return self.params_type(*(float(values[k]) for k in self.param_names))
