"""Text dates DuckDB cannot read (``31/03/2024``) in a contractual feed: the format is detected as the
non-contractual job detects it, so the feed gives the ISO feed's subscribers, ledger and sBG fits; an ambiguous
or unreadable feed ends with the non-contractual job's one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.config import Config, parse_config
from pipeline.contractual import report
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.workflow import ContractualResult
from pipeline.errors import InputError
from tests.prepare_errors import clv_train_failure, non_contractual_error
from tests.subscription_feed import (
    OBSERVATION_END,
    prepared_subscriptions,
    subscription_feed,
    subscriptions_table,
    train_subscriptions,
)


def _dated(frame: pd.DataFrame, columns: list[str], fmt: str) -> pd.DataFrame:
    """``frame`` with its ISO dates in ``columns`` written as ``fmt`` (empty and unreadable values kept)."""
    out = frame.copy()
    for column in columns:
        parsed = pd.to_datetime(out[column], format="%Y-%m-%d", errors="coerce")
        out[column] = parsed.dt.strftime(fmt).where(parsed.notna(), out[column])
    return out


def _clean(feed: pd.DataFrame) -> pd.DataFrame:
    """The feed without its unreadable date: detection needs every sampled value to read (as in the
    non-contractual job), so a feed with one is read as DuckDB reads it."""
    return feed[feed["charge_date"] != "not a date"].reset_index(drop=True)


def _config(path: Path, timestamp: str = "charge_date", **business: Any) -> Config:
    columns: dict[str, object] = {"timestamp": timestamp}
    if timestamp == "start":
        columns["amount"] = "price"
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": columns},
            "prepare": {"calibration_end": "2023-12-31", "observation_end": str(OBSERVATION_END)},
            "business": {"type": "contractual", **business},
        }
    )


def _train(path: Path, frame: pd.DataFrame) -> ContractualResult:
    frame.to_csv(path, index=False)
    return train_subscriptions(_config(path))


def _same_subscribers(found: Subscribers, expected: Subscribers) -> None:
    pd.testing.assert_frame_equal(found.full, expected.full, check_exact=True)
    pd.testing.assert_frame_equal(found.calibration, expected.calibration, check_exact=True)
    assert found.ledger == expected.ledger
    assert (found.calibration_end, found.observation_end) == (expected.calibration_end, expected.observation_end)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ContractualResult]:
    folder, feed = tmp_path_factory.mktemp("dates"), _clean(subscription_feed(per_cohort=150))
    return {
        "iso": _train(folder / "iso.csv", feed),
        "dmy": _train(folder / "dmy.csv", _dated(feed, ["charge_date"], "%d/%m/%Y")),
    }


def test_a_day_first_feed_trains_as_its_iso_feed(trained: dict[str, ContractualResult]) -> None:
    iso, dmy = trained["iso"], trained["dmy"]
    assert (iso.subscribers.timestamp_format, dmy.subscribers.timestamp_format) == (None, "%d/%m/%Y")
    _same_subscribers(dmy.subscribers, iso.subscribers)
    assert dmy.subscribers.ledger.reasons == {"missing_customer_id": 1, "after_observation_end": 1}
    assert dmy.calibration_fits.params == iso.calibration_fits.params
    assert dmy.validation.metrics == iso.validation.metrics
    assert dmy.gate.passed
    assert iso.production_fits is not None
    assert dmy.production_fits is not None
    assert dmy.production_fits.params == iso.production_fits.params
    assert dmy.scores is not None
    assert iso.scores is not None
    pd.testing.assert_frame_equal(dmy.scores, iso.scores, check_exact=True)


def test_the_detected_format_is_in_the_summary(trained: dict[str, ContractualResult]) -> None:
    """As in the non-contractual job: ``data.timestamp_format`` in the summary JSON, and the printed data line
    says the timestamps were read with a detected format (nothing for the ISO feed)."""
    assert report.summary_dict(trained["dmy"])["data"]["timestamp_format"] == "%d/%m/%Y"
    assert report.summary_dict(trained["iso"])["data"]["timestamp_format"] is None
    data_line = report.summary_text(trained["dmy"]).splitlines()[1]
    assert data_line.endswith("subscribers; timestamps read as %d/%m/%Y (detected)")
    assert "timestamps read as" not in report.summary_text(trained["iso"])


@pytest.mark.parametrize("fmt", ["%m/%d/%Y %H:%M", "%Y.%m.%d"])
def test_other_formats_prepare_as_the_iso_feed(tmp_path: Path, fmt: str) -> None:
    feed = _clean(subscription_feed(per_cohort=40, cohorts=12))
    feed.to_csv(tmp_path / "iso.csv", index=False)
    dated = _dated(feed, ["charge_date"], fmt)
    dated.to_csv(tmp_path / "dated.csv", index=False)
    found = prepared_subscriptions(_config(tmp_path / "dated.csv"))
    assert found.timestamp_format == fmt
    _same_subscribers(found, prepared_subscriptions(_config(tmp_path / "iso.csv")))


def test_a_subscriptions_table_reads_its_start_and_end_with_the_detected_format(tmp_path: Path) -> None:
    table = subscriptions_table(_clean(subscription_feed(per_cohort=40, cohorts=12)))
    table = table[table["start"] != "not a date"]
    table.to_csv(tmp_path / "iso.csv", index=False)
    _dated(table, ["start", "end"], "%d/%m/%Y").to_csv(tmp_path / "dmy.csv", index=False)
    iso = prepared_subscriptions(_config(tmp_path / "iso.csv", "start", input="subscriptions"))
    dmy = prepared_subscriptions(_config(tmp_path / "dmy.csv", "start", input="subscriptions"))
    assert dmy.timestamp_format == "%d/%m/%Y"
    _same_subscribers(dmy, iso)
    assert dmy.ledger.reasons["invalid_end"] == 1  # "soon" is no date in any format
    assert dmy.ledger.reasons["end_not_after_start"] == 1


def test_an_ambiguous_feed_ends_with_the_non_contractual_jobs_line(tmp_path: Path) -> None:
    rows = [("a", "01/02/2023", 10.0), ("a", "01/03/2023", 10.0), ("b", "05/06/2023", 30.0)]
    pd.DataFrame(rows, columns=["customer_id", "charge_date", "amount"]).to_csv(tmp_path / "f.csv", index=False)
    config = _config(tmp_path / "f.csv")
    with pytest.raises(InputError) as error:
        prepared_subscriptions(config)
    assert str(error.value) == non_contractual_error(config)
    assert str(error.value).endswith(
        "f.csv: timestamps such as '01/02/2023' read as '%m/%d/%Y' (2023-01-02 00:00) or '%d/%m/%Y' "
        "(2023-02-01 00:00); set data.timestamp_format"
    )


def test_an_unreadable_feed_says_why_as_the_non_contractual_job(tmp_path: Path) -> None:
    rows = [("a", "31/13/2023", 10.0), ("b", "soon", 30.0), ("", "2023-01-01", 10.0)]
    pd.DataFrame(rows, columns=["customer_id", "charge_date", "amount"]).to_csv(tmp_path / "f.csv", index=False)
    config = _config(tmp_path / "f.csv")
    with pytest.raises(InputError) as error:
        prepared_subscriptions(config)
    assert str(error.value) == non_contractual_error(config).replace("no usable transactions", "no usable charges")
    assert str(error.value).endswith(
        "f.csv: no usable charges after cleaning (2 invalid_timestamp, 1 missing_customer_id); timestamps such as "
        "'31/13/2023' could not be read: set data.timestamp_format (a strptime format)"
    )


def test_a_configured_format_is_used_as_given(tmp_path: Path) -> None:
    """``data.timestamp_format`` is not second-guessed (the ambiguous feed above, read day first)."""
    rows = [("a", "01/02/2023", 10.0), ("a", "01/03/2023", 10.0), ("b", "05/06/2023", 30.0)]
    pd.DataFrame(rows, columns=["customer_id", "charge_date", "amount"]).to_csv(tmp_path / "f.csv", index=False)
    config = _config(tmp_path / "f.csv")
    config = config.model_copy(update={"data": config.data.model_copy(update={"timestamp_format": "%d/%m/%Y"})})
    prepared = prepared_subscriptions(config)
    assert prepared.timestamp_format == "%d/%m/%Y"
    assert prepared.full["first_charge"].tolist() == [pd.Timestamp("2023-02-01"), pd.Timestamp("2023-06-05")]


def test_clv_train_on_an_ambiguous_feed_prints_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("a", "01/02/2023", 10.0), ("a", "01/03/2023", 10.0), ("b", "05/06/2023", 30.0)]
    job = "prepare: {calibration_end: 2023-03-31}\nbusiness: {type: contractual}\n"
    assert clv_train_failure(tmp_path, monkeypatch, capsys, rows, "charge_date", job) == (
        2,
        [
            "clv: error: f.csv: timestamps such as '01/02/2023' read as '%m/%d/%Y' (2023-01-02 00:00) or "
            "'%d/%m/%Y' (2023-02-01 00:00); set data.timestamp_format"
        ],
    )
