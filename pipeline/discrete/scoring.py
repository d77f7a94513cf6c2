"""``clv score`` with a registered discrete-opportunity (BG/BB) model: a feed prepared with the model's own
config, as of a date, and every customer acquired by then scored (P(alive), expected transactions; with a
spend model, the expected order value and CLV)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from models.opportunity_model import OpportunityModel
from pipeline.config import DataConfig, parse_config
from pipeline.contractual.prepare import BillingLedger
from pipeline.discrete.prepare import prepare_opportunities
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.errors import InputError
from pipeline.outputs import TableWriter
from pipeline.recorder import store

__all__ = ["score_opportunity_file"]


def _pointed_at(data: DataConfig, input_path: Path) -> DataConfig:
    suffix = input_path.suffix.lower()
    if input_path.is_dir() or suffix == ".parquet":
        return data.pointed_at("parquet", input_path)
    if suffix in (".csv", ".txt", ".tsv"):
        return data.pointed_at("csv", input_path)
    raise InputError(f"--input {input_path}: expected a .csv or .parquet file, or a folder of .parquet files")


def score_opportunity_file(
    model_uri: str, input_path: Path, output: Path, as_of: dt.date
) -> tuple[int, BillingLedger] | None:
    """Score the customers of ``input_path`` as of ``as_of``: the count scored and the ledger; None when
    ``model_uri`` does not name a registered discrete model (tagged ``business.type: discrete``)."""
    model = store.tagged_python_model(model_uri, "business.type", "discrete")
    if model is None:
        return None
    if not isinstance(model, OpportunityModel) or model.config_yaml is None:
        raise InputError(f"--model-uri {model_uri}: not a clv-pipeline BG/BB model with its training config")
    config = parse_config(yaml.safe_load(model.config_yaml), f"{model_uri} (training config)")
    data_config = _pointed_at(config.data, input_path)
    writer = TableWriter(output)  # checks the output suffix before any work
    engine = DuckDBEngine(config.engine)
    try:
        data = engine.open(data_config)
        with engine.errors(data.description):
            histories = prepare_opportunities(engine.connection, data.handle, config, as_of=as_of)  # type: ignore[arg-type]
    finally:
        engine.close()
    assert model.model is not None
    columns = model.model.input_columns
    customers = histories.full.loc[:, ["first_period", *columns]].reset_index(drop=True)
    customers["first_period"] = customers["first_period"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
    scores = model.predict(None, customers.loc[:, list(columns)])
    with writer:
        writer.write(customers.merge(scores, on="customer_id", how="left"))
    return len(customers), histories.ledger
