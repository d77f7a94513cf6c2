"""Logging the model to MLflow: the pyfunc model (parameters, config, the ``models`` package) and its
requirements, pinned to the versions installed here. Through :func:`pipeline.recorder.store.store_errors`, as
every write to the store."""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd

import models
from models.bundle import CLVModelParams
from models.contract import check_customer_summary, required_columns
from models.pyfunc import CONFIG_ARTIFACT, PARAMS_ARTIFACT, model_signature, write_blend, write_params
from pipeline.recorder.store import store_errors, versions_checked_without_module_scan
from pipeline.secrets import mask_text

if TYPE_CHECKING:  # the challenger's stack (scikit-learn, skops) is imported only by a blend model's own code
    from models.blend import BlendModel

__all__ = ["BLEND_REQUIREMENTS", "MODEL_REQUIREMENTS", "log_code_model", "log_model"]

MODEL_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scipy")
BLEND_REQUIREMENTS = ("scikit-learn", "skops")
"""What a model that serves the blend also needs (the challenger's trees, and skops to read them)."""


def _pinned_requirements(extra: tuple[str, ...] = ()) -> list[str]:
    """The model's requirements, pinned to the versions installed here."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in (*MODEL_REQUIREMENTS, *extra)]


def log_model(model: CLVModelParams, example: pd.DataFrame, config_yaml: str, blend: BlendModel | None = None) -> str:
    """Log the pyfunc model (parameters as JSON, training config as YAML, package code attached).

    ``example``: a few rows of a per-customer summary (any extra columns are dropped; ``monetary_value``
    is not needed for a model without a spend model); it is stored in the contract's canonical types as
    the input example. The signature is :func:`models.pyfunc.model_signature`. With ``blend`` (the blend won
    and was built at observation end) the model also holds the fitted challenger (skops) and the blend's
    weight and horizon, and ``example`` must carry the challenger's features too. Returns the model URI.
    """
    package_dir = Path(models.__file__).parent
    columns = list(required_columns(model.has_spend) if blend is None else blend.input_columns())
    checked = check_customer_summary(example, spend=model.has_spend)
    example = checked.join(example.drop(columns=checked.columns)).loc[:, columns]
    with tempfile.TemporaryDirectory() as tmp, store_errors("log the model"), versions_checked_without_module_scan():
        artifacts = {PARAMS_ARTIFACT: str(write_params(model, Path(tmp) / "params.json"))}
        config = Path(tmp) / "config.yaml"
        config.write_text(mask_text(config_yaml), encoding="utf-8")
        artifacts[CONFIG_ARTIFACT] = str(config)
        if blend is not None:
            artifacts |= write_blend(blend, Path(tmp))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(package_dir / "serving.py"),
            artifacts=artifacts,
            code_paths=[str(package_dir)],
            pip_requirements=_pinned_requirements(BLEND_REQUIREMENTS if blend is not None else ()),
            signature=model_signature(model, blend),
            input_example=example,
        )
    return str(info.model_uri)


def log_code_model(code_file: str, params_path: Path, example: pd.DataFrame, config_yaml: str, signature: Any) -> str:
    """Log ``models/<code_file>`` as a models-from-code pyfunc (params JSON, config YAML); its URI."""
    package = Path(models.__file__).parent
    with tempfile.TemporaryDirectory() as tmp, store_errors("log the model"), versions_checked_without_module_scan():
        (config := Path(tmp) / "config.yaml").write_text(mask_text(config_yaml), encoding="utf-8")
        return str(mlflow.pyfunc.log_model(name="model", python_model=str(package / code_file), signature=signature,
            artifacts={PARAMS_ARTIFACT: str(params_path), CONFIG_ARTIFACT: str(config)}, input_example=example,
            code_paths=[str(package)], pip_requirements=_pinned_requirements()).model_uri)  # fmt: skip
