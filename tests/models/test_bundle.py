from __future__ import annotations

import json

import numpy as np
import pytest

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, PosteriorDraws, RiskTier, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from models.pareto_nbd import ParetoNBDParams
from models.spend import PooledMeanParams

MODEL = CLVModelParams(
    purchase=BetaGeoParams(0.24, 4.4, 0.79, 2.4),
    spend=GammaGammaParams(6.2, 3.7, 15.4),
    spec=ScoringSpec(time_unit="day", horizons_days=(7, 30), risk_tiers=(RiskTier("ok", 0.6), RiskTier("bad", 1.0))),
)


def test_round_trip_through_plain_data() -> None:
    assert CLVModelParams.from_dict(MODEL.to_dict()) == MODEL


def test_rejects_unknown_format() -> None:
    data = MODEL.to_dict() | {"format_version": 99}
    with pytest.raises(ValueError, match="format_version"):
        CLVModelParams.from_dict(data)


def _posterior_model() -> CLVModelParams:
    draws = np.random.default_rng(0).uniform(0.9, 1.1, size=(7, 40))
    return CLVModelParams(
        purchase=ParetoNBDParams(0.55, 10.6, 0.61, 11.7),
        spend=GammaGammaParams(6.2, 3.7, 15.4),
        spec=ScoringSpec(),
        posterior=PosteriorDraws(
            purchase={k: 0.5 * row for k, row in zip(("r", "alpha", "s", "beta"), draws[:4], strict=True)},
            spend={k: 5.0 * row for k, row in zip(("p", "q", "v"), draws[4:], strict=True)},
            interval=(0.1, 0.9),
        ),
    )


def test_other_purchase_models_and_posterior_draws_round_trip() -> None:
    model = _posterior_model()
    data = json.loads(json.dumps(model.to_dict()))
    again = CLVModelParams.from_dict(data)
    assert again.purchase_model == "pareto_nbd"
    assert again.to_dict() == model.to_dict()
    assert again.posterior is not None
    assert again.posterior.n_draws == 40
    assert again.posterior.interval == (0.1, 0.9)


def test_version_1_files_still_load() -> None:
    data = MODEL.to_dict() | {"format_version": 1}
    del data["posterior"]
    assert CLVModelParams.from_dict(data) == MODEL


def test_posterior_draws_must_line_up() -> None:
    with pytest.raises(ValueError, match="one length"):
        PosteriorDraws(purchase={"r": np.ones(3)}, spend={"p": np.ones(4)})
    with pytest.raises(ValueError, match="quantiles"):
        PosteriorDraws(purchase={"r": np.ones(3)}, spend={"p": np.ones(3)}, interval=(0.9, 0.1))


@pytest.mark.parametrize(
    ("spend", "name", "stored"),
    [
        (PooledMeanParams(42.5), "pooled_mean", {"mean": 42.5}),
        (None, "none", None),
        (GammaGammaParams(6.2, 3.7, 15.4), "gamma_gamma", {"p": 6.2, "q": 3.7, "v": 15.4}),
    ],
)
def test_spend_models_round_trip_in_format_3(
    spend: PooledMeanParams | GammaGammaParams | None, name: str, stored: object
) -> None:
    model = CLVModelParams(MODEL.purchase, spend, MODEL.spec)
    data = json.loads(json.dumps(model.to_dict()))
    assert data["format_version"] == 3
    assert (data["spend_model"], data["spend_params"]) == (name, stored)
    again = CLVModelParams.from_dict(data)
    assert again == model
    assert again.spend_model == name
    assert again.has_spend is (spend is not None)


def test_version_2_files_still_load() -> None:
    data = MODEL.to_dict() | {"format_version": 2}
    assert CLVModelParams.from_dict(data) == MODEL
    with pytest.raises(ValueError, match="unsupported models 'bgnbd' x 'none'"):
        CLVModelParams.from_dict(data | {"spend_model": "none", "spend_params": None})


def test_from_flat_params_with_each_spend_model() -> None:
    flat = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4, "mean": 30.0, "p": 6.2, "q": 3.7, "v": 15.4}
    assert CLVModelParams.from_params(flat, ScoringSpec()).spend == GammaGammaParams(6.2, 3.7, 15.4)
    assert CLVModelParams.from_params(flat, ScoringSpec(), spend_model="pooled_mean").spend == PooledMeanParams(30.0)
    assert CLVModelParams.from_params(flat, ScoringSpec(), spend_model="none").spend is None
