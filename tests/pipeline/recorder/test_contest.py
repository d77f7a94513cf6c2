"""What the contest records in a real SQLite MLflow store: metrics, decision and reason tags, one child run per
contender, and the honest ``challenger.registered`` tag when the blend wins (``true`` once the registered model
serves it: tests/pipeline/test_contest.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.challenger_contest import contest
from pipeline.config import ChallengerConfig
from pipeline.contest import ChallengerContest, ineligible
from pipeline.recorder import store
from pipeline.recorder.contest import record_contest


def _won() -> ChallengerContest:
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
    result = contest(actual, poor, good, {"flat": np.ones(2000)}, np.random.default_rng(17))
    assert result.challenger_wins
    return ChallengerContest(True, result.reason, 181, dt.date(1997, 7, 3), 0.5, result, 0.93, 23_570)


def test_a_won_contest_is_recorded_with_every_number(tracking_store: str) -> None:
    won = _won()
    assert won.result is not None
    with store.run(store.connect("contest-test")) as run_id:
        record_contest(won)
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.metrics == pytest.approx(won.metrics(), rel=1e-12)
    assert run.data.metrics["contest_revenue_scale"] == pytest.approx(0.93)
    assert run.data.tags["contest.decision"] == "blend"
    assert run.data.tags["contest.reason"] == won.reason
    # At contest time: the blend is registered (the tag then says true) only once built at observation end.
    assert (
        run.data.tags["challenger.registered"]
        == "false (the blend is built at observation end and registered only if the gate passes)"
    )
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    by_name = {c.data.tags["candidate"]: c.data.metrics for c in children}
    assert sorted(by_name) == ["blend", "btyd"]
    assert by_name["blend"]["contest_gini"] == pytest.approx(won.result.gini["challenger"], rel=1e-12)
    assert by_name["btyd"]["contest_mae"] == pytest.approx(won.result.mae["champion"], rel=1e-12)
    assert set(by_name["blend"]) == set(by_name["btyd"])
    summary = client.download_artifacts(run_id, "contest.json")
    assert (
        '"registered": "btyd (the blend is built at observation end and registered only if the gate passes)"'
        in Path(summary).read_text(encoding="utf-8")
    )


def test_an_ineligible_challenger_is_recorded_as_such(tracking_store: str) -> None:
    too_short = ineligible(
        ChallengerConfig(enabled=True), 303, dt.date(1999, 8, 2), "too short for a full label window"
    )
    with store.run(store.connect("contest-test")) as run_id:
        record_contest(too_short)
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.metrics == {"contest_eligible": 0.0, "contest_horizon_days": 303.0}
    assert run.data.tags["contest.decision"] == "ineligible"
    assert run.data.tags["contest.reason"] == "too short for a full label window"
    assert "challenger.registered" not in run.data.tags
    assert client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'") == []


def test_the_explanations_are_logged_as_tables_and_plots(tracking_store: str, tmp_path: Path) -> None:
    from tests.pipeline.test_contest_report import IMPORTANCE, synthetic

    won = synthetic()
    with store.run(store.connect("contest-test")) as run_id:
        record_contest(won)
    client = MlflowClient()
    importance = pd.read_csv(client.download_artifacts(run_id, "tables/challenger_importance.csv", str(tmp_path)))
    pd.testing.assert_frame_equal(importance, IMPORTANCE)
    deciles = pd.read_csv(client.download_artifacts(run_id, "tables/contest_deciles.csv", str(tmp_path)))
    pd.testing.assert_frame_equal(deciles, won.deciles())
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {
        "plots/contest_deciles.png",
        "plots/challenger_importance.png",
    }
    children = client.search_runs([client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    blend = {c.data.tags["candidate"]: c.data.metrics for c in children}["blend"]
    assert won.result is not None
    assert blend["contest_top20_share_lower"] == pytest.approx(won.result.intervals["top20_share"]["challenger"][0])
    assert blend["contest_churn_auc_upper"] == pytest.approx(won.result.intervals["churn_auc"]["challenger"][1])
