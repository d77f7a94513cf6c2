from __future__ import annotations

import pytest

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, RiskTier, ScoringSpec
from models.gamma_gamma import GammaGammaParams

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
