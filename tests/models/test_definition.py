from __future__ import annotations

import dataclasses

import pytest

from models import bgnbd, mbgnbd, pareto_nbd
from models.definition import POSITIVE
from models.pareto_nbd import ParetoNBDParams


def test_parameters_rates_and_shapes() -> None:
    assert bgnbd.MODEL.param_names == ("r", "alpha", "a", "b")
    assert bgnbd.MODEL.shapes == ("r", "a", "b")
    assert pareto_nbd.MODEL.param_names == ("r", "alpha", "s", "beta")
    assert pareto_nbd.MODEL.shapes == ("r", "s")
    assert mbgnbd.MODEL.bounds_of("a") == POSITIVE == (0.0, float("inf"))


def test_methods_follow_the_fitters() -> None:
    assert pareto_nbd.MODEL.methods == ("mle", "map", "mcmc")
    assert dataclasses.replace(pareto_nbd.MODEL, pymc=None).methods == ("mle",)
    assert dataclasses.replace(pareto_nbd.MODEL, mle=None).methods == ("map", "mcmc")


def test_make_params_takes_the_model_parameters_from_a_mapping() -> None:
    values = {"beta": 4, "s": 3, "alpha": 2, "r": 1, "p": 9}
    assert pareto_nbd.MODEL.make_params(values) == ParetoNBDParams(1.0, 2.0, 3.0, 4.0)


def test_rates_must_be_parameters() -> None:
    with pytest.raises(ValueError, match=r"bgnbd: rates \['beta'\] are not parameters"):
        dataclasses.replace(bgnbd.MODEL, rates=("beta",))
