"""The subscription scoring model: sBG formulas by cohort, the pooled fit for an unknown cohort, the contract."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import sbg
from models.contract import ContractError
from models.subscription_model import (
    CAP_TOLERANCE,
    OUTPUT_COLUMNS,
    SubscriptionParams,
    at_lifetime_cap,
    read_subscription_params,
    score_subscribers,
    write_subscription_params,
)

REGULAR = sbg.ShiftedBetaGeoParams(0.7041, 1.1820)  # Fader & Hardie (2007) "regular"
HIGH_END = sbg.ShiftedBetaGeoParams(0.6681, 3.8061)  # and "high end"
PARAMS = SubscriptionParams(
    pooled=HIGH_END, cohorts={"2024-01-01": REGULAR}, discount_rate=0.01, risk_periods=3, billing_period="month"
)


def test_scores_are_the_sbg_formulas_of_each_rows_cohort() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [17, "b", "c"],
            "cohort": ["2024-01-01", "2024-01-01", "2023-05-01"],  # the last cohort is unknown: pooled
            "renewals": [0, 4, 2],
            "price": [100.0, 100.0, 50.0],
        }
    )
    scores = score_subscribers(PARAMS, frame)
    assert list(scores.columns) == list(OUTPUT_COLUMNS)
    assert scores["customer_id"].tolist() == ["17", "b", "c"]
    assert scores["p_renew"].tolist() == pytest.approx([1.1820 / 1.8861, 5.1820 / 5.8861, 5.8061 / 6.4742])
    for i, (params, n) in enumerate([(REGULAR, 0), (REGULAR, 4), (HIGH_END, 2)]):
        assert scores["churn_risk"][i] == pytest.approx(sbg.churn_risk(params, 3, n)[()], rel=1e-12)
        derl = sbg.derl(params, 0.01, n, 1200)[()]
        assert scores["derl"][i] == pytest.approx(derl, rel=1e-12)
        assert scores["clv"][i] == pytest.approx(frame["price"][i] * derl, rel=1e-12)
    # FH 2007 "regular": 63% renew their first contract.
    assert scores["p_renew"][0] == pytest.approx(0.6267, abs=1e-4)


def test_expected_remaining_lifetime_of_a_geometric_like_customer() -> None:
    params = SubscriptionParams(pooled=sbg.ShiftedBetaGeoParams(3.0, 6.0), horizon_periods=100_000)
    scores = score_subscribers(
        params, pd.DataFrame({"customer_id": ["x"], "cohort": ["2024-01-01"], "renewals": [3], "price": [1.0]})
    )
    # Undiscounted: (beta + n) / (alpha - 1) = 9 / 2.
    assert scores["expected_remaining_lifetime"][0] == pytest.approx(4.5, rel=1e-6)


def test_params_round_trip_through_json(tmp_path: Path) -> None:
    path = write_subscription_params(PARAMS, tmp_path / "params.json")
    assert read_subscription_params(path) == PARAMS


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("renewals", -1, "column 'renewals' must hold finite numbers >= 0"),
        ("renewals", 1.5, "column 'renewals' must hold whole numbers"),
        ("price", np.nan, "column 'price' must hold finite numbers >= 0"),
        ("cohort", "soon", "column 'cohort' must hold dates"),
    ],
)
def test_bad_input_is_one_contract_line(column: str, value: float | str, message: str) -> None:
    frame = pd.DataFrame({"customer_id": ["a"], "cohort": ["2024-01-01"], "renewals": [1], "price": [10.0]})
    frame[column] = [value]
    with pytest.raises(ContractError, match="^" + re.escape(message)):
        score_subscribers(PARAMS, frame)
    with pytest.raises(ContractError, match=r"^missing column 'price'"):
        score_subscribers(PARAMS, frame.drop(columns=["price"]))


def test_the_lifetime_cap_binds_where_the_uncapped_mean_is_over_1_percent_higher() -> None:
    """Scores are unchanged; at_lifetime_cap says where the 1,200-period horizon decides them. alpha 2, beta 5:
    (beta + n) / (alpha - 1) = 5 at n = 0 against 4.975 capped (0.5% less: not bound), 28 at n = 23 against 27.34
    (2.4%: bound). alpha 0.7 (Fader & Hardie's "regular"): no finite mean, always bound."""
    params = SubscriptionParams(
        pooled=sbg.ShiftedBetaGeoParams(2.0, 5.0), cohorts={"2024-01-01": REGULAR}, billing_period="month"
    )
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "cohort": ["2023-01-01", "2023-01-01", "2024-01-01"],
            "renewals": [0, 23, 0],
            "price": [10.0, 10.0, 10.0],
        }
    )
    lifetimes = score_subscribers(params, frame)["expected_remaining_lifetime"].to_numpy()
    assert lifetimes[:2] == pytest.approx([4.975124, 27.339300], abs=1e-6)
    assert at_lifetime_cap(params, frame).tolist() == [False, True, True]
    assert CAP_TOLERANCE == 0.01
    wide = SubscriptionParams(pooled=sbg.ShiftedBetaGeoParams(2.0, 5.0), horizon_periods=100_000)
    assert at_lifetime_cap(wide, frame.iloc[:2]).tolist() == [False, False]
