"""The contest stage: the time shift never reads past the calibration end, the ineligible paths, a pure BG/NBD
feed (the challenger alone keeps BTYD; the blend wins by a small margin), and CDNOW's contest through
``clv train``'s job with every number recorded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.challenger_features import features, labels
from pipeline import business
from pipeline.commands.train import run_training
from pipeline.config import ChallengerConfig, Config, load_config
from pipeline.contest import ChallengerContest, horizon_days, run_contest, training_cutoff
from pipeline.engines import open_engine
from pipeline.summary import summary_dict, summary_text
from pipeline.workflow import TrainResult, train
from tests.conftest import REPO
from tests.models.test_challenger import simulate_bgnbd

CALIBRATION_END = dt.date(2000, 9, 30)
OBSERVATION_END = dt.date(2001, 3, 30)  # H = 181 days; the cutoff is 2000-04-02


def _csv(transactions: pd.DataFrame, path: Path) -> Path:
    transactions.assign(timestamp=transactions["date"].dt.strftime("%Y-%m-%d %H:%M:%S"))[
        ["customer_id", "timestamp", "amount"]
    ].to_csv(path, index=False)
    return path


def _config(path: Path, calibration_end: dt.date, observation_end: dt.date, **challenger: object) -> Config:
    return Config.model_validate(
        {
            "data": {"source": "csv", "path": str(path)},
            "prepare": {"calibration_end": calibration_end, "observation_end": observation_end},
            "challenger": {"enabled": True, "bootstrap_draws": 200, **challenger},
        }
    )


def _train(config: Config) -> TrainResult:
    engine = open_engine(config.engine)
    try:
        return train(config, engine, engine.open(config.resolved().data))
    finally:
        engine.close()


@pytest.fixture(scope="module")
def feed() -> pd.DataFrame:
    """3,000 customers of a pure BG/NBD x Gamma-Gamma world, 2000-01-01..2001-06-29, with times of day."""
    tx = simulate_bgnbd(3_000, seed=3)
    hours = np.random.default_rng(0).integers(0, 24 * 3600, len(tx))
    return tx.assign(
        date=tx["date"] + pd.to_timedelta(hours, unit="s"), customer_id=tx["customer_id"].map("c{:05d}".format)
    )


def _altered_after(tx: pd.DataFrame, end: dt.date) -> pd.DataFrame:
    """Everything after ``end`` changed: amounts x 10, dates moved, rows dropped, a new customer's rows added."""
    later = tx["date"] >= pd.Timestamp(end) + pd.Timedelta(days=1)
    changed = (
        tx[later].iloc[::2].assign(amount=lambda f: f["amount"] * 10, date=lambda f: f["date"] + pd.Timedelta(days=3))
    )
    extra = pd.DataFrame(
        {
            "customer_id": ["zz"] * 3,
            "date": pd.to_datetime(["2001-01-05", "2001-02-01", "2001-03-01"]),
            "amount": [1e4] * 3,
        }
    )
    return pd.concat([tx[~later], changed, extra], ignore_index=True)


