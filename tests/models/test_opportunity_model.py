"""The discrete-opportunity scoring model: BG/BB formulas, and its contract."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from models import bgbb
from models import spend as spend_models
from models.contract import ContractError, check_customer_summary
from models.opportunity_model import OUTPUT_COLUMNS, OpportunityParams, score_opportunities

DONATIONS = bgbb.BetaGeoBetaBinomParams(1.2035, 0.7497, 0.6567, 2.7834)  # FHS 2010 / lifetimes' donations
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.45}
SPEND_WITHOUT_REPEATS = (
    "column 'monetary_value' must be 0 where 'frequency' is 0: it is the mean spend of the repeat purchases "
    "(the first purchase left out)"
)


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


GOOD = {"customer_id": ["a", "b"], "frequency": [2, 0], "recency": [3, 0], "n_periods": [6, 6]}


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("frequency", ["2", "0"], "column 'frequency' must be numeric, got text"),
        ("recency", [3, None], "column 'recency' has null or NaN values"),
        ("n_periods", [6, float("inf")], "column 'n_periods' has infinite values"),
        ("frequency", [2, -1], "column 'frequency' has negative values"),
        ("frequency", [2.5, 0], "column 'frequency' must hold whole numbers"),
        ("recency", [3.5, 0], "column 'recency' must hold whole numbers"),
        ("n_periods", [6, 6.5], "column 'n_periods' must hold whole numbers"),
        ("frequency", [4, 0], "column 'frequency' is greater than 'recency' for some customers"),
        ("n_periods", [2, 6], "column 'recency' is greater than 'n_periods' for some customers"),
        ("recency", [3, 1], "column 'recency' must be 0 where 'frequency' is 0"),
    ],
)
def test_a_bad_history_is_one_line_naming_the_column(column: str, values: list[object], message: str) -> None:
    """The BG/BB input check names the column and rules as the BG/NBD one does (models.contract)."""
    model = OpportunityParams(DONATIONS)
    assert len(score_opportunities(model, pd.DataFrame(GOOD))) == 2
    frame = pd.DataFrame(GOOD | {column: values})
    with pytest.raises(ContractError) as raised:
        score_opportunities(model, frame)
    assert str(raised.value) == message


def test_the_bgnbd_check_gives_the_same_lines() -> None:
    """The same faults in a BG/NBD summary (T in place of n_periods) give the same lines."""
    summary = pd.DataFrame(
        {"customer_id": ["a"], "frequency": [2.5], "recency": [3.0], "T": [6.0], "monetary_value": [1.0]}
    )
    with pytest.raises(ContractError) as raised:
        check_customer_summary(summary)
    assert str(raised.value) == "column 'frequency' must hold whole numbers"
    with pytest.raises(ContractError) as raised:
        check_customer_summary(summary.assign(frequency=0.0))
    assert str(raised.value) == "column 'recency' must be 0 where 'frequency' is 0"


def test_missing_columns_and_bad_spend_are_one_line() -> None:
    model = OpportunityParams(DONATIONS)
    frame = pd.DataFrame(GOOD)
    with pytest.raises(ContractError) as raised:
        score_opportunities(model, frame.drop(columns=["n_periods"]))
    assert str(raised.value) == "missing column 'n_periods' (needs customer_id, frequency, recency, n_periods)"
    with_spend = OpportunityParams(DONATIONS, spend=spend_models.make_spend_params("gamma_gamma", GAMMA_GAMMA))
    with pytest.raises(ContractError) as raised:
        score_opportunities(with_spend, frame.assign(monetary_value=[10.0, -1.0]))
    assert str(raised.value) == "column 'monetary_value' has negative values"
    with pytest.raises(ContractError) as raised:
        score_opportunities(with_spend, frame.assign(monetary_value=[10.0, 25.0]))  # b has no repeat purchase
    assert str(raised.value) == SPEND_WITHOUT_REPEATS
    assert len(score_opportunities(with_spend, frame.assign(monetary_value=[10.0, 0.0]))) == 2
