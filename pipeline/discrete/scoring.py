"""``clv score`` with a registered discrete-opportunity (BG/BB) model: a feed prepared with the model's own
config, as of a date, and every customer acquired by then scored (P(alive), expected transactions; with a
spend model, the expected order value and CLV). The rows quarantined go to ``<stem>.quarantine.parquet`` beside
the scores, as the non-contractual and the contractual ``clv score`` write them
(:func:`pipeline.contractual.scoring.write_feed_quarantine`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from models.opportunity_model import OpportunityModel
from pipeline.commands.business_feed import registered_business_model
from pipeline.commands.customers import source_at
from pipeline.commands.score import ScoreResult, quarantine_path
from pipeline.config import Config
from pipeline.contractual.prepare import as_of_config, classified_rows_sql, feed_columns
from pipeline.contractual.scoring import write_feed_quarantine
from pipeline.discrete.prepare import prepare_opportunities
from pipeline.engines import Source
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.engines.source_columns import REASON
from pipeline.engines.sql import DUCKDB
from pipeline.outputs import TableWriter

__all__ = ["score_opportunity_file"]


def score_opportunity_file(model_uri: str, input_path: Path, output: Path, as_of: dt.date) -> ScoreResult | None:
    """Score the customers of ``input_path`` as of ``as_of``: the count scored, the ledger and the quarantine file;
    None when ``model_uri`` does not name a registered discrete model (tagged ``business.type: discrete``). The
    quarantined rows, if any, are written to :func:`pipeline.commands.score.quarantine_path` of ``output``."""
    found = registered_business_model(model_uri, "discrete", OpportunityModel, "BG/BB model")
    if found is None:
        return None
    model, config = found
    writer = TableWriter(output)  # checks the output suffix before any work
    engine = DuckDBEngine(config.engine)
    try:
        data = engine.open(source_at(config.data, input_path))
        assert isinstance(data.handle, duckdb.DuckDBPyRelation)  # opened by the DuckDB engine
        with engine.errors(data.description):
            histories = prepare_opportunities(engine.connection, data.handle, config, as_of, data.description)
        assert model.model is not None
        columns = model.model.input_columns
        customers = histories.full.loc[:, ["first_period", *columns]].reset_index(drop=True)
        customers["first_period"] = customers["first_period"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
        scores = model.predict(None, customers.loc[:, list(columns)])
        with writer:
            writer.write(customers.merge(scores, on="customer_id", how="left"))
        quarantine = None
        if histories.ledger.rows_quarantined:
            with engine.errors(data.description):
                quarantine = _write_quarantine(
                    engine, data, as_of_config(config, as_of), histories.timestamp_format, quarantine_path(output)
                )
    finally:
        engine.close()
    return ScoreResult(model_uri, as_of, histories.ledger, len(customers), output, quarantine)


def _write_quarantine(
    engine: DuckDBEngine, data: Source, config: Config, timestamp_format: str | None, path: Path
) -> Path:
    """The rows of ``data`` the prepare quarantined, written to ``path``: classified again by the SQL the prepare
    classified them with (:func:`pipeline.contractual.prepare.classified_rows_sql`, under ``config`` as of the
    scoring date and the ``timestamp_format`` the prepare read the feed with), so the same rows, with the same
    reasons."""
    relation = data.handle
    assert isinstance(relation, duckdb.DuckDBPyRelation)
    columns = feed_columns(relation)
    classified = classified_rows_sql(config, columns, timestamp_format)
    source = ", ".join(DUCKDB.identifier(c) for c in columns)
    engine.connection.register("tx", relation)
    try:
        rows = engine.connection.sql(f"SELECT {source}, {REASON} FROM ({classified}) WHERE {REASON} IS NOT NULL")
        return write_feed_quarantine(rows, config, data.column_names, path)
    finally:
        engine.connection.unregister("tx")