def test_the_engines_activity_and_the_time_shift_never_read_past_the_calibration_end(
    feed: pd.DataFrame, tmp_path: Path
) -> None:
    """What the challenger is trained and scored on is the same whatever happens after the calibration end."""
    config = _config(_csv(feed, tmp_path / "a.csv"), CALIBRATION_END, OBSERVATION_END)
    other = _config(_csv(_altered_after(feed, CALIBRATION_END), tmp_path / "b.csv"), CALIBRATION_END, OBSERVATION_END)
    tables = []
    for chosen in (config, other):
        engine = open_engine(chosen.engine)
        tables.append(engine.activity(engine.open(chosen.data), chosen.prepare, CALIBRATION_END))
        engine.close()
    first, second = tables
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert first["date"].max() == pd.Timestamp("2000-09-30")
    # The engine's table matches the transactions merged per customer and day (times of day dropped).
    days = feed.assign(day=feed["date"].dt.normalize())
    expected = days[days["day"] <= pd.Timestamp(CALIBRATION_END)].groupby(["customer_id", "day"])["amount"].sum()
    assert len(first) == len(expected) == 6_089
    assert first["revenue"].to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-4)
    assert (first["purchases"] == 1).all()

    horizon = horizon_days(26, "week")
    cutoff = training_cutoff(CALIBRATION_END, horizon)
    assert (horizon, cutoff) == (182, dt.date(2000, 4, 1))
    full = pd.concat(
        [
            first,
            pd.DataFrame(
                {"customer_id": ["c00000"], "date": [pd.Timestamp("2000-12-01")], "purchases": [1], "revenue": [1e6]}
            ),
        ]
    )
    pd.testing.assert_frame_equal(features(first, cutoff), features(full, cutoff), check_exact=True)
    pd.testing.assert_frame_equal(labels(first, cutoff, horizon), labels(full, cutoff, horizon), check_exact=True)
    # amounts are read to 4 decimals: at most 5e-5 off per row
    assert labels(first, cutoff, horizon)["revenue"].sum() == pytest.approx(
        expected[expected.index.get_level_values("day") > pd.Timestamp(cutoff)].sum(), abs=0.01
    )


def test_the_contest_is_unchanged_when_the_data_after_the_calibration_end_changes(
    feed: pd.DataFrame, tmp_path: Path
) -> None:
    config = _config(_csv(feed, tmp_path / "a.csv"), CALIBRATION_END, OBSERVATION_END)
    result = _train(config)
    contest = result.contest
    assert contest is not None
    assert contest.eligible
    assert contest.result is not None
    assert contest.training_cutoff == dt.date(2000, 4, 2)
    assert contest.horizon_days == 181
    engine = open_engine(config.engine)
    whole = engine.activity(engine.open(config.data), config.prepare, OBSERVATION_END)
    engine.close()
    altered = whole.assign(revenue=np.where(whole["date"] > pd.Timestamp(CALIBRATION_END), 0.0, whole["revenue"]))
    again = run_contest(
        config.challenger, altered, result.validation.holdout, CALIBRATION_END, dt.date(2000, 1, 1), 181
    )
    assert again.metrics() == contest.metrics()  # every bootstrap interval too: the same seed, the same draws
    assert again.reason == contest.reason
    assert contest.importance is not None
    assert again.importance is not None
    pd.testing.assert_frame_equal(again.importance, contest.importance, check_exact=True)
    assert contest.predictions is not None
    assert again.predictions is not None
    pd.testing.assert_frame_equal(again.predictions, contest.predictions, check_exact=True)


def test_too_short_a_history_makes_the_challenger_ineligible_and_btyd_stands(
    feed: pd.DataFrame, tmp_path: Path
) -> None:
    # Calibration to 2000-05-31, holdout to 2001-03-30: H = 303 days, the cutoff 1999-08-02 is before the data.
    config = _config(_csv(feed, tmp_path / "a.csv"), dt.date(2000, 5, 31), OBSERVATION_END)
    result = _train(config)
    contest = result.contest
    assert contest is not None
    assert not contest.eligible
    assert contest.result is None
    assert contest.reason == (
        "the data starts 2000-01-01, after the training cutoff 1999-08-02 (calibration end - 303 days): "
        "too short for a full label window"
    )
    assert contest.metrics() == {"contest_eligible": 0.0, "contest_horizon_days": 303.0}
    assert result.scores is None or "value_model" not in result.scores.columns  # BTYD's scores, when any
    assert "  contest     challenger ineligible, BTYD stands: the data starts 2000-01-01" in summary_text(result)
    assert summary_dict(result)["contest"]["eligible"] is False


