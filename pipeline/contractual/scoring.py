"""``clv score`` with a registered subscription model: a billing feed prepared with the model's own config,
as of a date, and its active subscribers scored (the churned ones have nothing left to score)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from models.subscription_model import SubscriptionModel
from pipeline.commands.business_feed import prepared_on_duckdb, registered_business_model
from pipeline.contractual.prepare import BillingLedger
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.outputs import TableWriter

__all__ = ["score_subscription_file"]


def score_subscription_file(
    model_uri: str, input_path: Path, output: Path, as_of: dt.date
) -> tuple[int, BillingLedger] | None:
    """Score the subscribers of ``input_path`` active at ``as_of``: the count scored and the ledger; None when
    ``model_uri`` does not name a registered subscription model (tagged ``business.type: contractual``)."""
    found = registered_business_model(model_uri, "contractual", SubscriptionModel, "subscription model")
    if found is None:
        return None
    model, config = found
    writer = TableWriter(output)  # checks the output suffix before any work
    prepared = prepared_on_duckdb(
        config, input_path, lambda con, relation, source: prepare_contract_feed(con, relation, config, as_of, source)
    )
    active = prepared.full.loc[~prepared.full["churned"], ["customer_id", "cohort", "renewals", "price"]].copy()
    active["cohort"] = active["cohort"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
    scores = model.predict(None, active.reset_index(drop=True))
    with writer:
        writer.write(active.reset_index(drop=True).merge(scores, on="customer_id", how="left"))
    return len(active), prepared.ledger
