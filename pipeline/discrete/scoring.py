"""``clv score`` with a registered discrete-opportunity (BG/BB) model: a feed prepared with the model's own
config, as of a date, and every customer acquired by then scored (P(alive), expected transactions; with a
spend model, the expected order value and CLV)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from models.opportunity_model import OpportunityModel
from pipeline.commands.business_feed import prepared_on_duckdb, registered_business_model
from pipeline.commands.score import ScoreResult
from pipeline.discrete.prepare import prepare_opportunities
from pipeline.outputs import TableWriter

__all__ = ["score_opportunity_file"]


def score_opportunity_file(model_uri: str, input_path: Path, output: Path, as_of: dt.date) -> ScoreResult | None:
    """Score the customers of ``input_path`` as of ``as_of``: the count scored and the ledger (no quarantine file
    yet); None when ``model_uri`` does not name a registered discrete model (tagged ``business.type: discrete``)."""
    found = registered_business_model(model_uri, "discrete", OpportunityModel, "BG/BB model")
    if found is None:
        return None
    model, config = found
    writer = TableWriter(output)  # checks the output suffix before any work
    histories = prepared_on_duckdb(
        config, input_path, lambda con, relation, source: prepare_opportunities(con, relation, config, as_of, source)
    )
    assert model.model is not None
    columns = model.model.input_columns
    customers = histories.full.loc[:, ["first_period", *columns]].reset_index(drop=True)
    customers["first_period"] = customers["first_period"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
    scores = model.predict(None, customers.loc[:, list(columns)])
    with writer:
        writer.write(customers.merge(scores, on="customer_id", how="left"))
    return ScoreResult(model_uri, as_of, histories.ledger, len(customers), output, None)
