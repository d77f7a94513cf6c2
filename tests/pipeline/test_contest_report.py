"""The contest as people read it: the table with bootstrap intervals, the noise sentence, the decile and
importance figures and the report's section, all pure functions of a ChallengerContest (here a synthetic one:
2,000 customers, a good challenger against a noisy champion)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import cast

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from models.challenger_contest import contest
from models.challenger_explain import decile_table
from pipeline.contest import ChallengerContest
from pipeline.contest_plots import contest_figures
from pipeline.contest_text import beyond
from pipeline.gate import Check, GateResult
from pipeline.report import render_report
from pipeline.validate import validate
from tests.pipeline.test_report import MODEL
from tests.pipeline.test_validate import CALIBRATION

IMPORTANCE = pd.DataFrame(
    {"feature": ["recency_ratio", "spend_26w", "first_spend"], "gini_drop": [0.03, 0.01, 0.0], "gini_drop_std": 0.001}
)


def synthetic(good_wins: bool = True) -> ChallengerContest:
    rng = np.random.default_rng(3)
    expected = rng.gamma(0.5, 40.0, 2000)
    buys = rng.random(2000) < 1 - np.exp(-expected / 30)
    actual = pd.DataFrame({"revenue": np.where(buys, rng.gamma(4.0, expected / 4 + 1), 0.0), "purchases": buys * 1.0})
    risk = np.exp(-expected / 30)
    good = pd.DataFrame({"expected_revenue": expected * actual["revenue"].sum() / expected.sum(), "churn_risk": risk})
    noisy = expected * rng.lognormal(0, 1.5, 2000)
    poor = pd.DataFrame(
        {"expected_revenue": noisy * actual["revenue"].sum() / noisy.sum(), "churn_risk": np.clip(risk + 0.2, 0, 1)}
    )
    champion, challenger = (poor, good) if good_wins else (good, poor)
    result = contest(actual, champion, challenger, {"flat": np.ones(2000)}, np.random.default_rng(17))
    predictions = pd.DataFrame(
        {
            "actual": actual["revenue"],
            "btyd": champion["expected_revenue"],
            "challenger": challenger["expected_revenue"] * 1.1,
            "blend": challenger["expected_revenue"],
        }
    )
    return ChallengerContest(
        True, result.reason, 181, dt.date(1997, 7, 3), 0.5, result, 0.93, 23_570, None, IMPORTANCE, predictions
    )


def test_the_table_has_every_metric_with_its_interval() -> None:
    won = synthetic()
    r = won.result
    assert r is not None
    table = won.table().set_index("predictor")
    assert list(table.index) == ["BTYD (champion)", "blend, challenger weight 0.5", "baseline: flat"]
    blend = table.loc["blend, challenger weight 0.5"]
    for point, short in (
        ("normalised Gini", "Gini"),
        ("top 10% share", "top 10%"),
        ("top 20% share", "top 20%"),
        ("MAE", "MAE"),
        ("churn AUC", "AUC"),
    ):
        assert blend[f"{short} 95% low"] <= blend[point] <= blend[f"{short} 95% high"], point
    assert blend["top 20% 95% low"] == r.intervals["top20_share"]["challenger"][0]
    assert blend["AUC 95% high"] == r.intervals["churn_auc"]["challenger"][1]
    assert table.loc["baseline: flat", "MAE"] == pytest.approx(r.baseline_mae["baseline_flat"], abs=0)
    assert np.isnan(cast(float, table.loc["baseline: flat", "churn AUC"]))  # pandas types a cell as any scalar
    assert r.top20_share["challenger"] >= r.top10_share["challenger"]


def _bars(ax: Axes) -> list[Rectangle]:
    """A bar chart's bars (matplotlib types an axes' patches as any patch)."""
    bars = []
    for patch in ax.patches:
        assert isinstance(patch, Rectangle)
        bars.append(patch)
    return bars


def test_the_noise_sentence_says_where_each_margin_lies() -> None:
    won = synthetic()
    r = won.result
    assert r is not None
    assert won.noise() == (
        f"The blend's Gini gain over BTYD {r.gini_gain:+.4f} (95% interval [{r.gini_gain_interval[0]:+.4f}, "
        f"{r.gini_gain_interval[1]:+.4f}]) is above the noise; the winner's (the blend) Gini margin over the best "
        f"baseline (flat) {r.winner_margin:+.4f} (95% interval [{r.winner_margin_interval[0]:+.4f}, "
        f"{r.winner_margin_interval[1]:+.4f}]) is above the noise"
    )
    lost = synthetic(good_wins=False)
    assert lost.result is not None
    assert not lost.blend_wins
    assert "is below zero beyond the noise; the winner's (BTYD) Gini margin" in lost.noise()
    assert beyond((-0.01, 0.02)) == "inside the noise"
    assert [line.strip()[:23] for line in lost.lines()[2:4]] == ["95% intervals (1000 pai", "The blend's Gini gain o"]


def test_the_figures_show_the_deciles_and_the_importances() -> None:
    won = synthetic()
    figures = contest_figures(won)
    assert list(figures) == ["contest_deciles", "challenger_importance"]
    deciles = won.deciles()
    assert predictions_deciles_match(won, deciles)
    panels = figures["contest_deciles"].axes
    assert [ax.get_title() for ax in panels] == ["BTYD", "challenger (rescaled)", "blend"]
    for ax, name in zip(panels, ["btyd", "challenger", "blend"], strict=True):
        rows = deciles[deciles["contender"] == name]
        np.testing.assert_allclose([p.get_height() for p in _bars(ax)], rows["mean_actual"], rtol=1e-12)
        predicted = np.asarray(ax.get_lines()[0].get_ydata(), dtype=np.float64)
        np.testing.assert_allclose(predicted, rows["mean_predicted"], rtol=1e-12)
    bars = _bars(figures["challenger_importance"].axes[0])
    assert [b.get_width() for b in bars] == [0.0, 0.01, 0.03]  # least important at the bottom
    assert contest_figures(ChallengerContest(False, "too short", 181, None, 0.5)) == {}


def predictions_deciles_match(won: ChallengerContest, deciles: pd.DataFrame) -> bool:
    p = won.predictions
    assert p is not None
    expected = decile_table(p["actual"].to_numpy(), {k: p[k].to_numpy() for k in ("btyd", "challenger", "blend")})
    pd.testing.assert_frame_equal(deciles, expected)
    return bool(deciles.groupby("contender")["customers"].sum().eq(2000).all())


def _report(contest: ChallengerContest) -> str:
    return render_report(
        title="CLV",
        run_id="abc",
        data_description="test.csv",
        ledger={"rows_in": 10},
        parameters={"r": 0.24},
        validation=validate(MODEL, CALIBRATION, period_length=1 / 7),
        gate=GateResult((Check("churn_auc_higher_than_0.7", "churn_auc", 0.8, 0.7, "higher", True),)),
        figures={},
        contest=contest,
    )


def test_the_report_shows_intervals_noise_importance_and_deciles() -> None:
    won = synthetic()
    text = _report(won)
    assert "<th>top 20% 95% low</th>" in text
    assert "<b>Inside the noise?</b> The blend&#39;s Gini gain over BTYD" in text
    assert "<td>recency_ratio</td><td class='num'>0.03</td>" in text
    assert "3 shuffles per feature on 5,000 customers" in text
    assert "alt='contest_deciles'" in text
    assert "alt='challenger_importance'" in text
    # Fewer training customers than the importance sample: the report gives the number actually used.
    assert "3 shuffles per feature on 1,200 customers" in _report(dataclasses.replace(won, training_customers=1_200))
    ineligible = _report(ChallengerContest(False, "too short", 181, None, 0.5))
    assert "The machine-learning challenger is ineligible, so BTYD stands: too short" in ineligible
    assert "alt='contest_deciles'" not in ineligible


def test_a_lost_contest_is_described_once_and_consistently() -> None:
    lost = synthetic(good_wins=False)
    assert lost.result is not None
    assert lost.result.gini_gain_interval[1] < 0
    text = _report(lost)
    # The gain's interval lies below zero: no sentence may call it "inside the noise" (a two-way sentence did).
    assert "inside the noise" not in text
    pattern = r"Gini gain over BTYD -0\.2592 \(95% interval \[-0\.2912, -0\.2248\]\) is below zero beyond the noise"
    assert len(re.findall(pattern, text)) == 1
