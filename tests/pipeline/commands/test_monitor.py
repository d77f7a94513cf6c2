"""``clv monitor`` end to end: a champion trained on the CDNOW 1/10 sample up to 1997-12-31, judged on the
sample's next six months (real processes, a real SQLite store); the same feed with spend x 1.5 after the
model's data ended; the feed without new data; bad thresholds."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipeline.commands.monitor import load_monitor_config
from pipeline.errors import ConfigError
from tests.conftest import clean_env, clv_command

T0 = "1997-12-31"


@dataclass(frozen=True)
class Store:
    folder: Path
    uri: str
    feed: pd.DataFrame

    def clv(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = clean_env() | {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
        return subprocess.run(
            [str(clv_command()), *args], cwd=self.folder, env=env, capture_output=True, text=True, timeout=600
        )

    def write(self, name: str, frame: pd.DataFrame) -> str:
        frame.to_csv(self.folder / name, index=False)
        return name


@pytest.fixture(scope="module")
def early(tmp_path_factory: pytest.TempPathFactory, cdnow_sample: pd.DataFrame) -> Store:
    """A champion whose data ends on 1997-12-31 (calibration to 1997-06-30, a 26-week holdout)."""
    folder = tmp_path_factory.mktemp("monitor")
    (folder / "early.yaml").write_text(
        f"data: {{source: cdnow_sample}}\nprepare: {{calibration_end: 1997-06-30, observation_end: {T0}}}\n"
    )
    feed = cdnow_sample.assign(timestamp=cdnow_sample["date"].dt.strftime("%Y-%m-%d"))[
        ["customer_id", "timestamp", "amount"]
    ]
    store = Store(folder, f"sqlite:///{folder / 'mlflow.db'}", feed)
    done = store.clv("train", "--config", "early.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    return store


@pytest.mark.slow
def test_cdnow_stays_healthy_and_is_recorded(early: Store) -> None:
    done = early.clv("monitor", "--input", early.write("feed.csv", early.feed), "--summary", "ok.json")
    assert done.returncode == 0, done.stderr
    assert "clv monitor: OK: models:/clv@champion (version 1): 6 period(s) of 28 days since 1997-12-31" in done.stdout
    summary = json.loads((early.folder / "ok.json").read_text())
    assert summary["verdict"] == "ok"
    assert summary["observation_end"] == T0
    periods = summary["periods"]
    assert [p["end"] for p in periods] == [
        "1998-01-28", "1998-02-25", "1998-03-25", "1998-04-22", "1998-05-20", "1998-06-17"
    ]  # fmt: skip
    purchases = [p["metrics"]["purchases"] for p in periods]
    assert purchases == pytest.approx([11.3, 9.7, -7.3, -4.4, -0.9, -1.0], abs=0.15)
    assert all(all(c["passed"] for c in p["checks"]) for p in periods)
    assert periods[-1]["metrics"]["customers_known"] == 2357
    assert periods[-1]["metrics"]["new_customers"] == 0.0

    from mlflow.tracking import MlflowClient

    client = MlflowClient(early.uri, registry_uri=early.uri)
    experiment = client.get_experiment_by_name("clv-monitor")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.run_type = 'monitor'")
    assert run.info.run_id == summary["run_id"]
    assert run.data.tags["model.version"] == "1"
    assert run.data.tags["model.run_id"] == client.get_model_version("clv", "1").run_id
    assert run.data.tags["monitor.verdict"] == "ok"
    history = client.get_metric_history(run.info.run_id, "monitor_purchases")
    assert [m.step for m in history] == [1, 2, 3, 4, 5, 6]
    assert [m.value for m in history] == pytest.approx(purchases, rel=1e-12)
    plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/monitor_checks.png", "plots/monitor_tracking.png"}


@pytest.mark.slow
def test_shifted_spend_asks_for_a_retrain(early: Store) -> None:
    feed = early.feed.copy()
    after = feed["timestamp"] > T0
    feed.loc[after, "amount"] = feed.loc[after, "amount"] * 1.5
    done = early.clv("monitor", "--input", early.write("spend.csv", feed), "--summary", "stale.json")
    assert done.returncode == 4, done.stderr
    assert "clv monitor: STALE, retrain due" in done.stdout
    summary = json.loads((early.folder / "stale.json").read_text())
    assert "spend" in summary["failing"]
    assert set(summary["failing"]) <= {"spend", "psi_order_value"}
    assert summary["stale_from_period"] == 2
    spend = [p["metrics"]["spend"] for p in summary["periods"]]
    # the model expects 1/1.5 of what is spent now: (1 + e) / 1.5 - 1 of the healthy run's error e
    healthy = [-1.5, -5.2, -4.3, -4.8, -3.8, -3.2]
    assert spend == pytest.approx([100 * ((1 + e / 100) / 1.5 - 1) for e in healthy], abs=0.2)
    for period in summary["periods"]:
        failed = {c["name"] for c in period["checks"] if not c["passed"]}
        assert failed <= {"spend", "psi_order_value"}


@pytest.mark.slow
def test_one_failing_period_of_the_two_needed_is_a_warning(early: Store) -> None:
    """Judged to 1998-01-28, one period: spend and psi_order_value failed in it; no retrain is due (that takes 2
    periods in a row), and the line says what failed instead of "no check failed in the last 2 period(s)"."""
    feed = early.feed.copy()
    after = feed["timestamp"] > T0
    feed.loc[after, "amount"] = feed.loc[after, "amount"] * 1.5
    spend = early.write("spend-one.csv", feed)
    done = early.clv("monitor", "--input", spend, "--as-of", "1998-01-28", "--summary", "one.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(
        "clv monitor: WARNING, no retrain due: models:/clv@champion (version 1): 1 period(s) of 28 days since "
        f"{T0}; psi_order_value, spend failed in period(s) 1 (a retrain is due when the same check fails in each "
        "of the last 2 period(s)); run "
    )
    summary = json.loads((early.folder / "one.json").read_text())
    failed = [c["name"] for c in summary["periods"][0]["checks"] if not c["passed"]]
    assert failed == ["spend", "psi_order_value"]
    assert (summary["verdict"], summary["failed_recently"]) == ("ok", {"psi_order_value": [1], "spend": [1]})


@pytest.mark.slow
def test_as_of_before_the_models_data_ended_is_a_usage_error(early: Store) -> None:
    """A scheduler's typo (a date before T0) is not "too early": one line naming T0 and the date, exit 2."""
    done = early.clv("monitor", "--input", early.write("feed-early.csv", early.feed), "--as-of", "1997-06-30")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"clv: error: --as-of 1997-06-30 is before models:/clv@champion's data ended (T0 {T0}): nothing to judge; "
        f"give a date on or after {T0}"
    ]
    done = early.clv("monitor", "--input", "feed-early.csv", "--as-of", T0)  # T0 itself: too early, not wrong
    assert done.returncode == 0, done.stderr
    assert "clv monitor: OK (too early)" in done.stdout


