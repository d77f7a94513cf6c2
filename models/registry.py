"""The purchase models the job knows, by name: one registration line per model.

A model is a :class:`models.definition.PurchaseModel` declared in its own module. The built-in models
are registered below; a plug-in calls :func:`register` with its definition at runtime (before the config
that names it is parsed), and :func:`unregister` removes it again.
"""

from __future__ import annotations

from typing import Any

from models import bgnbd, mbgnbd, pareto_nbd
from models.definition import PurchaseModel, PurchaseParams

__all__ = ["get", "names", "of_params", "register", "unregister"]

_MODELS: dict[str, PurchaseModel[Any]] = {}


def register(model: PurchaseModel[Any]) -> PurchaseModel[Any]:
    """Make ``model`` known under its name (and its parameter type); a name or type taken by another model is
    an error."""
    if model.name in _MODELS and _MODELS[model.name] is not model:
        raise ValueError(f"a purchase model named {model.name!r} is already registered")
    if any(m.params_type is model.params_type and m is not model for m in _MODELS.values()):
        raise ValueError(f"{model.params_type.__name__} already belongs to another registered model")
    _MODELS[model.name] = model
    return model


def unregister(name: str) -> None:
    """Forget the model ``name`` (a plug-in's; unknown names are ignored)."""
    _MODELS.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered models' names, in registration order."""
    return tuple(_MODELS)


def get(name: str) -> PurchaseModel[Any]:
    """The model registered as ``name``; ValueError names the known ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown purchase model {name!r}; expected one of {sorted(_MODELS)}") from None


def of_params(params: PurchaseParams) -> PurchaseModel[Any]:
    """The model whose parameters ``params`` are."""
    for model in _MODELS.values():
        if type(params) is model.params_type:
            return model
    raise TypeError(f"not purchase-model parameters: {params!r}")


register(bgnbd.MODEL)
register(mbgnbd.MODEL)
register(pareto_nbd.MODEL)
