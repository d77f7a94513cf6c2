"""The non-contractual job's prepare error on a feed: the other business types' tests expect the same line."""

from __future__ import annotations

import pytest

from pipeline.config import Config
from pipeline.engines import open_engine
from pipeline.errors import InputError

__all__ = ["non_contractual_error"]


def non_contractual_error(config: Config) -> str:
    """The InputError of the non-contractual job's DuckDB prepare on ``config``'s feed."""
    engine = open_engine(config.engine)
    try:
        with pytest.raises(InputError) as error:
            engine.prepare(engine.open(config.data), config.prepare)
    finally:
        engine.close()
    return str(error.value)
