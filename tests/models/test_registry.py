from __future__ import annotations

import dataclasses

import pytest

from models import bgnbd, registry
from models.bgnbd import BetaGeoParams
from models.pareto_nbd import ParetoNBDParams


def test_the_built_in_models_are_registered_by_name_and_parameter_type() -> None:
    assert registry.names() == ("bgnbd", "mbgnbd", "pareto_nbd")
    assert registry.get("pareto_nbd").label == "Pareto/NBD"
    assert registry.of_params(ParetoNBDParams(0.5, 10.0, 0.6, 11.0)).name == "pareto_nbd"
    assert registry.of_params(BetaGeoParams(0.2, 4.0, 0.8, 2.4)) is bgnbd.MODEL


def test_unknown_names_and_types_are_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown purchase model 'nbd'; expected one of \['bgnbd', 'mbgnbd'"):
        registry.get("nbd")
    with pytest.raises(TypeError, match="not purchase-model parameters"):
        registry.of_params(dataclasses.make_dataclass("Other", [("r", float)])(1.0))


def test_a_name_or_parameter_type_cannot_be_taken_twice() -> None:
    assert registry.register(bgnbd.MODEL) is bgnbd.MODEL  # registering the same model again is harmless
    with pytest.raises(ValueError, match="a purchase model named 'bgnbd' is already registered"):
        registry.register(dataclasses.replace(bgnbd.MODEL, label="other"))
    with pytest.raises(ValueError, match="BetaGeoParams already belongs to another registered model"):
        registry.register(dataclasses.replace(bgnbd.MODEL, name="bgnbd_again"))
    registry.unregister("not_registered")  # ignored
    assert registry.names() == ("bgnbd", "mbgnbd", "pareto_nbd")
