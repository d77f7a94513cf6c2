"""``clv score`` with a registered discrete-opportunity (BG/BB) model: a feed prepared with the model's own
config, as of a date, and every customer acquired by then scored (P(alive), expected transactions; with a
spend model, the expected order value and CLV). The rows quarantined go to ``<stem>.quarantine.parquet`` beside
the scores, as the non-contractual and the contractual ``clv score`` write them (every source column as text
under its source name, then ``reason``, sorted)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from models.opportunity_model import OpportunityModel
from pipeline.commands.business_feed import opened_feed, registered_business_model
from pipeline.commands.score import ScoreResult, quarantine_path
from pipeline.config import Config
from pipeline.contractual.prepare import (
    as_of_config,
    classified_rows_sql,
    feed_columns,
    feed_layout,
    quarantine_rows_sql,
)
from pipeline.discrete.prepare import prepare_opportunities
from pipeline.engines import Source
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.outputs import TableWriter, write_relation

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
    with opened_feed(config, input_path) as (engine, data, relation):
        with engine.errors(data.description):
            histories = prepare_opportunities(
                engine.connection, relation, config, as_of, data.description, data.column_names
            )
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
    return ScoreResult(model_uri, as_of, histories.ledger, len(customers), output, quarantine)


def _write_quarantine(
    engine: DuckDBEngine, data: Source, config: Config, timestamp_format: str | None, path: Path
) -> Path:
    """The rows of ``data`` the prepare quarantined, written to ``path``: classified again by the SQL the prepare
    classified them with (:func:`pipeline.contractual.prepare.classified_rows_sql`, under ``config`` as of the
    scoring date and the ``timestamp_format`` the prepare read the feed with), so the same rows, with the same
    reasons, under the source's names and sorted as the non-contractual job writes them
    (:func:`pipeline.contractual.prepare.quarantine_rows_sql`)."""
    relation = data.handle
    assert isinstance(relation, duckdb.DuckDBPyRelation)
    columns = feed_columns(relation)
    feed = feed_layout(config, list(columns), data.column_names, data.description)
    engine.connection.register("tx", relation)
    try:
        engine.connection.execute(
            f"CREATE OR REPLACE TEMP VIEW classified AS {classified_rows_sql(config, columns, feed, timestamp_format)}"
        )
        return write_relation(engine.connection.sql(quarantine_rows_sql(feed)), path)
    finally:
        engine.connection.execute("DROP VIEW IF EXISTS classified")
        engine.connection.unregister("tx")
