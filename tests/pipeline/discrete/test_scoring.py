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


def test_the_quarantined_rows_are_written_as_the_non_contractual_score_writes_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It scored and wrote no quarantine file. Now <stem>.quarantine.parquet beside the scores: every source column
    as text under its source name (``date``, mapped as the timestamp), then ``reason``, sorted by reason, then by
    the columns; the DuckDB engine's quarantine of the same feed as of the same date, row for row."""
    from pipeline.engines import open_engine

    rows = [
        ("a", "2023-01-10", "20.0"),
        ("a", "2023-03-05", "35.5"),
        ("b", "2023-02-14", "10.0"),
        ("b", "2023-11-30", "12.0"),
        ("c", "2023-06-01", "50.0"),
        ("", "2023-04-01", "15.0"),  # no customer
        ("b", "not a date", "9.0"),
        ("c", "2024-01-15", "30.0"),  # after --as-of
        ("a", "2023-05-05", "abc"),
    ]
    feed = tmp_path / "gifts.csv"
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(feed, index=False)
    config: Config = parse_config(
        {
            "data": {"source": "csv", "path": str(feed), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )
    model = OpportunityModel()
    model.model = OpportunityParams(BGBB)
    monkeypatch.setattr(scoring, "registered_business_model", lambda *_: (model, config))
    found = scoring.score_opportunity_file("models:/gifts@champion", feed, tmp_path / "scored.csv", AS_OF)
    assert found is not None
    ledger = found.ledger
    assert (found.customers, ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (3, 9, 5, 4)
    assert found.quarantine == tmp_path / "scored.quarantine.parquet"
    assert pd.read_csv(tmp_path / "scored.csv")["customer_id"].tolist() == ["a", "b", "c"]
    written = pd.read_parquet(found.quarantine)
    assert list(written.columns) == ["customer_id", "date", "amount", "reason"]
    assert written.drop(columns="customer_id").to_dict("list") == {
        "date": ["2024-01-15", "2023-05-05", "not a date", "2023-04-01"],
        "amount": ["30.0", "abc", "9.0", "15.0"],
        "reason": ["after_observation_end", "invalid_amount", "invalid_timestamp", "missing_customer_id"],
    }
    assert written["customer_id"].tolist()[:3] == ["c", "a", "b"]
    assert written["customer_id"].isna().tolist() == [False, False, False, True]  # the empty id, read as NULL
    engine = open_engine(config.engine)
    try:
        prepared = engine.prepare_as_of(engine.open(config.data), config.prepare, AS_OF)
        expected = pd.read_parquet(engine.write_quarantine(prepared, tmp_path / "non_contractual.parquet"))
    finally:
        engine.close()
    pd.testing.assert_frame_equal(written, expected)