def test_a_challenger_error_makes_the_challenger_ineligible() -> None:
    """Nobody buys in the label window: the classifier has one class (ChallengerError), BTYD stands."""
    activity = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(50)],
            "date": pd.Timestamp("2000-01-10"),
            "purchases": 1,
            "revenue": 10.0,
        }
    )
    holdout = pd.DataFrame(
        {
            "customer_id": activity["customer_id"],
            "expected_revenue": 1.0,
            "churn_risk": 0.5,
            "actual_revenue": 0.0,
            "actual_purchases": 0.0,
        }
    )
    contest = run_contest(
        ChallengerConfig(enabled=True), activity, holdout, dt.date(2000, 9, 30), dt.date(2000, 1, 10), 100
    )
    assert not contest.eligible
    assert contest.result is None
    assert contest.reason == "the label window needs at least 2 buyers and 2 non-buyers; 0 of 50 customers bought"


@pytest.mark.slow
def test_a_pure_bgnbd_feed_keeps_btyd_against_the_challenger_alone_and_the_blend(tmp_path: Path) -> None:
    """Where BG/NBD x Gamma-Gamma hold exactly (10,000 customers, seed 5; calibration to 2000-12-30, H = 182 days).

    Measured 2026-12-05, with the challenger's training rows in an order of their content: BTYD stands against
    the challenger alone (MAE and churn-AUC guard-rails fail) and against the half blend, which ranks better
    (Gini 0.7597 vs 0.7437, gain +0.0161 [+0.0060, +0.0279]) but fails the churn-AUC guard-rail (0.7638 against
    0.7672). The issue allows either here ("keeps BTYD (or a blend)"); with the rows in id order (2026-12-02) the
    blend had won, by a churn AUC of 0.7674 against 0.7672. The blend ranks better, a likely reason not verified:
    the Gamma-Gamma sub-model reads repeat purchases only, and the challenger also reads the first purchase's
    spend, which carries information about the customer's spend in this world.
    """
    path = _csv(simulate_bgnbd(10_000, seed=5), tmp_path / "pure.csv")
    config = _config(path, dt.date(2000, 12, 30), dt.date(2001, 6, 30), bootstrap_draws=1000)
    result = _train(config)
    contest = result.contest
    assert contest is not None
    assert contest.result is not None
    r = contest.result
    assert contest.horizon_days == 182
    assert not contest.blend_wins
    assert contest.reason == "champion keeps: churn AUC 0.7638 < champion's 0.7672"
    assert r.guard_rails == {"mae": True, "total": True, "churn_auc": False}
    assert r.gini["champion"] == pytest.approx(0.7437, abs=1e-3)
    assert r.gini["challenger"] == pytest.approx(0.7597, abs=1e-3)
    assert r.gini_gain_interval == pytest.approx((0.0060, 0.0279), abs=2e-3)
    assert r.churn_auc["challenger"] == pytest.approx(0.7638, abs=1e-3)
    assert r.churn_auc["champion"] == pytest.approx(0.7672, abs=1e-3)
    assert r.mae == pytest.approx({"champion": 16.64, "challenger": 17.08}, rel=5e-3)

    engine = open_engine(config.engine)
    activity = engine.activity(engine.open(config.data), config.prepare, dt.date(2000, 12, 30))
    engine.close()
    alone = run_contest(
        config.challenger.model_copy(update={"weight": 1.0}),
        activity,
        result.validation.holdout,
        dt.date(2000, 12, 30),
        result.prepared.first_date,
        182,
    )
    assert alone.result is not None
    assert not alone.blend_wins
    assert alone.reason == (
        "champion keeps: MAE 17.72 > 1.05 x champion's 16.64; churn AUC 0.7539 < champion's 0.7672; Gini gain +0.0086 "
        "not above the noise: 95% interval [-0.0038, +0.0225] includes 0 or lies below it"
    )
    assert alone.result.guard_rails == {"mae": False, "total": True, "churn_auc": False}


