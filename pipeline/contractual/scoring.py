"""``clv score`` with a registered subscription model: a billing feed prepared with the model's own config,
as of a date, and its active subscribers scored (the churned ones have nothing left to score). The rows
quarantined go to ``<stem>.quarantine.parquet`` beside the scores, as the non-contractual ``clv score`` writes
them: every source column as text under its source name, then ``reason``, sorted by reason, then by the
columns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from models.subscription_model import SubscriptionModel
from pipeline.commands.business_feed import opened_feed, registered_business_model
from pipeline.commands.score import ScoreResult, quarantine_path
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.outputs import TableWriter, write_relation

__all__ = ["score_subscription_file"]


def score_subscription_file(model_uri: str, input_path: Path, output: Path, as_of: dt.date) -> ScoreResult | None:
    """Score the subscribers of ``input_path`` active at ``as_of``: what was scored (``customers``: the active
    subscribers), the ledger and the quarantine file; None when ``model_uri`` does not name a registered
    subscription model (tagged ``business.type: contractual``). The quarantined rows, if any, are written to
    :func:`pipeline.commands.score.quarantine_path` of ``output``."""
    found = registered_business_model(model_uri, "contractual", SubscriptionModel, "subscription model")
    if found is None:
        return None
    model, config = found
    writer = TableWriter(output)  # checks the output suffix before any work
    with opened_feed(config, input_path) as (engine, data, relation):
        with engine.errors(data.description):
            prepared = prepare_contract_feed(
                engine.connection, relation, config, as_of, data.description, data.column_names
            )
        active = prepared.full.loc[~prepared.full["churned"], ["customer_id", "cohort", "renewals", "price"]].copy()
        active["cohort"] = active["cohort"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
        scores = model.predict(None, active.reset_index(drop=True))
        with writer:
            writer.write(active.reset_index(drop=True).merge(scores, on="customer_id", how="left"))
        quarantine = None
        if prepared.ledger.rows_quarantined:
            with engine.errors(data.description):
                # Under the source's names and sorted, as the non-contractual job writes it.
                quarantine = write_relation(engine.connection.from_df(prepared.quarantine), quarantine_path(output))
    return ScoreResult(model_uri, as_of, prepared.ledger, len(active), output, quarantine)