@pytest.mark.slow
def test_no_new_data_is_too_early(early: Store) -> None:
    old = early.feed[early.feed["timestamp"] <= T0]
    done = early.clv("monitor", "--input", early.write("old.csv", old))
    assert done.returncode == 0, done.stderr
    assert "OK (too early)" in done.stdout
    # asked to judge periods the feed does not reach: one line, not the prepare's message about calibration_end
    done = early.clv("monitor", "--input", "old.csv", "--as-of", "1998-06-30")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "clv: error: old.csv: no transaction after the model's data ended (1997-12-31), so nothing to judge up to "
        "1998-06-30: is the feed up to date?"
    ]


@pytest.mark.slow
def test_bad_model_uri_is_one_line(early: Store) -> None:
    done = early.clv("monitor", "--model-uri", "runs:/abc/model")
    assert done.returncode == 2
    assert done.stderr.count("clv: error:") == 1
    assert "needs a registered model" in done.stderr


def test_thresholds_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("monitor: {period_days: 7, stale_after: 3, psi_max: 0.1}\n")
    config = load_monitor_config(path)
    assert (config.period_days, config.stale_after, config.psi_max) == (7, 3, 0.1)
    assert config.purchases_max_abs_pct_error == 20.0
    path.write_text("monitor: {period_dayz: 7}\n")
    with pytest.raises(ConfigError, match=r"m\.yaml: monitor\.period_dayz: unknown key"):
        load_monitor_config(path)
    path.write_text("monitor: {stale_after: 0}\n")
    with pytest.raises(ConfigError, match=r"monitor\.stale_after"):
        load_monitor_config(path)
    path.write_text("data: {source: x}\n")
    with pytest.raises(ConfigError, match="one top-level key, monitor"):
        load_monitor_config(path)


@pytest.mark.slow
def test_the_training_source_is_found_from_anywhere(tmp_path: Path, cdnow_sample: pd.DataFrame) -> None:
    """A config's relative data.path is relative to where training ran (or to the config): without --input,
    monitor reads the file training read (tagged on the run as an absolute path), from any folder."""
    project = tmp_path / "project"
    (project / "jobs").mkdir(parents=True)
    feed = cdnow_sample.assign(timestamp=cdnow_sample["date"].dt.strftime("%Y-%m-%d"))
    feed[["customer_id", "timestamp", "amount"]].to_csv(project / "feed.csv", index=False)
    (project / "rel.yaml").write_text(
        "data: {source: csv, path: feed.csv}\n"
        f"prepare: {{calibration_end: 1997-06-30, observation_end: {T0}}}\n"
        "tracking: {experiment: rel, model_name: rel}\n"
    )
    env = clean_env() | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }

    def clv(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(clv_command()), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )

    trained = clv(project / "jobs", "train", "--config", "../rel.yaml")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    for where in (project / "jobs", tmp_path):
        done = clv(where, "monitor", "--model-uri", "models:/rel@champion")
        assert done.returncode == 0, done.stderr
        assert f"6 period(s) of 28 days since {T0}" in done.stdout
