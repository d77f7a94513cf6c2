"""``clv score`` with a discrete (BG/BB) model, on the feed shapes its training config maps: an event feed's model
writes purchases only (no money column), an invoice-line feed's the amount feed's numbers. The registry is replaced
by the model and its config (the end-to-end run through MLflow is in ``test_command``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models import bgbb
from models.gamma_gamma import GammaGammaParams
from models.opportunity_model import OpportunityModel, OpportunityParams
from pipeline.commands.score import quarantine_path
from pipeline.config import Config, parse_config
from pipeline.discrete import scoring
from tests.discrete_feed import as_events, as_invoice_lines, discrete_feed

AS_OF = dt.date(2023, 12, 31)
BGBB = bgbb.BetaGeoBetaBinomParams(1.2, 0.75, 0.66, 2.8)
PURCHASES = ["first_period", "customer_id", "frequency", "recency", "n_periods", "p_alive", "p_alive_next"]


def _score(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, frame: pd.DataFrame, columns: dict[str, Any], params: Any
) -> pd.DataFrame:
    """``frame`` scored as of :data:`AS_OF` by a model of ``params`` trained with the mapping ``columns``."""
    feed = tmp_path / f"feed-{len(list(tmp_path.iterdir()))}.csv"
    frame.to_csv(feed, index=False)
    config: Config = parse_config(
        {
            "data": {"source": "csv", "path": "trained-on.csv", "columns": {"timestamp": "date", **columns}},
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )
    model = OpportunityModel()
    model.model = params
    monkeypatch.setattr(scoring, "registered_business_model", lambda *_: (model, config))
    output = feed.with_suffix(".parquet")
    found = scoring.score_opportunity_file("models:/donors@champion", feed, output, AS_OF)
    assert found is not None
    ledger = found.ledger
    assert ledger.rows_in == ledger.rows_used + ledger.rows_quarantined == len(frame)
    assert found.quarantine is None  # a clean feed: no quarantine file
    assert not quarantine_path(output).exists()
    scores = pd.read_parquet(output)
    assert len(scores) == found.customers
    return scores


def test_an_event_feeds_model_scores_purchases_without_money(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    feed = discrete_feed(per_cohort=300)
    events = _score(monkeypatch, tmp_path, as_events(feed), {"amount": None}, OpportunityParams(BGBB))
    assert list(events.columns) == [*PURCHASES, "expected_transactions"]
    # the same purchases as the amount feed scored by the same BG/BB without a spend model
    amounts = _score(monkeypatch, tmp_path, feed, {}, OpportunityParams(BGBB))
    pd.testing.assert_frame_equal(events, amounts, check_exact=True)


def test_invoice_lines_score_as_their_amount_feed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    feed = discrete_feed(per_cohort=300)
    params = OpportunityParams(BGBB, spend=GammaGammaParams(1.8, 4.5, 56.6), discount_rate=0.008)
    quantity = {"amount": None, "quantity": "quantity", "unit_price": "unit_price"}
    lines = _score(monkeypatch, tmp_path, as_invoice_lines(feed), quantity, params)
    amounts = _score(monkeypatch, tmp_path, feed, {}, params)
    assert list(lines.columns) == [
        *PURCHASES[:5],
        "monetary_value",
        *PURCHASES[5:],
        "expected_transactions",
        "expected_order_value",
        "clv",
    ]
    pd.testing.assert_frame_equal(lines, amounts, check_exact=True)  # spend: exact sums of 1/SCALE
