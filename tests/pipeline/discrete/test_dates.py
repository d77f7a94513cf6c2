"""Text dates DuckDB cannot read (``31/03/2023``) in a discrete feed: the format is detected as the
non-contractual job detects it, so the feed gives the ISO feed's histories, ledger, BG/BB and spend fits and
scores (at training and in ``clv score``); an ambiguous or unreadable feed ends with that job's one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models import bgbb
from models.opportunity_model import OpportunityModel, OpportunityParams
from pipeline.config import Config, parse_config
from pipeline.discrete import scoring
from pipeline.discrete.command import discrete_summary_dict, discrete_summary_text
from pipeline.discrete.prepare import Histories, prepare_opportunities
from pipeline.discrete.workflow import DiscreteResult, train_discrete
from pipeline.engines import open_engine
from pipeline.errors import InputError
from tests.discrete_feed import discrete_feed
from tests.feeds import duckdb_engine, duckdb_relation
from tests.prepare_errors import clv_train_failure, non_contractual_error


def _dated(feed: pd.DataFrame, fmt: str, seed: int = 5) -> pd.DataFrame:
    """``feed`` with its ISO dates written as ``fmt`` (a time of day, when it has one, at random)."""
    days = pd.to_datetime(feed["date"], format="%Y-%m-%d")
    minutes = pd.to_timedelta(pd.Series(range(len(feed))).mul(7919).mod(24 * 60), unit="min")
    return feed.assign(date=(days + minutes.to_numpy()).dt.strftime(fmt))


def _config(path: Path, **data: Any) -> Config:
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}, **data},
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )


def _train(path: Path, frame: pd.DataFrame) -> DiscreteResult:
    frame.to_csv(path, index=False)
    config = _config(path)
    engine = open_engine(config.engine)
    try:
        return train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()


def _prepared(config: Config) -> Histories:
    engine = duckdb_engine(config.engine)
    try:
        source = engine.open(config.data)
        return prepare_opportunities(engine.connection, duckdb_relation(source), config, source=source.description)
    finally:
        engine.close()


def _same_frames(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal frames, every column exactly (the money ones too: spend is added up as exact integers)."""
    pd.testing.assert_frame_equal(found, expected, check_exact=True)


def _same_histories(found: Histories, expected: Histories) -> None:
    _same_frames(found.full, expected.full)
    _same_frames(found.calibration, expected.calibration)
    assert found.ledger == expected.ledger
    assert (found.calibration_end, found.observation_end) == (expected.calibration_end, expected.observation_end)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DiscreteResult]:
    folder, feed = tmp_path_factory.mktemp("dates"), discrete_feed(per_cohort=1000)
    return {"iso": _train(folder / "iso.csv", feed), "dmy": _train(folder / "dmy.csv", _dated(feed, "%d/%m/%Y"))}


def test_a_day_first_feed_trains_as_its_iso_feed(trained: dict[str, DiscreteResult]) -> None:
    iso, dmy = trained["iso"], trained["dmy"]
    assert (iso.histories.timestamp_format, dmy.histories.timestamp_format) == (None, "%d/%m/%Y")
    _same_histories(dmy.histories, iso.histories)
    assert dmy.validation.fit.params == iso.validation.fit.params
    assert dmy.validation.metrics == iso.validation.metrics
    assert dmy.production_fit is not None
    assert iso.production_fit is not None
    assert dmy.production_fit.params == iso.production_fit.params
    assert dmy.spend is not None
    assert iso.spend is not None
    assert dmy.spend.fit.params == iso.spend.fit.params
    assert dmy.scores is not None
    assert iso.scores is not None
    _same_frames(dmy.scores, iso.scores)


def test_the_detected_format_is_in_the_summary(trained: dict[str, DiscreteResult]) -> None:
    assert discrete_summary_dict(trained["dmy"])["data"]["timestamp_format"] == "%d/%m/%Y"
    assert discrete_summary_dict(trained["iso"])["data"]["timestamp_format"] is None
    data_line = discrete_summary_text(trained["dmy"]).splitlines()[1]
    assert data_line.endswith("customers; timestamps read as %d/%m/%Y (detected)")
    assert "timestamps read as" not in discrete_summary_text(trained["iso"])


