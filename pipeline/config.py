"""The job's one YAML config, loaded into typed, frozen pydantic models.

Unknown keys and wrong values are errors that name the key; the defaults are the bundled CDNOW
master data with the paper's calibration/holdout split in weeks.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.bundle import RiskTier, ScoringSpec
from pipeline.errors import ConfigError

SPARK_UNSUPPORTED_SOURCES = ("duckdb", "sql")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMap(_Strict):
    """Input column names: customer id, purchase time, and either ``amount`` or ``quantity`` x
    ``unit_price``; ``order_id`` (optional) groups invoice lines into orders.

    ``amount: null`` without quantity and unit price is an event feed (``date,id``): every row is a
    purchase and there is no spend. With quantity and unit price, ``amount`` is None (its default
    ``amount`` applies only without them), so that a dumped mapping validates again.
    """

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str | None = "amount"
    quantity: str | None = None
    unit_price: str | None = None
    order_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_default_amount_with_quantity(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("quantity") is not None and "amount" not in data:
            return {**data, "amount": None}
        return data

    @model_validator(mode="after")
    def _one_amount(self) -> ColumnMap:
        pair = (self.quantity is None, self.unit_price is None)
        if pair[0] != pair[1]:
            raise ValueError("data.columns.quantity and data.columns.unit_price go together")
        if self.quantity is not None and self.amount is not None:
            raise ValueError("set either data.columns.amount or data.columns.quantity + unit_price, not both")
        return self

    @property
    def uses_quantity(self) -> bool:
        return self.quantity is not None

    @property
    def has_amounts(self) -> bool:
        """Whether the feed has spend: an amount, or quantity and unit price (not an event feed)."""
        return self.amount is not None or self.quantity is not None


class CsvOptions(_Strict):
    delimiter: str = ","
    header: bool = True
    encoding: str = "utf-8"


class DataConfig(_Strict):
    """Where the transactions come from.

    ``cdnow_master`` and ``cdnow_sample`` are the CDNOW files shipped inside the lifetimes wheel;
    ``csv`` and ``parquet`` read ``path`` (a file, or a folder of Parquet files); ``duckdb`` reads
    ``table`` from the DuckDB database file ``path``; ``sql`` runs ``query`` in DuckDB (which reads
    the files it names itself); ``spark_table`` reads the catalog table ``table`` (``engine.name: spark``
    only). All use the ``columns`` mapping.
    """

    source: Literal["cdnow_master", "cdnow_sample", "csv", "parquet", "duckdb", "sql", "spark_table"] = "cdnow_master"
    path: Path | None = None
    table: str | None = None
    query: str | None = None
    columns: ColumnMap = ColumnMap()
    csv: CsvOptions = CsvOptions()
    timestamp_format: str | None = Field(
        default=None, description="strptime format of the timestamp column; None lets DuckDB detect it"
    )

    @model_validator(mode="after")
    def _path_matches_source(self) -> DataConfig:
        if self.source in ("csv", "parquet", "duckdb") and self.path is None:
            raise ValueError(f"data.path is required when data.source is '{self.source}'")
        if self.source in ("cdnow_master", "cdnow_sample", "sql", "spark_table") and self.path is not None:
            raise ValueError(f"data.path must not be set when data.source is '{self.source}'")
        if (self.source in ("duckdb", "spark_table")) != (self.table is not None):
            raise ValueError("data.table is required for, and only for, data.source 'duckdb' and 'spark_table'")
        if (self.source == "sql") != (self.query is not None):
            raise ValueError("data.query is required for, and only for, data.source 'sql'")
        return self

    def pointed_at(self, source: Literal["csv", "parquet"], path: Path) -> DataConfig:
        """This config pointed at another file (``clv score --input``): the same column mapping, CSV options
        and timestamp format, exactly as the user set them (a plain ``model_dump`` would write out the
        defaults too, and a default next to a user's value can contradict it)."""
        return DataConfig.model_validate(
            {
                "source": source,
                "path": path,
                "columns": self.columns.model_dump(exclude_unset=True),
                "csv": self.csv.model_dump(exclude_unset=True),
                "timestamp_format": self.timestamp_format,
            }
        )


class PrepareConfig(_Strict):
    """How transactions become per-customer summaries (lifetimes' calibration_and_holdout_data).

    ``period``: purchases by a customer in the same period merge into one transaction.
    ``time_unit``: the unit of recency and T (a month is 30.4375 days).
    ``calibration_end``: last day of the calibration period (inclusive).
    ``observation_end``: last day of the holdout (the as-of date); defaults to the last transaction date.
    ``timezone``: timestamps with an offset (text or TIMESTAMPTZ) are converted to this zone before
    periods are cut; timestamps without one are taken to be in it already.
    ``returns``: negative amounts or quantities, and orders whose id starts with ``cancel_prefix``, are
    returns. ``net`` subtracts them from the customer's spend (see prepare.py), ``drop`` quarantines them.
    ``zero_amount``: ``keep`` zero-value purchases (CDNOW has 80), or ``quarantine`` them.
    ``min_date``: timestamps before it are data-entry errors (``timestamp_out_of_range``).
    ``max_amount``: when set, purchases or returns larger than it are quarantined (``amount_too_large``);
    by default huge amounts are kept (Gamma-Gamma's per-customer weight shrinks them toward the mean).
    ``duplicates``: rows identical in every column of the source, mapped or not (two products on one
    invoice at the same quantity and price are two lines, not a duplicate). ``auto`` quarantines them
    when an order id is mapped (a repeated invoice line is a double load) and keeps them otherwise (two
    identical purchases on one day can be real: CDNOW has 255); ``quarantine`` always, ``keep`` never.
    ``duplicate_key``: source column names (e.g. ``[InvoiceNo, StockCode]``); when set, rows that repeat
    on these columns are duplicates (the first in the order of the other columns is kept).
    """

    period: Literal["day", "week"] = "day"
    time_unit: Literal["day", "week", "month"] = "week"
    calibration_end: dt.date = dt.date(1997, 9, 30)
    observation_end: dt.date | None = None
    timezone: str = Field(default="UTC", description="zone that timestamps with an offset are converted to")
    returns: Literal["net", "drop"] = "net"
    cancel_prefix: str | None = Field(default="C", description="order ids starting with this are cancellations")
    zero_amount: Literal["keep", "quarantine"] = "keep"
    min_date: dt.date = dt.date(1900, 1, 1)
    max_amount: float | None = Field(default=None, gt=0)
    duplicates: Literal["auto", "quarantine", "keep"] = "auto"
    duplicate_key: tuple[str, ...] | None = None

    @field_validator("duplicate_key")
    @classmethod
    def _key(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError("must list one or more distinct column names")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PrepareConfig:
        if self.duplicate_key is not None and self.duplicates == "keep":
            raise ValueError("prepare.duplicate_key has no effect with prepare.duplicates 'keep'")
        if self.period == "week" and self.time_unit == "day":
            raise ValueError("prepare.time_unit 'day' is finer than prepare.period 'week'")
        if self.observation_end is not None and self.observation_end <= self.calibration_end:
            raise ValueError(
                f"prepare.observation_end {self.observation_end} must be after "
                f"prepare.calibration_end {self.calibration_end}"
            )
        return self


PurchaseModel = Literal["bgnbd", "mbgnbd", "pareto_nbd"]
FitMethod = Literal["mle", "map", "mcmc"]


class CandidateConfig(_Strict):
    """A purchase model and how to fit it: ``mle`` (lifetimes), ``map`` or ``mcmc`` (PyMC)."""

    model: PurchaseModel
    method: FitMethod = "mle"

    @property
    def name(self) -> str:
        return f"{self.model}_{self.method}"


class RemediesConfig(_Strict):
    """What the maximum-likelihood fit tries, in order, when a plain fit fails or degenerates.

    1. ``restart``: start the optimiser at the data's time scale (alpha, beta at the median age) instead
       of lifetimes' all-ones start on its internally rescaled time.
    2. ``penalizers``: L2 penalties, each fitted on the calibration period; the one with the best holdout
       log-likelihood wins.
    A fit is degenerate when a shape parameter (r, a, b, s) leaves [``min_shape``, ``max_shape``].
    """

    restart: bool = True
    penalizers: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    max_shape: float = Field(default=1e4, gt=1)
    min_shape: float = Field(default=1e-6, gt=0, lt=1)

    @field_validator("penalizers")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(p <= 0 for p in value):
            raise ValueError("fit.remedies.penalizers must be positive")
        return value


class McmcConfig(_Strict):
    """NUTS settings; ``keep_draws`` joint draws travel with the model for per-customer credible intervals."""

    chains: int = Field(default=2, ge=2, le=16, description="at least 2: r-hat compares chains")
    draws: int = Field(default=500, ge=10)
    tune: int = Field(default=500, ge=0)
    target_accept: float = Field(default=0.9, gt=0, lt=1)
    seed: int = 20261122
    keep_draws: int = Field(default=100, ge=2, le=5000)
    cores: int = Field(default=2, ge=1)


class DiagnosticsConfig(_Strict):
    """Limits on MCMC diagnostics: a run that breaks one fails its gate and is not registered."""

    max_rhat: float = Field(default=1.05, gt=1)
    min_ess: float = Field(default=100, gt=0)
    max_divergences: int = Field(default=0, ge=0)


class FitConfig(_Strict):
    """How the models are fitted.

    One model (``purchase_model`` x ``method``) or several ``candidates``: each candidate is fitted on
    the calibration period, validated on the holdout and logged as a child run; the best on
    ``selection_metric`` (``selection_direction``) is refitted on the full history and registered.
    """

    purchase_model: PurchaseModel = "bgnbd"
    method: FitMethod = "mle"
    candidates: tuple[CandidateConfig, ...] = ()
    selection_metric: str = "purchases_holdout_log_likelihood"
    selection_direction: Literal["higher", "lower"] | None = Field(
        default=None, description="None: lower for errors (mae, rmse, error, brier), higher otherwise"
    )
    spend_model: Literal["gamma_gamma", "pooled_mean", "none"] | None = Field(
        default=None,
        description="gamma_gamma (falling back to pooled_mean when spend does not vary across customers), "
        "pooled_mean, or none (no money columns: expected order value, CLV); null: gamma_gamma when the feed has "
        "amounts, none when it has not (data.columns.amount: null)",
    )
    purchase_penalizer: float = Field(default=0.0, ge=0)
    spend_penalizer: float = Field(default=0.0, ge=0)
    remedies: RemediesConfig = RemediesConfig()
    priors: Literal["flat", "pymc_marketing"] = "flat"
    mcmc: McmcConfig = McmcConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    interval: tuple[float, float] = (0.05, 0.95)
    spend_correlation_threshold: float = Field(default=0.3, gt=0, le=1)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1] <= 1:
            raise ValueError("fit.interval must be two quantiles with 0 <= lower < upper <= 1")
        return value

    @model_validator(mode="after")
    def _one_way_to_choose(self) -> FitConfig:
        if self.candidates and self.model_fields_set & {"purchase_model", "method"}:
            raise ValueError("set fit.candidates, or fit.purchase_model and fit.method, not both")
        names = [c.name for c in self.candidates]
        if len(names) != len(set(names)):
            raise ValueError("fit.candidates lists the same model and method twice")
        return self

    def candidate_list(self) -> tuple[CandidateConfig, ...]:
        return self.candidates or (CandidateConfig(model=self.purchase_model, method=self.method),)


class RiskTierConfig(_Strict):
    name: str
    upper: float = Field(gt=0, le=1)


class ScoreConfig(_Strict):
    horizons_days: tuple[int, ...] = (30, 90, 365)
    churn_horizon_days: int = Field(default=90, gt=0)
    risk_tiers: tuple[RiskTierConfig, ...] = (
        RiskTierConfig(name="low", upper=0.5),
        RiskTierConfig(name="medium", upper=0.8),
        RiskTierConfig(name="high", upper=1.0),
    )
    clv_horizon_months: int = Field(default=12, gt=0, le=600)
    annual_discount_rate: float = Field(default=0.10, ge=0, lt=10)

    @field_validator("horizons_days")
    @classmethod
    def _positive_horizons(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(h <= 0 for h in value):
            raise ValueError("score.horizons_days must be a non-empty list of positive day counts")
        return value

    @field_validator("risk_tiers")
    @classmethod
    def _ordered_tiers(cls, value: tuple[RiskTierConfig, ...]) -> tuple[RiskTierConfig, ...]:
        uppers = [t.upper for t in value]
        if not value or uppers != sorted(set(uppers)) or uppers[-1] != 1.0:
            raise ValueError("score.risk_tiers must have strictly increasing 'upper' bounds ending at 1.0")
        return value

    def scoring_spec(self, time_unit: str) -> ScoringSpec:
        return ScoringSpec(
            time_unit=time_unit,
            horizons_days=self.horizons_days,
            churn_horizon_days=self.churn_horizon_days,
            risk_tiers=tuple(RiskTier(t.name, t.upper) for t in self.risk_tiers),
            clv_horizon_months=self.clv_horizon_months,
            annual_discount_rate=self.annual_discount_rate,
        )


class Criterion(_Strict):
    """A validation criterion: the run passes when ``metric`` is ``direction`` than ``threshold``."""

    metric: str
    threshold: float
    direction: Literal["higher", "lower"]


class ValidateConfig(_Strict):
    """The promotion gate.

    Besides ``criteria``, two built-in checks: ``beats_historical_baseline`` requires the model's
    per-customer holdout ``baseline_metric`` to be better than that of every baseline, and
    ``does_not_lose_to_champion`` requires it to be at most ``champion_tolerance`` (relative) worse than
    the current champion's calibration model on the same holdout.

    ``baseline_metric`` and ``criteria`` left unset (null) take the defaults of the spend model: on
    revenue with a spend model, on purchases without one (a feed with no amounts).
    """

    baseline_metric: Literal["revenue_mae", "revenue_rmse", "purchases_mae", "purchases_rmse"] | None = None
    champion_tolerance: float = Field(default=0.01, ge=0, le=1)
    criteria: tuple[Criterion, ...] | None = None

    def baseline_metric_for(self, has_spend: bool) -> str:
        """The built-in baseline check's metric: the configured one, or revenue MAE (purchases MAE without spend)."""
        if self.baseline_metric is not None:
            return self.baseline_metric
        return "revenue_mae" if has_spend else "purchases_mae"

    def criteria_for(self, has_spend: bool) -> tuple[Criterion, ...]:
        """The configured criteria, or the defaults: churn AUC >= 0.70, total purchases within 20%, and a
        skill of at least 5% over the best baseline (on revenue, or on purchases without a spend model)."""
        if self.criteria is not None:
            return self.criteria
        skill = "revenue_mae_skill" if has_spend else "purchases_mae_skill"
        return (
            Criterion(metric="churn_auc", threshold=0.70, direction="higher"),
            Criterion(metric="purchases_total_abs_pct_error", threshold=20.0, direction="lower"),
            Criterion(metric=skill, threshold=0.05, direction="higher"),
        )


class BusinessConfig(_Strict):
    """Business views of the production scores.

    CAC (customer acquisition cost) is optional: one ``cac`` for everyone, or ``cac_file``, a CSV with
    ``customer_id`` and either ``cac`` (per customer) or ``channel`` (the acquisition channel, priced
    by ``cac_by_channel``).
    """

    at_risk_clv_quantile: float = Field(default=0.8, ge=0, lt=1)
    at_risk_churn_risk: float = Field(default=0.8, ge=0, le=1)
    cac: float | None = Field(default=None, ge=0)
    cac_file: Path | None = None
    cac_by_channel: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> BusinessConfig:
        if self.cac is not None and self.cac_file is not None:
            raise ValueError("set business.cac or business.cac_file, not both")
        return self


class EngineConfig(_Strict):
    """Where prepare and scoring run: ``duckdb`` (one machine) or ``spark`` (pip install .[spark]).

    DuckDB: ``memory_limit`` caps it (it spills to ``temp_directory`` beyond it), ``threads``.
    Spark: ``master`` (``local[2]``, ``yarn``, ``spark://host:7077``, ... ; ``null`` leaves it to
    spark-submit), ``app_name``, ``shuffle_partitions`` (``spark.sql.shuffle.partitions``), ``conf``
    (any other Spark settings), ``spend_sample_customers``: Gamma-Gamma is fitted on at most this many
    repeat customers (a deterministic sample by hash of the customer id when there are more).
    """

    name: Literal["duckdb", "spark"] = "duckdb"
    memory_limit: str = Field(default="3GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    threads: int | None = Field(default=None, ge=1)
    temp_directory: Path | None = None
    master: str | None = "local[2]"
    app_name: str = "clv-pipeline"
    shuffle_partitions: int = Field(default=8, ge=1)
    conf: dict[str, str] = Field(default_factory=dict)
    spend_sample_customers: int = Field(default=2_000_000, ge=3)


class TrackingConfig(_Strict):
    experiment: str = "clv"
    model_name: str = "clv"
    alias: str = "champion"


class Config(_Strict):
    data: DataConfig = DataConfig()
    engine: EngineConfig = EngineConfig()
    prepare: PrepareConfig = PrepareConfig()
    fit: FitConfig = FitConfig()
    score: ScoreConfig = ScoreConfig()
    validate_: ValidateConfig = Field(default=ValidateConfig(), alias="validate")
    business: BusinessConfig = BusinessConfig()
    tracking: TrackingConfig = TrackingConfig()

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


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    where = where.replace("validate_", "validate")
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    elif "input" in first and first["type"] != "missing":
        message = f"{message} (got {first['input']!r})"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {where}: {message}{more}"


def parse_config(raw: object, source: str = "config") -> Config:
    """Validate a parsed YAML document; ConfigError names the offending key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: Path | None) -> Config:
    """Read and validate a YAML config; ``None`` gives the built-in defaults (configs/default.yaml)."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    config = parse_config(raw, str(path))
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in a config file are relative to the working directory, then to the file."""
    data_path = _resolve(config.data.path, base)
    cac_path = _resolve(config.business.cac_file, base)
    return config.model_copy(
        update={
            "data": config.data.model_copy(update={"path": data_path}),
            "business": config.business.model_copy(update={"cac_file": cac_path}),
        }
    )


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None or path.is_absolute() or path.exists():
        return path
    candidate = (base / path).resolve()
    return candidate if candidate.exists() else path


def config_as_dict(config: Config) -> dict[str, object]:
    """The config as plain YAML-able data, with the ``validate`` key spelled as in the file."""
    return config.model_dump(mode="json", by_alias=True)
