"""``clv score`` with a registered discrete-opportunity (BG/BB) model: a feed prepared with the model's own
config, as of a date, and every customer acquired by then scored (P(alive), expected transactions; with a
spend model, the expected order value and CLV). The rows quarantined go to ``<stem>.quarantine.parquet`` beside
the scores, as the non-contractual and the contractual ``clv score`` write them (every source column as text
under its source name, then ``reason``, sorted)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from models.opportunity_model import OpportunityModel
from pipeline.commands.business_feed import opened_feed, registered_business_model
from pipeline.commands.score import ScoreResult, quarantine_path
from pipeline.discrete.prepare import prepare_opportunities
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
                rows = engine.connection.from_df(histories.quarantine)
                quarantine = write_relation(rows, quarantine_path(output))
    return ScoreResult(model_uri, as_of, histories.ledger, len(customers), output, quarantine)