@pytest.mark.slow
def test_cdnow_contest_is_won_by_the_blend_and_recorded(tracking_store: str, tmp_path: Path) -> None:
    """configs/cdnow-challenger.yaml through ``clv train``'s job. Measured 2026-12-05 (the challenger's training rows
    in an order of their content): BTYD Gini 0.7259, MAE 21.141, churn AUC 0.7882; blend Gini 0.7591, MAE 21.771,
    AUC 0.8044 (2026-12-02, rows in id order: 0.7573, 21.718, 0.8029); tolerance 0.005 on Gini and AUC, 2% on MAE,
    0.002 on the bootstrap bounds."""
    path = REPO / "configs" / "cdnow-challenger.yaml"
    result = run_training(load_config(path), path.read_text(encoding="utf-8"), tmp_path / "out")
    contest = result.contest
    assert contest is not None
    assert contest.result is not None
    r = contest.result
    assert contest.blend_wins, contest.reason
    assert contest.training_cutoff == dt.date(1997, 7, 3)
    assert contest.horizon_days == 181
    assert r.gini["champion"] == pytest.approx(0.7259, abs=5e-4)
    assert r.mae["champion"] == pytest.approx(21.141, rel=1e-3)
    assert r.churn_auc["champion"] == pytest.approx(0.7882, abs=5e-4)
    assert r.gini["challenger"] == pytest.approx(0.7591, abs=0.005)
    assert r.mae["challenger"] == pytest.approx(21.77, rel=0.02)
    assert r.churn_auc["challenger"] == pytest.approx(0.8044, abs=0.005)
    assert r.gini_gain_interval == pytest.approx((0.0250, 0.0426), abs=0.002)
    assert r.total_ratio["challenger"] == pytest.approx(r.total_ratio["champion"], rel=1e-9)
    assert r.best_baseline == "baseline_historical_clv"  # ties with spend_rate at 0.7369 on CDNOW
    assert r.gini["baseline_spend_rate"] == pytest.approx(0.7369, abs=1e-4)
    # The bar: Gini >= 0.755 with its interval above the best baseline, AUC >= 0.80, MAE <= 22.2, total +/-10%.
    assert r.gini["challenger"] >= 0.755
    assert r.gini_interval["challenger"][0] > r.gini[r.best_baseline]
    assert r.churn_auc["challenger"] >= 0.80
    assert r.mae["challenger"] <= 22.2
    assert abs(r.total_ratio["challenger"] - 1) <= 0.10
    _assert_cdnow_intervals_and_explanations(contest)

    # The batch scores of --output carry the blend over H, rescaled to the production BTYD total.
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert len(scores) == 23_570
    assert (scores["value_model"] == "blend").all()
    btyd, blend = scores["btyd_expected_revenue_181d"], scores["expected_revenue_181d"]
    assert scores["challenger_expected_revenue_181d"].sum() == pytest.approx(btyd.sum(), rel=1e-9)
    assert blend.sum() == pytest.approx(btyd.sum(), rel=1e-9)
    assert not np.allclose(blend, btyd)
    assert scores["churn_risk_181d"].between(0, 1).all()
    # clv and churn_risk are the winner's (models.blend.winner_value), BTYD's are kept, the business tables follow.
    ratio = np.where(btyd > 0, blend / np.where(btyd > 0, btyd, 1.0), 1.0)
    np.testing.assert_allclose(scores["clv"], scores["btyd_clv"] * ratio, rtol=1e-12)
    np.testing.assert_array_equal(scores["churn_risk"], scores["churn_risk_181d"])
    assert not np.allclose(scores["clv"], scores["btyd_clv"])
    assert not np.allclose(scores["churn_risk"], scores["btyd_churn_risk"])
    # One ranking: the value segment of the scores is the segment table's, both on the winner's clv.
    assert scores["value_segment"].tolist() == business.value_segment(scores).tolist()
    assert scores["value_segment"].tolist() != business.value_segment(scores.assign(clv=scores["btyd_clv"])).tolist()
    (segments,) = (view.frame for view in result.business if view.title == "Value segments")
    by_segment = segments.set_index("value_segment")["customers"]
    assert by_segment.to_dict() == scores["value_segment"].value_counts().to_dict()
    at_risk, by_id = result.tables["at_risk_valuable"], scores.set_index("customer_id")
    print(f"at risk and valuable on the winner's clv and churn risk: {len(at_risk)} customers")
    assert len(at_risk) > 0
    assert (at_risk["churn_risk"] >= result.config.business.at_risk_churn_risk).all()
    np.testing.assert_array_equal(at_risk["churn_risk"], by_id.loc[at_risk["customer_id"], "churn_risk_181d"])
    np.testing.assert_array_equal(at_risk["clv"], by_id.loc[at_risk["customer_id"], "clv"])

    # Every number in the run, the decision and the reason as tags; the registered model serves the blend
    # (tests/pipeline/test_blend_serving.py checks its numbers through pyfunc, `clv score`, REST and Spark).
    client = MlflowClient(tracking_store, registry_uri=tracking_store)  # not the process-wide URIs of earlier tests
    run = client.get_run(result.run_id)
    assert run.data.metrics["contest_gini_challenger"] == pytest.approx(r.gini["challenger"], rel=1e-12)
    assert run.data.metrics["contest_gini_gain_lower"] == pytest.approx(r.gini_gain_interval[0], rel=1e-12)
    assert run.data.metrics["contest_challenger_wins"] == 1.0
    assert run.data.tags["contest.decision"] == "blend"
    assert run.data.tags["contest.reason"] == contest.reason
    assert run.data.tags["challenger.registered"] == "true"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}' and tags.`contest.role` != ''"
    )
    ginis = {c.data.tags["candidate"]: c.data.metrics["contest_gini"] for c in children}
    assert ginis == pytest.approx({"btyd": r.gini["champion"], "blend": r.gini["challenger"]}, rel=1e-12)
    assert run.data.metrics["contest_top20_share_lower_challenger"] == pytest.approx(
        r.intervals["top20_share"]["challenger"][0], rel=1e-12
    )
    assert run.data.metrics["contest_churn_auc_upper_champion"] == pytest.approx(
        r.intervals["churn_auc"]["champion"][1], rel=1e-12
    )
    assert run.data.metrics["contest_winner_margin_lower"] == pytest.approx(r.winner_margin_interval[0], rel=1e-12)
    importance = pd.read_csv(
        client.download_artifacts(result.run_id, "tables/challenger_importance.csv", str(tmp_path))
    )
    assert contest.importance is not None
    pd.testing.assert_frame_equal(importance, contest.importance, rtol=1e-12)
    deciles = pd.read_csv(client.download_artifacts(result.run_id, "tables/contest_deciles.csv", str(tmp_path)))
    assert len(deciles) == 30
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/contest_deciles.png", "plots/challenger_importance.png"} <= artifacts
    report = Path(client.download_artifacts(result.run_id, "report.html", str(tmp_path))).read_text(encoding="utf-8")
    assert "Champion/challenger contest" in report
    assert (
        "The blend&#39;s Gini gain over BTYD +0.0332 (95% interval [+0.0250, +0.0426]) is above the noise; the "
        "winner&#39;s (the blend) Gini margin over the best baseline (historical_clv) +0.0222 (95% interval "
        "[+0.0156, +0.0299]) is above the noise" in report
    )
    assert "<td>recency_ratio</td>" in report
    assert "alt='contest_deciles'" in report
    assert "alt='challenger_importance'" in report
    assert "The blend wins: challenger wins: Gini 0.75" in report
    assert "the registered model serves the same blend." in report
    text = summary_text(result)
    assert "  contest     blend wins: challenger wins: Gini 0.75" in text
    assert "95% intervals (1000 paired bootstrap draws): Gini BTYD [0.7049, 0.7457], blend [0.7" in text
    assert "the registered model serves the blend (value_model = blend)" in text
    assert summary_dict(result)["contest"]["registered"] == "blend"


