"""The job's one YAML config, loaded into typed, frozen pydantic models.

Unknown keys and wrong values are errors that name the key; the defaults are the bundled CDNOW
master data with the paper's calibration/holdout split in weeks. One module per section (``data``,
``engine``, ``prepare``, ``fit``, ``score``, ``validate``, ``business``, ``tracking``, ``challenger``), the whole job's
:class:`Config` in :mod:`pipeline.config.job`, and reading, writing and hashing in
:mod:`pipeline.config.loading`.
"""

from __future__ import annotations

from pipeline.config.business import BusinessConfig
from pipeline.config.challenger import ChallengerConfig
from pipeline.config.data import ColumnMap, CsvOptions, DataConfig
from pipeline.config.engine import SPARK_UNSUPPORTED_SOURCES, EngineConfig
from pipeline.config.fit import (
    CandidateConfig,
    DiagnosticsConfig,
    FitConfig,
    FitMethod,
    McmcConfig,
    PurchaseModelName,
    RemediesConfig,
)
from pipeline.config.job import Config
from pipeline.config.loading import config_as_dict, config_hash, load_config, parse_config, read_yaml
from pipeline.config.prepare import PrepareConfig
from pipeline.config.scoring import RiskTierConfig, ScoreConfig
from pipeline.config.tracking import TrackingConfig
from pipeline.config.validate import Criterion, ValidateConfig

__all__ = [
    "SPARK_UNSUPPORTED_SOURCES",
    "BusinessConfig",
    "CandidateConfig",
    "ChallengerConfig",
    "ColumnMap",
    "Config",
    "Criterion",
    "CsvOptions",
    "DataConfig",
    "DiagnosticsConfig",
    "EngineConfig",
    "FitConfig",
    "FitMethod",
    "McmcConfig",
    "PrepareConfig",
    "PurchaseModelName",
    "RemediesConfig",
    "RiskTierConfig",
    "ScoreConfig",
    "TrackingConfig",
    "ValidateConfig",
    "config_as_dict",
    "config_hash",
    "load_config",
    "parse_config",
    "read_yaml",
]
