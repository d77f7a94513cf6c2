"""The discrete training workflow end to end on a feed (no tracking store): when the plain BG/BB fit does not
converge, the penalized fit (``fit.remedies.penalizers``), with its reason; one line when none converges."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.opportunity_model import OUTPUT_COLUMNS
from pipeline.config import Config, parse_config
from pipeline.discrete.workflow import DiscreteResult, train_discrete
from pipeline.engines import open_engine
from pipeline.errors import InputError
from tests.discrete_feed import as_events, as_invoice_lines, discrete_feed


def _free_repeat_feed(path: Path) -> None:
    """First purchases of 25, every repeat purchase of 0: the same chance to buy for every customer (no
    heterogeneity), where BG/BB's maximum likelihood runs off to infinite parameters."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(1000):
        t, k = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300))), 0
        while t < pd.Timestamp("2022-12-31"):
            rows.append((f"c{c}", t.strftime("%Y-%m-%d"), 25.0 if k == 0 else 0.0))
            k += 1
            t += pd.Timedelta(days=int(rng.integers(20, 200)))
            if rng.random() < 0.3:
                break
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)


def _config(path: Path, penalizers: list[float] | None = None) -> Config:
    fit = {} if penalizers is None else {"fit": {"remedies": {"penalizers": penalizers}}}
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
            **fit,
        }
    )


def test_a_bgbb_fit_that_does_not_converge_takes_the_penalized_fit(tmp_path: Path) -> None:
    """Zero-amount repeat purchases are purchases (``prepare.zero_amount: keep``), so this feed reaches the fit;
    its plain fit does not converge: the smallest penalizer that gives one is used, and the reason recorded."""
    path = tmp_path / "zero.csv"
    _free_repeat_feed(path)
    config = _config(path)
    engine = open_engine(config.engine)
    try:
        result = train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()
    fit = result.validation.fit
    assert fit.penalizer == 0.001
    assert fit.remedy == "penalizer 0.001 (BG/BB: the maximum-likelihood fit did not converge)"
    assert fit.params.as_dict() == pytest.approx(
        {"alpha": 1.242, "beta": 6.812, "gamma": 0.09857, "delta": 1.889}, rel=1e-3
    )
    assert np.isfinite(result.validation.metrics["purchases_mae"])


def test_without_a_remedy_that_converges_the_job_ends_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "zero.csv"
    _free_repeat_feed(path)
    config = _config(path, [])  # no remedy to try
    engine = open_engine(config.engine)
    try:
        with pytest.raises(InputError, match=r"cannot validate BG/BB on this feed: BG/BB: the maximum-likelihood fit"):
            train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()


def _train_feed(path: Path, frame: pd.DataFrame, columns: Mapping[str, object], **fit: object) -> DiscreteResult:
    frame.to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date", **columns}},
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
            **({"fit": fit} if fit else {}),
        }
    )
    engine = open_engine(config.engine)
    try:
        return train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DiscreteResult]:
    """The generated feed trained three ways: with its amounts, as invoice lines, as events."""
    folder, feed = tmp_path_factory.mktemp("feeds"), discrete_feed()
    quantity = {"amount": None, "quantity": "quantity", "unit_price": "unit_price"}
    return {
        "amounts": _train_feed(folder / "amounts.csv", feed, {}),
        "lines": _train_feed(folder / "lines.csv", as_invoice_lines(feed), quantity),
        "events": _train_feed(folder / "events.csv", as_events(feed), {"amount": None}),
    }


def _params(result: DiscreteResult) -> tuple[dict[str, float], dict[str, float]]:
    assert result.production_fit is not None
    return result.validation.fit.params.as_dict(), result.production_fit.params.as_dict()


def _same_frames(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal frames, every column exactly: the money ones too (spend is added up as exact integers of 1/SCALE)."""
    pd.testing.assert_frame_equal(found, expected, check_exact=True)


def test_a_quantity_times_unit_price_feed_is_its_amount_feed(feeds: dict[str, DiscreteResult]) -> None:
    """Invoice lines (quantity x unit price) give the amount feed's histories, BG/BB fits, spend model and scores."""
    lines, amounts = feeds["lines"], feeds["amounts"]
    assert lines.histories.has_amounts
    _same_frames(lines.histories.full, amounts.histories.full)
    _same_frames(lines.histories.calibration, amounts.histories.calibration)
    assert lines.histories.ledger == amounts.histories.ledger
    assert _params(lines) == _params(amounts)  # exactly: BG/BB reads the (x, t_x, n) counts only
    assert lines.validation.metrics == amounts.validation.metrics
    assert lines.spend is not None
    assert amounts.spend is not None
    assert lines.spend.fit.params == amounts.spend.fit.params  # exactly: the same mean spends
    assert lines.scores is not None
    assert amounts.scores is not None
    assert "clv" in lines.scores.columns
    _same_frames(lines.scores, amounts.scores)


def test_an_event_feed_fits_the_amount_feeds_bgbb_without_money(feeds: dict[str, DiscreteResult]) -> None:
    """BG/BB reads only (x, t_x, n): an event feed of the same rows gives the same fits and purchase scores; it
    has no spend model, and no money column anywhere (histories, holdout, model, scores)."""
    events, amounts = feeds["events"], feeds["amounts"]
    assert not events.histories.has_amounts
    without_money = amounts.histories.full.drop(columns="monetary_value")
    pd.testing.assert_frame_equal(events.histories.full, without_money, check_exact=True)
    calibration = amounts.histories.calibration.drop(columns="monetary_value")
    pd.testing.assert_frame_equal(events.histories.calibration, calibration, check_exact=True)
    assert events.histories.ledger == amounts.histories.ledger
    assert _params(events) == _params(amounts)
    assert events.validation.metrics == amounts.validation.metrics
    assert events.spend is None
    assert events.model is not None
    assert events.model.spend is None
    assert "monetary_value" not in events.validation.holdout.columns
    assert events.scores is not None
    assert tuple(events.scores.columns) == ("customer_id", "frequency", "recency", "n_periods", *OUTPUT_COLUMNS[1:])
    assert amounts.scores is not None
    pd.testing.assert_frame_equal(events.scores, amounts.scores.loc[:, list(events.scores.columns)], check_exact=True)


def test_an_event_feed_refuses_a_spend_model_before_any_fit(tmp_path: Path) -> None:
    frame = as_events(discrete_feed(per_cohort=50))
    with pytest.raises(InputError, match=r"^fit.spend_model 'pooled_mean' needs amounts, but the feed has none"):
        _train_feed(tmp_path / "events.csv", frame, {"amount": None}, spend_model="pooled_mean")
