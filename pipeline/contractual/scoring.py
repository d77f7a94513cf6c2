"""``clv score`` with a registered subscription model: a billing feed prepared with the model's own config,
as of a date, and its active subscribers scored (the churned ones have nothing left to score)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from models.subscription_model import SubscriptionModel
from pipeline.config import DataConfig, parse_config
from pipeline.contractual.prepare import BillingLedger
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.errors import InputError
from pipeline.outputs import TableWriter
from pipeline.recorder import store

__all__ = ["score_subscription_file"]


def score_subscription_file(
    model_uri: str, input_path: Path, output: Path, as_of: dt.date
) -> tuple[int, BillingLedger] | None:
    """Score the subscribers of ``input_path`` active at ``as_of``: the count scored and the ledger; None when
    ``model_uri`` does not name a registered subscription model (tagged ``business.type: contractual``)."""
    model = store.tagged_python_model(model_uri, "business.type", "contractual")
    if model is None:
        return None
    if not isinstance(model, SubscriptionModel) or model.config_yaml is None:
        raise InputError(f"--model-uri {model_uri}: not a clv-pipeline subscription model with its training config")
    config_yaml = model.config_yaml
    config = parse_config(yaml.safe_load(config_yaml), f"{model_uri} (training config)")
    suffix = input_path.suffix.lower()
    if input_path.is_dir() or suffix == ".parquet":
        data_config: DataConfig = config.data.pointed_at("parquet", input_path)
    elif suffix in (".csv", ".txt", ".tsv"):
        data_config = config.data.pointed_at("csv", input_path)
    else:
        raise InputError(f"--input {input_path}: expected a .csv or .parquet file, or a folder of .parquet files")
    writer = TableWriter(output)
    engine = DuckDBEngine(config.engine)
    try:
        data = engine.open(data_config)
        with engine.errors(data.description):
            prepared = prepare_contract_feed(engine.connection, data.handle, config, as_of=as_of)  # type: ignore[arg-type]
    finally:
        engine.close()
    active = prepared.full.loc[~prepared.full["churned"], ["customer_id", "cohort", "renewals", "price"]].copy()
    active["cohort"] = active["cohort"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
    scores = model.predict(None, active.reset_index(drop=True))
    with writer:
        writer.write(active.reset_index(drop=True).merge(scores, on="customer_id", how="left"))
    return len(active), prepared.ledger
