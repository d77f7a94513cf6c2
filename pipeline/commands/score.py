"""``clv score``: raw transactions scored with a registered model, prepared with the model's own config."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.challenger_features import serving_input
from models.contract import required_columns
from pipeline import business
from pipeline.commands.customers import source_at
from pipeline.config import Config, parse_config, read_yaml
from pipeline.engines import Engine, Source, open_engine
from pipeline.engines.prepared import Ledger
from pipeline.errors import InputError
from pipeline.outputs import TableWriter
from pipeline.recorder import store

if TYPE_CHECKING:
    from pipeline.contractual.prepare import BillingLedger

__all__ = ["ScoreResult", "quarantine_path", "score_file"]


@dataclass(frozen=True)
class ScoreResult:
    """What ``clv score`` did, whatever the model's business type: the customers scored (a subscription model's
    active subscribers), where every input row went, and the quarantine file (None when no row was quarantined)."""

    model_uri: str
    as_of: dt.date
    ledger: Ledger | BillingLedger
    customers: int
    output: Path
    quarantine: Path | None


def quarantine_path(output: Path) -> Path:
    """Where ``clv score`` writes the rows it quarantined: ``<stem>.quarantine.parquet`` beside ``output`` (every
    business type)."""
    return output.with_name(f"{output.stem}.quarantine.parquet")


def _with_features(
    engine: Engine, data: Source, config: Config, customers: pd.DataFrame, as_of: dt.date, model_uri: str
) -> pd.DataFrame:
    """``customers`` (row for row) with the challenger's features at ``as_of`` from the same transactions."""
    if customers.empty:
        return customers
    try:
        with engine.errors(data.description):
            activity = engine.activity(data, config.prepare, as_of)
        frame = serving_input(customers, activity, as_of)
    except ValueError as exc:  # a ChallengerError too (an engine without the activity table)
        raise InputError(f"{model_uri}: cannot build the blend's features from {data.description}: {exc}") from None
    extra = [c for c in customers.columns if c not in frame.columns]
    return pd.concat([frame, customers[extra].reset_index(drop=True)], axis=1)


def score_file(
    model_uri: str,
    input_path: Path,
    output: Path,
    as_of: dt.date,
    chunk_rows: int = 1_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreResult:
    """``clv score``: prepare raw transactions with the model's own config, score them in chunks, and add the
    business columns that training writes too (``clv_<N>d``, ``value_segment``: ranked over all customers).

    A model that serves the blend also gets the challenger's features, built from the same transactions by
    :func:`models.challenger_features.serving_input` (as training built them), and ranks on the blend's value.
    """
    model, config_yaml = store.load_scoring_model(model_uri)
    config = parse_config(read_yaml(config_yaml), f"{model_uri} (training config)").resolved()
    data_config = source_at(config.data, input_path)
    writer = TableWriter(output)  # checks the output suffix before any work
    engine = open_engine(config.engine)
    data = engine.open(data_config)
    with engine.errors(data.description):
        prepared = engine.prepare_as_of(data, config.prepare, as_of)
    customers = prepared.customers
    params = model.model
    assert params is not None  # loaded with its context
    inputs = list(required_columns(params.has_spend))
    if model.blend is not None:
        inputs = list(model.blend.input_columns())
        customers = _with_features(engine, data, config, customers, as_of, model_uri)
    parts = []
    for start in range(0, len(customers), chunk_rows):
        chunk = customers.iloc[start : start + chunk_rows]
        try:
            scores = model.predict(None, chunk.loc[:, inputs].reset_index(drop=True))
        except ValueError as exc:  # contract or non-finite scores
            raise InputError(f"{model_uri}: cannot score {data.description}: {str(exc).splitlines()[0]}") from None
        if prepared.has_amounts:
            scores["historical_clv"] = chunk["total_spend"].to_numpy()
        parts.append(scores)
        if progress is not None:
            progress(start + len(chunk), len(customers))
    scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if parts:
        scored = business.with_views(params, customers.reset_index(drop=True), scored)  # ranks on the winner's clv
    with writer:
        for start in range(0, len(scored), chunk_rows):
            writer.write(scored.iloc[start : start + chunk_rows])
    quarantine = None
    if prepared.ledger.rows_quarantined:
        with engine.errors(data.description):
            quarantine = engine.write_quarantine(prepared, quarantine_path(output))
    engine.close()
    return ScoreResult(model_uri, as_of, prepared.ledger, len(customers), output, quarantine)
