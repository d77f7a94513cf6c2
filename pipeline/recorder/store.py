"""The recorder's MLflow store: tracking store, run logging and the registry (:mod:`pipeline.recorder.model_log`
logs the model itself).

Default store: ``sqlite:///mlflow.db`` with artifacts in ``./mlartifacts`` (both in the working
directory); ``MLFLOW_TRACKING_URI`` points the job at any MLflow server instead. Failures to reach
or write the store raise TrackingUnavailableError (exit 3).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's "View run at <tracking URI>" line would print the URI's password (tests/pipeline/test_secrets_scan.py).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.pyfunc import CLVModel
from pipeline import faults, stop
from pipeline.champion import ChampionParams
from pipeline.errors import InputError, TrackingUnavailableError
from pipeline.recorder import names as names_module
from pipeline.secrets import mask, mask_text

if TYPE_CHECKING:  # the challenger's stack (scikit-learn, skops) is imported only by a blend model's own code
    from matplotlib.figure import Figure


DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"


def quiet() -> None:
    """MLflow logs its own errors with tracebacks on stderr; the CLI reports one line per failure instead.

    Set after MLflow's import, which configures its logger. ``CLV_MLFLOW_LOG_LEVEL=INFO`` shows them.
    Progress bars for artifact transfers are MLflow's, not ours (the scoring bar is).
    """
    level = os.environ.get("CLV_MLFLOW_LOG_LEVEL", "CRITICAL")
    for name in ("mlflow", "sqlalchemy", "alembic"):
        logging.getLogger(name).setLevel(level)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


@contextlib.contextmanager
def store_errors(action: str, stop_after: bool = True, *, writes: bool = True) -> Iterator[None]:
    """A call to the store: its errors become TrackingUnavailableError, and a SIGTERM during it waits until it
    is done (a write cut in the middle can leave the store unable to end the run); ``stop_after`` stops right
    after the call instead of at the next checkpoint. A call that ``writes`` is a :mod:`pipeline.faults` step."""
    with stop.deferred():
        try:
            if writes:
                faults.write_step(action)
            yield
        except TrackingUnavailableError:
            raise
        except (MlflowException, OSError, ConnectionError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrackingUnavailableError(
                f"MLflow tracking store {tracking_uri()}: cannot {action}: {message}"
            ) from None
        except Exception as exc:  # SQLAlchemy and requests errors surface as their own types
            if type(exc).__module__.split(".")[0] in ("sqlalchemy", "requests", "urllib3"):
                message = str(exc).strip().splitlines()[0]
                raise TrackingUnavailableError(
                    f"MLflow tracking store {tracking_uri()}: cannot {action}: {message}"
                ) from None
            raise
    if stop_after:
        stop.checkpoint()


def _sqlite_artifact_location(uri: str) -> str | None:
    """For a SQLite store, artifacts go to ``mlartifacts/`` beside the database file."""
    if not uri.startswith("sqlite:///"):
        return None  # a tracking server decides where its artifacts go
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.parent / DEFAULT_ARTIFACTS).resolve().as_uri()


def use_store() -> str:
    """Point MLflow's tracking and registry at the configured store; return its URI."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def connect(experiment: str) -> str:
    """Point MLflow at the store, check it answers, and return the experiment id (created if new)."""
    uri = use_store()
    with store_errors("open the experiment", writes=False):
        found = mlflow.get_experiment_by_name(experiment)
    with store_errors("create the experiment", writes=found is None):
        location = _sqlite_artifact_location(uri)
        return str(found.experiment_id if found else mlflow.create_experiment(experiment, location))


@contextlib.contextmanager
def run(experiment_id: str | None, run_name: str | None = None, nested: bool = False) -> Iterator[str]:
    """An MLflow run (``nested``: inside the active one); it ends FAILED if the block raises.

    A SIGTERM while MLflow starts the run stops the job only once the block below can end it
    (:mod:`pipeline.stop`), so the run never stays RUNNING.
    """
    with store_errors("start a run", stop_after=False):
        active = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested)
    status = "FAILED"
    try:
        stop.checkpoint()
        yield active.info.run_id
        status = "FINISHED"
    finally:
        with store_errors("end the run", stop_after=False):
            mlflow.end_run(status=status)


def child_run(run_name: str) -> contextlib.AbstractContextManager[str]:
    """A run nested in the active one (a candidate model), in the same experiment."""
    parent = mlflow.active_run()
    return run(parent.info.experiment_id if parent is not None else None, run_name, nested=True)


def _flatten(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: json.dumps(value) if isinstance(value, list | tuple) else str(value)}