def _assert_cdnow_intervals_and_explanations(contest: ChallengerContest) -> None:
    """Measured 2026-12-02 with the seed 17 and 1000 draws: intervals of BTYD and the best baseline to 0.002
    (BTYD is deterministic), of the blend to 0.005 (as its Gini); the challenger's top features (measured again
    2026-12-05 with its training rows in an order of their content: mean_spend third, spend_26w fourth)."""
    r = contest.result
    assert r is not None
    for metric, by in r.intervals.items():
        points = {"gini": r.gini, "top10_share": r.top10_share, "top20_share": r.top20_share}.get(metric)
        points = points or {"mae": r.mae | r.baseline_mae, "churn_auc": r.churn_auc}[metric]
        for who, (low, high) in by.items():
            assert low <= points[who] <= high, (metric, who)
    i = r.intervals
    assert i["gini"]["champion"] == pytest.approx((0.7049, 0.7457), abs=0.002)
    assert i["gini"]["baseline_historical_clv"] == pytest.approx((0.7180, 0.7536), abs=0.002)
    assert i["gini"]["challenger"] == pytest.approx((0.7405, 0.7756), abs=0.005)
    assert i["top10_share"]["champion"] == pytest.approx((0.5421, 0.5884), abs=0.002)
    assert i["top10_share"]["challenger"] == pytest.approx((0.5493, 0.5936), abs=0.005)
    assert i["top20_share"]["champion"] == pytest.approx((0.7062, 0.7428), abs=0.002)
    assert i["top20_share"]["challenger"] == pytest.approx((0.7111, 0.7471), abs=0.005)
    assert i["mae"]["champion"] == pytest.approx((20.52, 21.81), abs=0.02)
    assert i["mae"]["challenger"] == pytest.approx((21.13, 22.47), rel=0.02)
    assert i["churn_auc"]["champion"] == pytest.approx((0.7804, 0.7952), abs=0.002)
    assert i["churn_auc"]["challenger"] == pytest.approx((0.7970, 0.8116), abs=0.005)
    # The top-10% share gain is inside the noise (the intervals overlap); the Gini margins are not.
    assert i["top10_share"]["challenger"][0] < r.top10_share["champion"]
    assert r.winner_margin == pytest.approx(r.gini["challenger"] - r.gini["baseline_historical_clv"], abs=0)
    assert r.winner_margin_interval == pytest.approx((0.0156, 0.0299), abs=0.005)
    assert contest.noise().endswith("is above the noise")
    assert contest.importance is not None
    assert contest.importance["feature"].head(4).tolist() == [
        "recency_ratio",
        "spend_per_week",
        "mean_spend",
        "spend_26w",
    ]
    assert contest.importance["gini_drop"].iloc[0] == pytest.approx(0.0207, abs=0.005)
    deciles = contest.deciles()
    assert deciles.groupby("contender")["customers"].sum().tolist() == [23_570] * 3
    first = deciles[deciles["decile"] == 1].set_index("contender")["mean_actual"]
    assert first["btyd"] == pytest.approx(114.42, rel=1e-3)
    assert first["blend"] == pytest.approx(115.53, rel=0.02)


def test_a_holdout_without_revenue_makes_the_challenger_ineligible(feed: pd.DataFrame) -> None:
    activity = feed.assign(date=feed["date"].dt.normalize(), purchases=1, revenue=feed["amount"]).drop_duplicates(
        ["customer_id", "date"]
    )
    customers = features(activity, CALIBRATION_END).index
    holdout = pd.DataFrame(
        {
            "customer_id": customers,
            "expected_revenue": 1.0,
            "churn_risk": 0.5,
            "actual_revenue": 0.0,
            "actual_purchases": 0.0,
            **{
                f"baseline_{b}_revenue": 1.0
                for b in ("historical_clv", "spend_rate", "repeat_spend_rate", "last_period")
            },
        }
    )
    contest = run_contest(ChallengerConfig(enabled=True), activity, holdout, CALIBRATION_END, dt.date(2000, 1, 1), 181)
    assert not contest.eligible
    assert contest.reason == "the holdout has no revenue: no contest"