@pytest.mark.parametrize("fmt", ["%m/%d/%Y %H:%M", "%Y.%m.%d"])
def test_other_formats_prepare_as_the_iso_feed(tmp_path: Path, fmt: str) -> None:
    feed = discrete_feed(per_cohort=200)
    feed.to_csv(tmp_path / "iso.csv", index=False)
    _dated(feed, fmt).to_csv(tmp_path / "dated.csv", index=False)
    found = _prepared(_config(tmp_path / "dated.csv"))
    assert found.timestamp_format == fmt
    _same_histories(found, _prepared(_config(tmp_path / "iso.csv")))


def test_clv_score_detects_the_scoring_feeds_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``clv score`` prepares the feed with the model's config: a day-first feed scores as its ISO feed."""
    feed = discrete_feed(per_cohort=200)
    model = OpportunityModel()
    model.model = OpportunityParams(bgbb.BetaGeoBetaBinomParams(1.2, 0.75, 0.66, 2.8))
    config = _config(tmp_path / "trained-on.csv", columns={"timestamp": "date", "amount": None})
    monkeypatch.setattr(scoring, "registered_business_model", lambda *_: (model, config))
    scored = {}
    for name, frame in (("iso", feed), ("dmy", _dated(feed, "%d/%m/%Y"))):
        frame.drop(columns="amount").to_csv(tmp_path / f"{name}.csv", index=False)
        found = scoring.score_opportunity_file(
            "models:/m@champion", tmp_path / f"{name}.csv", tmp_path / f"{name}.parquet", dt.date(2023, 12, 31)
        )
        assert found is not None
        scored[name] = pd.read_parquet(tmp_path / f"{name}.parquet")
    assert len(scored["dmy"]) == 400
    pd.testing.assert_frame_equal(scored["dmy"], scored["iso"], check_exact=True)


def test_an_ambiguous_feed_ends_with_the_non_contractual_jobs_line(tmp_path: Path) -> None:
    rows = [("a", "01/02/2022", 10.0), ("a", "03/04/2023", 10.0), ("b", "05/06/2022", 30.0)]
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(tmp_path / "f.csv", index=False)
    config = _config(tmp_path / "f.csv")
    with pytest.raises(InputError) as error:
        _prepared(config)
    assert str(error.value) == non_contractual_error(config)
    assert str(error.value).endswith(
        "f.csv: timestamps such as '03/04/2023' read as '%m/%d/%Y' (2023-03-04 00:00) or '%d/%m/%Y' "
        "(2023-04-03 00:00); set data.timestamp_format"
    )


def test_an_unreadable_feed_says_why_as_the_non_contractual_job(tmp_path: Path) -> None:
    rows = [("a", "31/13/2022", 10.0), ("b", "soon", 30.0), ("c", "2022-05-01", "x")]
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(tmp_path / "f.csv", index=False)
    config = _config(tmp_path / "f.csv")
    with pytest.raises(InputError) as error:
        _prepared(config)
    assert str(error.value) == non_contractual_error(config).replace("no usable transactions", "no usable purchases")
    assert "f.csv: no usable purchases after cleaning (1 invalid_amount, 2 invalid_timestamp); timestamps such as " in (
        str(error.value)
    )


def test_a_configured_format_the_feed_is_not_in_is_named_as_the_non_contractual_job(tmp_path: Path) -> None:
    rows = [("a", "31.01.2022", 10.0), ("b", "28.02.2022", 30.0)]
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(tmp_path / "f.csv", index=False)
    config = _config(tmp_path / "f.csv", timestamp_format="%Y-%m-%d")
    with pytest.raises(InputError) as error:
        _prepared(config)
    assert str(error.value) == non_contractual_error(config).replace("no usable transactions", "no usable purchases")
    assert str(error.value).endswith(
        "timestamps such as '28.02.2022' could not be read as data.timestamp_format '%Y-%m-%d': correct it, or "
        "remove it to let the job detect the format"
    )


def test_clv_train_on_an_ambiguous_feed_prints_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("a", "01/02/2022", 10.0), ("a", "03/04/2023", 10.0), ("b", "05/06/2022", 30.0)]
    job = "prepare: {calibration_end: 2022-12-31}\nbusiness: {type: discrete, billing_period: year}\n"
    assert clv_train_failure(tmp_path, monkeypatch, capsys, rows, "date", job) == (
        2,
        [
            "clv: error: f.csv: timestamps such as '03/04/2023' read as '%m/%d/%Y' (2023-03-04 00:00) or "
            "'%d/%m/%Y' (2023-04-03 00:00); set data.timestamp_format"
        ],
    )