def log_config(config: dict[str, Any], config_yaml: str) -> None:
    """The config as params and as ``config.yaml``, with credentials masked."""
    with store_errors("log the config"):
        mlflow.log_params(_flatten("", mask(config)))
        mlflow.log_text(mask_text(config_yaml), "config.yaml")


def set_tags(tags: dict[str, Any]) -> None:
    with store_errors("set tags"):
        mlflow.set_tags({k: mask_text(str(v)) for k, v in tags.items()})


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    with store_errors("log metrics"):
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def write_table(frame: pd.DataFrame, local: Path) -> None:
    """``frame`` as CSV (a ``.csv`` name) or Parquet (any other), without its index: how the run stores tables."""
    if local.suffix == ".csv":
        frame.to_csv(local, index=False)
    else:
        frame.to_parquet(local, index=False)


def log_table(frame: pd.DataFrame, artifact_path: str) -> None:
    """Log a DataFrame as Parquet (``.parquet``) or CSV (``.csv``) under ``artifact_path``."""
    with tempfile.TemporaryDirectory() as tmp, store_errors(f"log {artifact_path}"):
        local = Path(tmp) / Path(artifact_path).name
        write_table(frame, local)
        mlflow.log_artifact(str(local), str(Path(artifact_path).parent) or None)


def log_file(path: Path, artifact_dir: str) -> None:
    """Log a file, or a folder (a Parquet dataset written by Spark) under its own name."""
    with store_errors(f"log {artifact_dir}/{path.name}"):
        if path.is_dir():
            mlflow.log_artifacts(str(path), f"{artifact_dir}/{path.name}")
        else:
            mlflow.log_artifact(str(path), artifact_dir)


def log_text(text: str, artifact_path: str) -> None:
    with store_errors(f"log {artifact_path}"):
        mlflow.log_text(text, artifact_path)


def log_dict(data: dict[str, Any], artifact_path: str) -> None:
    with store_errors(f"log {artifact_path}"):
        mlflow.log_dict(data, artifact_path)


def log_figure(figure: Figure, artifact_path: str) -> None:
    with store_errors(f"log {artifact_path}"):
        mlflow.log_figure(figure, artifact_path)


def log_png(png: bytes, artifact_path: str) -> None:
    """An image already rendered (:func:`pipeline.plots.png`), under ``artifact_path``."""
    path = PurePosixPath(artifact_path)
    with store_errors(f"log {artifact_path}"), tempfile.TemporaryDirectory(prefix=".clv-png-") as folder:
        local = Path(folder) / path.name
        local.write_bytes(png)
        mlflow.log_artifact(str(local), str(path.parent) if str(path.parent) != "." else None)


def register(model_uri: str, name: str, tags: dict[str, str]) -> int:
    # MLflow prints "Successfully registered model ..." and "Created version ..." itself (on stderr, not
    # through its logger): the job reports the registration in its own summary instead.
    with store_errors("register the model"), contextlib.redirect_stderr(io.StringIO()):
        version = mlflow.register_model(model_uri, name, tags=tags)
    return int(version.version)


def set_alias(name: str, alias: str, version: int) -> None:
    with store_errors(f"move alias {alias}"):
        MlflowClient().set_registered_model_alias(name, alias, str(version))


_MODULE_MAP = "_MODULES_TO_PACKAGES"
"""MLflow's map of installed modules to their distributions (``mlflow.utils.requirements_utils``)."""


@contextlib.contextmanager
def versions_checked_without_module_scan() -> Iterator[None]:
    """While a model is logged or loaded, MLflow checks its requirements against the installed versions
    (``importlib.metadata.version`` of each), but first maps every installed module to its distribution by
    reading every distribution's file list (``packages_distributions``): 0.83 s of a 7 s CDNOW job here, for a
    map it reads only when a package has no metadata (to import the module and read its ``__version__``). Our
    requirements are pinned from that same metadata (:mod:`pipeline.recorder.model_log`), so the map is not needed:
    an empty one stands in for the call when MLflow has not built its own, and is taken back afterwards. The
    check itself still runs. Should MLflow's private map go, nothing is changed."""
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, _MODULE_MAP, ...) is not None:  # built already, or not there
        yield
        return
    setattr(requirements_utils, _MODULE_MAP, {})
    try:
        yield
    finally:
        setattr(requirements_utils, _MODULE_MAP, None)


