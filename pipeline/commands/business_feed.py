"""A registered subscription or discrete-opportunity model and its training config.

``clv score`` of a contractual or discrete model loads the model by its ``business.type`` tag, points the training
config's column mapping at ``--input`` (:func:`pipeline.commands.customers.source_at`) and runs the business
type's own prepare on DuckDB, the only engine these types run on (:mod:`pipeline.contractual.scoring`,
:mod:`pipeline.discrete.scoring`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from pipeline.commands.customers import source_at
from pipeline.config import Config, parse_config, read_yaml
from pipeline.engines import Source
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.errors import InputError
from pipeline.recorder import store

__all__ = ["opened_feed", "registered_business_model"]

ModelT = TypeVar("ModelT")


def registered_business_model(
    model_uri: str, business_type: str, kind: type[ModelT], what: str
) -> tuple[ModelT, Config] | None:
    """The model ``model_uri`` names and its training config; None when it is not tagged ``business.type:
    <business_type>`` (another kind of model); an InputError when it is tagged so but is not a ``kind``."""
    model = store.tagged_python_model(model_uri, "business.type", business_type)
    if model is None:
        return None
    config_yaml = getattr(model, "config_yaml", None)
    if not isinstance(model, kind) or not isinstance(config_yaml, str):
        raise InputError(f"--model-uri {model_uri}: not a clv-pipeline {what} with its training config")
    return model, parse_config(read_yaml(config_yaml), f"{model_uri} (training config)")


@contextmanager
def opened_feed(config: Config, input_path: Path) -> Iterator[tuple[DuckDBEngine, Source, duckdb.DuckDBPyRelation]]:
    """The training config's DuckDB engine, ``input_path`` opened with its column mapping and CSV options
    (:func:`~pipeline.commands.customers.source_at`) and the opened relation; the engine is closed afterwards."""
    engine = DuckDBEngine(config.engine)
    try:
        data = engine.open(source_at(config.data, input_path))
        assert isinstance(data.handle, duckdb.DuckDBPyRelation)  # opened by the DuckDB engine
        yield engine, data, data.handle
    finally:
        engine.close()
