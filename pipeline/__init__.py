"""clv-pipeline: the batch training job (prepare -> fit -> validate -> gate -> score -> register).

The names a notebook needs, importable from here (loaded on first use, so ``import pipeline`` stays cheap)::

    from pipeline import load_config, open_engine, prepare_data, train, run_training

- :func:`train` is the workflow alone (no MLflow, nothing registered); :func:`run_training` is ``clv train``.
- The stages themselves live in their modules: ``pipeline.fit``, ``pipeline.validate``, ``pipeline.score``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Config",
    "TrainResult",
    "load_config",
    "open_engine",
    "prepare_data",
    "run_training",
    "summary_text",
    "train",
]

_WHERE = {
    "Config": "pipeline.config",
    "load_config": "pipeline.config",
    "TrainResult": "pipeline.workflow",
    "prepare_data": "pipeline.workflow",
    "train": "pipeline.workflow",
    "open_engine": "pipeline.engines",
    "run_training": "pipeline.commands.train",
    "summary_text": "pipeline.summary",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
