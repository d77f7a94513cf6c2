"""The registered model and the customers a command acts on: raw transactions prepared ``--as-of`` a date with
the model's own training config (as ``clv score`` does), or a file of per-customer summaries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.bundle import CLVModelParams
from models.contract import CUSTOMER_ID, ContractError, canonical_ids, check_customer_summary
from pipeline.config import Config, DataConfig, parse_config, read_yaml
from pipeline.engines import open_engine
from pipeline.engines.inputs import folder_source
from pipeline.engines.prepared import Ledger
from pipeline.errors import InputError
from pipeline.recorder import store

__all__ = ["Customers", "RegisteredModel", "customers_as_of", "load_model", "read_customer_ids", "read_summaries"]


@dataclass(frozen=True)
class RegisteredModel:
    uri: str
    params: CLVModelParams
    config: Config
    """The training config (resolved), as it travels with the model."""


@dataclass(frozen=True)
class Customers:
    summary: pd.DataFrame
    """The model's per-customer summary (``first_purchase`` too when prepared from transactions)."""
    source: str
    ledger: Ledger | None = None


def load_model(model_uri: str) -> RegisteredModel:
    model, config_yaml = store.load_scoring_model(model_uri)
    config = parse_config(read_yaml(config_yaml), f"{model_uri} (training config)").resolved()
    assert model.model is not None  # loaded with its context
    return RegisteredModel(model_uri, model.model, config)


def source_at(data: DataConfig, input_path: Path) -> DataConfig:
    """The training config's column mapping and CSV options pointed at ``input_path`` (a .csv or .parquet file, or
    a folder of either)."""
    suffix = input_path.suffix.lower()
    if input_path.is_dir():
        return data.pointed_at(folder_source(input_path), input_path)
    if suffix == ".parquet":
        return data.pointed_at("parquet", input_path)
    if suffix in (".csv", ".txt", ".tsv"):
        return data.pointed_at("csv", input_path)
    raise InputError(f"--input {input_path}: expected a .csv or .parquet file, or a folder of .csv or .parquet files")


def customers_as_of(model: RegisteredModel, input_path: Path, as_of: dt.date) -> Customers:
    """Raw transactions up to ``as_of`` summarised per customer by the model's own prepare config."""
    engine = open_engine(model.config.engine)
    data = engine.open(source_at(model.config.data, input_path))
    with engine.errors(data.description):
        prepared = engine.prepare_as_of(data, model.config.prepare, as_of)
    engine.close()
    if prepared.customers.empty:
        raise InputError(f"{data.description}: no customer has a purchase on or before {as_of}")
    return Customers(prepared.customers.reset_index(drop=True), data.description, prepared.ledger)


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet" or path.is_dir():
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={CUSTOMER_ID: str})
    except (OSError, ValueError) as exc:
        raise InputError(f"{what} {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def read_summaries(model: RegisteredModel, path: Path) -> Customers:
    """A file of per-customer summaries in the model's contract (customer_id, frequency, recency, T and, with a
    spend model, monetary_value); a ``first_purchase`` column is kept for cohorts."""
    frame = _read_table(path, "--customers")
    try:
        summary = check_customer_summary(frame, spend=model.params.has_spend)
    except ContractError as exc:
        raise InputError(f"--customers {path}: {exc}") from None
    if "first_purchase" in frame.columns:
        summary["first_purchase"] = frame["first_purchase"]
    return Customers(summary.reset_index(drop=True), str(path))


def read_customer_ids(path: Path) -> set[str]:
    """Customer ids from a file: a ``customer_id`` column (CSV or Parquet), or one id per line."""
    if path.suffix.lower() in (".csv", ".parquet"):
        frame = _read_table(path, "--ids")
        if CUSTOMER_ID not in frame.columns:
            raise InputError(f"--ids {path}: no {CUSTOMER_ID} column")
        ids = frame[CUSTOMER_ID]
    else:
        try:
            ids = pd.Series([line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()])
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--ids {path}: {type(exc).__name__}: {exc}") from None
    try:
        return set(canonical_ids(ids).astype(str))
    except ContractError as exc:
        raise InputError(f"--ids {path}: {exc}") from None