def load_scoring_model(model_uri: str) -> tuple[CLVModel, str]:
    """Load a registered model (its python model, loaded: parameters and formulas) and the training config
    that travels with it. Batch scoring calls the python model directly: the pyfunc wrapper's schema
    enforcement of ``Any``-typed inputs costs about 5 us per row and adds nothing to our own contract.

    Only ``models:/`` and ``runs:/`` URIs are accepted: the model comes from the configured tracking
    store and registry, never from an arbitrary path or URL.
    """
    if not model_uri.startswith(("models:/", "runs:/")):
        raise InputError(f"--model-uri {model_uri}: only models:/ and runs:/ URIs from the tracking store are allowed")
    use_store()
    with store_errors(f"load {model_uri}", writes=False):
        try:
            with versions_checked_without_module_scan():
                loaded = mlflow.pyfunc.load_model(model_uri)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise InputError(f"--model-uri {model_uri}: {str(exc).splitlines()[0]}") from None
            raise
    python_model = loaded.unwrap_python_model()
    from models.opportunity_model import OpportunityModel
    from models.subscription_model import SubscriptionModel

    kinds = {SubscriptionModel: "contractual", OpportunityModel: "discrete"}
    kind = next((name for cls, name in kinds.items() if isinstance(python_model, cls)), None)
    if kind is not None:  # the other business types score through clv score alone (pipeline.commands.business_feed)
        raise InputError(
            f"--model-uri {model_uri}: a business.type {kind} model; clv whatif and clv monitor take non_contractual "
            "models (clv score scores every type)"
        )
    if not isinstance(python_model, CLVModel) or python_model.config_yaml is None:
        raise InputError(f"--model-uri {model_uri}: not a clv-pipeline model with its training config")
    return python_model, python_model.config_yaml


def version_passed_gate(name: str, version: int) -> bool:
    """Whether ``version`` of ``name`` is tagged as having passed its validation gate."""
    use_store()
    with store_errors(f"read {name} version {version}", writes=False):
        try:
            found = MlflowClient().get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise InputError(f"model {name!r} has no version {version}") from None
            raise
    return bool(found.tags.get("gate.passed") == "true")


def champion_calibration_params(name: str, alias: str) -> ChampionParams | None:
    """The champion's version, models, the parameters of its calibration fit (logged as run metrics), its
    (period, time unit) and data fingerprint; None without a champion or when its run is gone."""
    version = alias_version(name, alias)
    if version is None:
        return None
    client = MlflowClient()
    with store_errors(f"read the run of {name} version {version}", writes=False):
        found = client.get_model_version(name, str(version))
        try:
            run = client.get_run(found.run_id) if found.run_id else None
        except MlflowException:
            return None
    if run is None:
        return None
    metrics = run.data.metrics
    units = (run.data.params.get("prepare.period", ""), run.data.params.get("prepare.time_unit", ""))
    model = run.data.tags.get("purchase_model", "bgnbd")  # runs before the tag existed were BG/NBD
    spend = run.data.tags.get("spend_model", "gamma_gamma")  # and Gamma-Gamma
    names = names_module.champion_metric_names(model, spend)
    if names is None or not all(metric in metrics for metric in names.values()):
        return None
    params = {key: float(metrics[metric]) for key, metric in names.items()}
    fingerprint = found.tags.get("data.fingerprint", run.data.tags.get("data.fingerprint", ""))
    return ChampionParams(version, model, spend, params, units, fingerprint)


def alias_version(name: str, alias: str) -> int | None:
    """The version ``alias`` points to, or None when the model or the alias does not exist."""
    with store_errors(f"read alias {alias}", writes=False):
        try:
            return int(MlflowClient().get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise


def model_record(model_uri: str) -> dict[str, Any]:
    """The registered version behind ``models:/NAME@ALIAS`` or ``models:/NAME/N``: ``name``, ``version``,
    ``run_id``, and its training run's ``tags``, ``metrics`` and ``ledger`` (``ledger.json``: its data's dates)."""
    use_store()
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    name, _, number = name.partition("/")
    client = MlflowClient()
    with store_errors(f"read {model_uri}", writes=False):
        try:
            found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, number)
            run = client.get_run(str(found.run_id))
            ledger = mlflow.artifacts.load_dict(f"runs:/{found.run_id}/{names_module.LEDGER_ARTIFACT}")
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise InputError(f"--model-uri {model_uri}: {str(exc).splitlines()[0]}") from None
            raise
    record = {"name": str(found.name), "version": str(found.version), "run_id": str(found.run_id), "ledger": ledger}
    return record | {"tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}


def tagged_python_model(model_uri: str, key: str, value: str) -> Any:
    """The python model of the registered version ``models:/name/version`` or ``models:/name@alias`` names
    when its tag ``key`` is ``value``; None otherwise (another kind of model, or not a ``models:/`` URI)."""
    name, _, version = model_uri.removeprefix("models:/").partition("/")
    with store_errors(f"load {model_uri}", writes=False), contextlib.suppress(MlflowException):
        client, (name, _, alias) = MlflowClient(use_store()), name.partition("@")
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        if model_uri.startswith("models:/") and found.tags.get(key) == value:
            with versions_checked_without_module_scan():
                return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    return None
