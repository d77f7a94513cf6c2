"""The job's whole config: one section per stage, and the rules that span sections."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from models.bundle import ScoringSpec
from pipeline.config.base import StrictModel
from pipeline.config.business import BusinessConfig
from pipeline.config.challenger import ChallengerConfig
from pipeline.config.data import DataConfig
from pipeline.config.engine import SPARK_UNSUPPORTED_SOURCES, EngineConfig
from pipeline.config.fit import FitConfig
from pipeline.config.prepare import PrepareConfig
from pipeline.config.scoring import ScoreConfig
from pipeline.config.tracking import TrackingConfig
from pipeline.config.validate import ValidateConfig

__all__ = ["Config"]


class Config(StrictModel):
    data: DataConfig = DataConfig()
    engine: EngineConfig = EngineConfig()
    prepare: PrepareConfig = PrepareConfig()
    fit: FitConfig = FitConfig()
    score: ScoreConfig = ScoreConfig()
    validate_: ValidateConfig = Field(default=ValidateConfig(), alias="validate")
    business: BusinessConfig = BusinessConfig()
    tracking: TrackingConfig = TrackingConfig()
    challenger: ChallengerConfig = ChallengerConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _spend_needs_amounts(self) -> Config:
        columns = self.data.columns
        if columns.amount is None and columns.quantity is None and self.fit.spend_model == "gamma_gamma":
            raise ValueError(
                f"fit.spend_model {self.fit.spend_model!r} needs amounts, but data.columns.amount is null: "
                "set fit.spend_model: none (or map an amount column)"
            )
        return self

    @property
    def has_spend(self) -> bool:
        """Whether the job models spend and writes money columns: not with ``fit.spend_model: none``, nor for a
        feed without amounts (``data.columns.amount: null`` and no quantity)."""
        columns = self.data.columns
        return self.fit.spend_model != "none" and (columns.amount is not None or columns.quantity is not None)

    def resolved(self) -> Config:
        """The config the job runs: ``fit.spend_model`` decided (``gamma_gamma`` with amounts, ``none``
        without), and without a spend model no amount column is read (nor required). What is logged and
        hashed stays the config as written."""
        spend = self.fit.spend_model or ("gamma_gamma" if self.has_spend else "none")
        data = self.data
        if spend == "none":
            quiet = {"amount": None, "quantity": None, "unit_price": None}
            data = data.model_copy(update={"columns": data.columns.model_copy(update=quiet)})
        return self.model_copy(update={"data": data, "fit": self.fit.model_copy(update={"spend_model": spend})})

    @model_validator(mode="after")
    def _source_fits_engine(self) -> Config:
        if self.engine.name == "spark" and self.data.source in SPARK_UNSUPPORTED_SOURCES:
            raise ValueError(
                f"data.source '{self.data.source}' runs in DuckDB and is not supported with engine.name 'spark' "
                "(use csv, parquet, spark_table or the bundled CDNOW)"
            )
        if self.engine.name != "spark" and self.data.source == "spark_table":
            raise ValueError("data.source 'spark_table' needs engine.name 'spark'")
        return self

    def scoring_spec(self) -> ScoringSpec:
        return self.score.scoring_spec(self.prepare.time_unit)
