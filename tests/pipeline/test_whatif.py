"""The what-if stage: segment sums, the total row, and the break-even spend checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.scoring import score_customers
from models.spend import PooledMeanParams
from models.whatif import Scenario
from pipeline.whatif import Campaign, segment_labels, whatif, whatif_figure

MODEL = CLVModelParams(BetaGeoParams(0.243, 4.414, 0.793, 2.426), PooledMeanParams(35.0), ScoringSpec())
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "frequency": [0.0, 2, 6],
        "recency": [0.0, 20, 36],
        "T": [38.0, 38, 38],
        "monetary_value": [0.0, 30, 40],
    }
)


def test_break_even_by_hand() -> None:
    """Spend +10%: ΔCLV is 10% of the scored CLV, so per customer of segment {b, c} it is 0.1 (clv_b + clv_c) / 2;
    with 40% responding and 1.50 to reach each customer the break-even spend is that x 0.4 - 1.5."""
    clv = score_customers(MODEL, CUSTOMERS)["clv"].to_numpy()
    segments = pd.Series(["one-timer", "repeat", "repeat"])
    done = whatif(MODEL, CUSTOMERS, segments, [Scenario("spend", 0.1)], Campaign(0.4, 1.5))
    repeat = done.table.set_index("segment").loc["repeat"]
    delta_per_customer = 0.1 * (clv[1] + clv[2]) / 2
    assert repeat["customers"] == 2
    assert repeat["delta_clv_per_customer"] == pytest.approx(delta_per_customer, rel=1e-12)
    assert repeat["break_even_spend_per_customer"] == pytest.approx(delta_per_customer * 0.4 - 1.5, rel=1e-12)
    assert repeat["delta_clv_pct"] == pytest.approx(0.1, rel=1e-12)
    # the numbers themselves (pooled mean 35, FHL's CDNOW BG/NBD fit, 12 months at 10% a year)
    np.testing.assert_allclose(clv, [8.575425, 40.560303, 168.629296], rtol=1e-4)
    # 0.1 x (40.560303 + 168.629296) / 2 = 10.45950; x 0.4 = 4.18380; - 1.5 = 2.68380
    assert repeat["break_even_spend_per_customer"] == pytest.approx(2.68380, abs=1e-5)


def test_table_has_segments_in_order_and_a_total() -> None:
    scenarios = [Scenario("dropout", 0.05), Scenario("rate", 0.05)]
    segments = pd.Series(["bottom 50%", "top 5%", "top 5%"])
    done = whatif(MODEL, CUSTOMERS, segments, scenarios, Campaign())
    table = done.table
    assert table["segment"].tolist() == ["top 5%"] * 2 + ["bottom 50%"] * 2 + ["all selected"] * 2
    total = table[(table["segment"] == "all selected") & (table["scenario"] == "dropout -5%")].iloc[0]
    parts = table[(table["segment"] != "all selected") & (table["scenario"] == "dropout -5%")]
    assert total["customers"] == 3
    assert total["delta_clv"] == pytest.approx(parts["delta_clv"].sum(), rel=1e-12)
    assert total["break_even_spend_per_customer"] == pytest.approx(total["delta_clv"] / 3, rel=1e-12)
    assert (table["delta_clv"] > 0).all()
    assert len(done.customers) == 6
    assert whatif_figure(table).axes[0].get_title().startswith("What-if")


def test_k_zero_gives_a_zero_table() -> None:
    done = whatif(MODEL, CUSTOMERS, pd.Series(["x"] * 3), [Scenario("dropout", 0.0)], Campaign(0.5, 2.0))
    row = done.table.iloc[0]
    assert row["delta_clv"] == 0.0
    assert row["clv_after"] == row["clv_before"]
    assert row["break_even_spend_per_customer"] == -2.0


def test_segment_labels() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    assert segment_labels("value_segment", scores, None).tolist() == ["bottom 50%", "middle 30%", "top 5%"]
    assert segment_labels("all", scores, None).tolist() == ["all customers"] * 3
    first = pd.Series(pd.to_datetime(["1997-01-03", "1997-02-11", "1997-02-28"]))
    assert segment_labels("cohort", scores, first).tolist() == ["1997-01", "1997-02", "1997-02"]
    with pytest.raises(ValueError, match="first purchase"):
        segment_labels("cohort", scores, None)


def test_campaign_assumptions_are_checked() -> None:
    with pytest.raises(ValueError, match="response rate"):
        Campaign(1.5, 0.0)
    with pytest.raises(ValueError, match="cost"):
        Campaign(0.5, -1.0)
