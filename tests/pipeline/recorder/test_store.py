from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from pipeline import stop
from pipeline.errors import TrackingUnavailableError
from pipeline.recorder import model_log
from pipeline.recorder import store as tracking

MODEL = CLVModelParams(
    purchase=BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259),
    spend=GammaGammaParams(6.2488, 3.7446, 15.4477),
    spec=ScoringSpec(),
)
EXAMPLE = pd.DataFrame(
    {
        "customer_id": ["a", "b"],
        "frequency": [2.0, 0.0],
        "recency": [30.0, 0.0],
        "T": [38.0, 20.0],
        "monetary_value": [20.0, 0.0],
    }
)


def test_connect_creates_experiment_with_artifacts_beside_the_database(tracking_store: str, tmp_path: Path) -> None:
    experiment_id = tracking.connect("clv-test")
    assert tracking.connect("clv-test") == experiment_id
    location = mlflow.get_experiment(experiment_id).artifact_location
    assert location == (tmp_path / "mlartifacts").as_uri()


def test_default_uri_is_sqlite_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_unreachable_store_is_tracking_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker / 'mlflow.db'}")
    with pytest.raises(TrackingUnavailableError, match="cannot open the experiment"):
        tracking.connect("clv")


def test_failed_block_marks_the_run_failed(tracking_store: str) -> None:
    experiment_id = tracking.connect("clv-test")
    with pytest.raises(RuntimeError), tracking.run(experiment_id) as run_id:
        raise RuntimeError("boom")
    assert mlflow.get_run(run_id).info.status == "FAILED"


def test_sigterm_while_mlflow_starts_the_run_still_ends_it_failed(
    tracking_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id = tracking.connect("sigterm")
    start_run = mlflow.start_run

    def start_then_signal(*args: object, **kwargs: object) -> mlflow.ActiveRun:
        active = start_run(*args, **kwargs)  # type: ignore[arg-type]
        stop.on_sigterm(15, None)  # the signal lands after MLflow created the run, before it returns
        return active

    monkeypatch.setattr(stop, "_state", {"requested": False, "deferred": 0})
    monkeypatch.setattr(mlflow, "start_run", start_then_signal)
    with pytest.raises(stop.Terminated), tracking.run(experiment_id):
        pytest.fail("the block must not run after the stop")
    (run,) = mlflow.search_runs([experiment_id], output_format="list")
    assert run.info.status == "FAILED"
    assert mlflow.active_run() is None


def test_log_register_alias_round_trip(tracking_store: str) -> None:
    experiment_id = tracking.connect("clv-test")
    assert tracking.alias_version("clv-test-model", "champion") is None
    with tracking.run(experiment_id):
        uri = model_log.log_model(MODEL, EXAMPLE, "data: {source: cdnow_sample}\n")
        version = tracking.register(uri, "clv-test-model", {"gate.passed": "true"})
        tracking.set_alias("clv-test-model", "champion", version)
    assert tracking.alias_version("clv-test-model", "champion") == version == 1
    loaded = mlflow.pyfunc.load_model("models:/clv-test-model@champion")
    requirements = Path(mlflow.pyfunc.get_model_dependencies("models:/clv-test-model/1")).read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == ["mlflow", "numpy", "pandas", "scipy"]
    assert all(len(r.split("==")) == 2 and r.split("==")[1] for r in requirements)  # pinned, not inferred
    scores = loaded.predict(EXAMPLE)
    assert scores["customer_id"].tolist() == ["a", "b"]
    assert loaded.metadata.signature.inputs.input_names() == list(EXAMPLE.columns)


def test_a_model_is_loaded_without_scanning_every_distribution(
    tracking_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib_metadata
    from mlflow.utils import requirements_utils

    with tracking.run(tracking.connect("clv-load")):
        uri = model_log.log_model(MODEL, EXAMPLE, "data: {source: cdnow_sample}\n")

    scans: list[int] = []

    def packages_distributions() -> dict[str, list[str]]:
        scans.append(1)
        return {}

    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(importlib_metadata, "packages_distributions", packages_distributions)
    python_model, config_yaml = tracking.load_scoring_model(uri)
    assert scans == []  # MLflow's check swallows what it raises: the calls are counted
    assert python_model.predict(None, EXAMPLE)["customer_id"].tolist() == ["a", "b"]
    assert config_yaml == "data: {source: cdnow_sample}\n"
    assert requirements_utils._MODULES_TO_PACKAGES is None
