"""The discrete-opportunity scoring model: BG/BB formulas, and its contract."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from models import bgbb
from models.contract import ContractError
from models.opportunity_model import OUTPUT_COLUMNS, OpportunityParams, score_opportunities

DONATIONS = bgbb.BetaGeoBetaBinomParams(1.2035, 0.7497, 0.6567, 2.7834)  # FHS 2010 / lifetimes' donations


def test_scores_are_the_bgbb_formulas(tmp_path: Path) -> None:
    model = OpportunityParams(DONATIONS, horizon=5, period="year")
    frame = pd.DataFrame({"customer_id": [1, "b"], "frequency": [6, 0], "recency": [6, 0], "n_periods": [6, 6]})
    scores = score_opportunities(model, frame)
    assert list(scores.columns) == list(OUTPUT_COLUMNS)
    assert scores["customer_id"].tolist() == ["1", "b"]
    x, t, n = [6, 0], [6, 0], [6, 6]
    assert scores["p_alive"].to_numpy() == pytest.approx(bgbb.p_alive(DONATIONS, x, t, n), rel=1e-12)
    assert scores["p_alive_next"].to_numpy() == pytest.approx(bgbb.p_alive(DONATIONS, x, t, n, 1), rel=1e-12)
    assert scores["expected_transactions"].to_numpy() == pytest.approx(
        bgbb.expected_transactions(DONATIONS, 5, x, t, n), rel=1e-12
    )
    assert scores["p_alive"][0] > 0.99 > 0.2 > scores["p_alive"][1]
    path = model.write(tmp_path / "params.json")
    assert OpportunityParams.from_dict(json.loads(path.read_text())) == model


def test_an_impossible_history_is_one_contract_line() -> None:
    model = OpportunityParams(DONATIONS)
    frame = pd.DataFrame({"customer_id": ["a"], "frequency": [3], "recency": [2], "n_periods": [6]})
    with pytest.raises(ContractError, match=r"^BG/BB histories need whole numbers"):
        score_opportunities(model, frame)
    with pytest.raises(ContractError, match=r"^missing column 'n_periods'"):
        score_opportunities(model, frame.drop(columns=["n_periods"]))
