"""Advice on the data: a subscription feed is told to switch to contractual; CDNOW is not; flat spend is flagged;
invoice lines without their product column are told how to keep the lines taken for double loads."""

from __future__ import annotations

from dataclasses import astuple, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.clv import DAYS_PER_UNIT
from pipeline.advice import (
    ADVICE_SHARE,
    FeedShape,
    advice_lines,
    advise_prepared,
    amount_advice,
    charges_summary,
    duplicate_advice,
    feed_shape,
    padded_id_advice,
    prepared_advice,
    timestamp_advice,
)
from pipeline.config import Config, CsvOptions, DataConfig, PrepareConfig, parse_config
from pipeline.contractual.report import summary_dict, summary_text
from pipeline.discrete.workflow import DiscreteResult, train_discrete
from pipeline.engines import open_engine
from pipeline.engines.prepared import Ledger
from pipeline.recorder import store
from pipeline.recorder.discrete import record_discrete
from pipeline.workflow import prepare_data, train
from tests.discrete_feed import OBSERVATION_END as DISCRETE_END
from tests.discrete_feed import discrete_feed
from tests.feeds import RETAIL_MAPPING, RetailFeed, online_retail_lines
from tests.subscription_feed import (
    CALIBRATION_END,
    DIRTY_ROWS,
    OBSERVATION_END,
    subscription_feed,
    train_subscriptions,
    write_subscription_feed,
)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_subscription_feed(tmp_path_factory.mktemp("feed") / "billing.csv", per_cohort=100, cohorts=12)


def test_a_subscription_feed_run_as_non_contractual_is_told_to_switch(feed: Path) -> None:
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(feed), "columns": {"timestamp": "charge_date"}},
            "prepare": {"calibration_end": "2022-12-31"},
        }
    )
    prepared, _ = prepare_data(config)
    shape = feed_shape(prepared.full, DAYS_PER_UNIT["week"])
    assert shape.period == "month"
    assert shape.regular_share == 1.0
    assert shape.constant_amount_share == 1.0
    lines = advise_prepared(prepared.full, DAYS_PER_UNIT["week"], "non_contractual")
    assert len(lines) == 1
    assert lines[0].startswith("advice: this feed looks like subscriptions")
    assert "set business.type: contractual (billing_period: month)" in lines[0]
    assert advise_prepared(prepared.full, DAYS_PER_UNIT["week"], "contractual") == ()


def test_cdnow_gets_no_advice_as_non_contractual_and_a_hint_as_contractual() -> None:
    prepared, _ = prepare_data(parse_config({"data": {"source": "cdnow_sample"}}))
    shape = feed_shape(prepared.full, DAYS_PER_UNIT["week"])
    assert shape.period is None
    assert shape.regular_share < 0.2
    assert shape.constant_amount_share < 0.2
    assert advice_lines(shape, "non_contractual") == ()
    (hint,) = advice_lines(shape, "contractual")
    assert hint == (
        f"advice: only {shape.regular_share:.0%} of repeat customers are billed at a regular period (a week, a month "
        "or a year): this feed may not be contractual (business.type: non_contractual)"
    )


def test_regular_billing_at_many_prices_gets_no_hint_as_contractual() -> None:
    """Subscribers billed every week at 13 plan prices: more prices than PRICE_LEVELS, still a subscription feed
    (the hint said 'only 100% of repeat customers are billed at a regular period and 77% pay a fixed price')."""
    shape = FeedShape(repeat_customers=500, period="week", regular_share=1.0, constant_amount_share=0.77, spend_cv=0.4)
    assert advice_lines(shape, "contractual") == ()


def test_spend_without_spread_cannot_inform_gamma_gamma() -> None:
    rng = np.random.default_rng(1)
    full = pd.DataFrame(
        {"frequency": rng.integers(2, 9, 500), "recency": rng.uniform(5, 50, 500), "monetary_value": 25.0}
    )
    shape = feed_shape(full, 7.0)
    assert shape.spend_cv == 0.0
    assert shape.period is None
    (line,) = advice_lines(shape, "non_contractual")
    assert "cannot inform Gamma-Gamma" in line


def test_charges_summary_counts_days_and_mean_repeat_charge() -> None:
    charges = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "charge_date": ["2024-01-05", "2024-02-05", "2024-03-05", "2024-01-09"],
            "amount": [10.0, 12.0, 14.0, 30.0],
        }
    )
    summary = charges_summary(charges).set_index("customer_id")
    assert summary.loc["a", "frequency"] == 2
    assert summary.loc["a", "recency"] == 60.0
    assert summary.loc["a", "monetary_value"] == 13.0
    assert summary.loc["b", "frequency"] == 0
    assert summary.loc["b", "monetary_value"] == 0.0


PREPARE = {"calibration_end": "2011-09-09"}


@pytest.fixture(scope="module")
def retail() -> RetailFeed:
    return online_retail_lines()


def _retail_data(folder: Path, lines: pd.DataFrame) -> dict[str, object]:
    lines.to_csv(folder / "retail.csv", index=False)
    return {"source": "csv", "path": str(folder / "retail.csv"), "columns": RETAIL_MAPPING}


def test_invoice_lines_with_their_product_column_get_no_duplicate_advice(retail: RetailFeed, tmp_path: Path) -> None:
    """With StockCode and Description, only the 18 double-loaded lines are duplicates (0.1%): no advice."""
    prepared, _ = prepare_data(parse_config({"data": _retail_data(tmp_path, retail.lines), "prepare": PREPARE}))
    assert prepared.ledger.quarantined["duplicate"] == retail.true_duplicates == 18
    assert duplicate_advice(prepared.ledger, PrepareConfig.model_validate(PREPARE)) == ()


def test_invoice_lines_without_their_product_column_are_told_how_to_keep_them(
    retail: RetailFeed, tmp_path: Path
) -> None:
    """Without StockCode and Description, two products at the same quantity and price on one invoice are the same
    row: a thousand real lines are quarantined as double loads, and the job's advice names the two ways to keep
    them."""
    data = _retail_data(tmp_path, retail.lines.drop(columns=["StockCode", "Description"]))
    config = parse_config({"data": data, "prepare": PREPARE})
    engine = open_engine(config.engine)
    try:  # the whole job: its warnings carry the advice (printed, and in the summary and the report)
        result = train(config, engine, engine.open(config.resolved().data))
    finally:
        engine.close()
    ledger = result.prepared.ledger
    duplicates = ledger.quarantined["duplicate"]
    # Measured: 1,258 rows (6.1% of the input) repeat another one once the product is gone.
    assert duplicates == 1_258
    (line,) = duplicate_advice(ledger, PrepareConfig.model_validate(PREPARE))
    assert line in result.warnings
    assert line.startswith(f"advice: 1,258 rows ({duplicates / ledger.rows_in:.1%} of the input)")
    assert "set prepare.duplicate_key (e.g. [InvoiceNo, StockCode]), or set prepare.duplicates: keep" in line
    # The job's advice hook: with a tenth of the rows' amounts broken as well, both lines.
    assert set(prepared_advice(result.prepared, config)) <= set(result.warnings)
    broken = replace(ledger, quarantined={**ledger.quarantined, "invalid_amount": ledger.rows_in // 10})
    hooked = prepared_advice(replace(result.prepared, ledger=broken), config)
    assert [a.split(" rows (")[1].split(" of the input")[0] for a in hooked] == ["6.1%", "10.0%"]
    # Keeping them, as the advice says, quarantines no duplicate and uses every one of those lines.
    kept, _ = prepare_data(parse_config({"data": data, "prepare": PREPARE | {"duplicates": "keep"}}))
    assert "duplicate" not in kept.ledger.quarantined
    assert kept.ledger.rows_used == ledger.rows_used + duplicates


@pytest.mark.parametrize(
    ("settings", "duplicates", "advised"),
    [
        ({}, 99, False),  # under 1% of 10,000 rows
        ({}, 100, True),
        ({"duplicates": "quarantine"}, 5_000, False),  # the user chose the rule
        ({"duplicate_key": ["InvoiceNo", "StockCode"]}, 5_000, False),  # duplicates by the user's key
    ],
)
def test_duplicate_advice_needs_the_auto_rule_and_one_percent(
    settings: dict[str, object], duplicates: int, advised: bool
) -> None:
    assert ADVICE_SHARE == 0.01
    ledger = Ledger(rows_in=10_000, rows_used=10_000 - duplicates, quarantined={"duplicate": duplicates})
    assert bool(duplicate_advice(ledger, PrepareConfig.model_validate(settings))) is advised
    assert duplicate_advice(Ledger(rows_in=0, rows_used=0), PrepareConfig()) == ()


CSV = DataConfig(source="csv", path=Path("shop.csv"))


def test_amounts_that_are_not_numbers_in_one_percent_of_the_rows_get_the_separator_advice() -> None:
    assert amount_advice(Ledger(rows_in=10_000, rows_used=9_901, quarantined={"invalid_amount": 99}), CSV) == ()
    broken = Ledger(rows_in=10_000, rows_used=9_750, quarantined={"invalid_amount": 250})
    (line,) = amount_advice(broken, CSV)
    assert line == (
        "advice: 250 rows (2.5% of the input) quarantined: amounts are missing, not numbers, NaN or infinite "
        "(for a CSV with numbers written as 1.234,56 or 1,234.56, set data.csv.decimal and data.csv.thousands)"
    )
    assert amount_advice(Ledger(rows_in=0, rows_used=0), CSV) == ()
    # Not for typed sources, nor once the separators are set.
    assert amount_advice(broken, DataConfig(source="parquet", path=Path("shop.parquet"))) == ()
    assert amount_advice(broken, CSV.model_copy(update={"csv": CsvOptions(decimal=",", thousands=".")})) == ()
    assert amount_advice(broken, CSV.model_copy(update={"csv": CsvOptions(thousands=",")})) == ()


def test_a_decimal_comma_without_thousands_gets_the_advice_for_any_invalid_amount() -> None:
    """1.234,56 read with a decimal comma alone is not a number: few rows, but the largest amounts."""
    comma = CSV.model_copy(update={"csv": CsvOptions(decimal=",")})
    few = Ledger(rows_in=157_000, rows_used=156_560, quarantined={"invalid_amount": 440})
    assert amount_advice(few, comma) == (
        "advice: 440 rows (0.3% of the input) quarantined as invalid_amount (empty, or not a number in the "
        "configured format: decimal comma, no thousands separator). If the feed writes 1,000 or more as 1.234,56, "
        "set data.csv.thousands: '.': such rows would be its largest amounts",
    )
    one = Ledger(rows_in=1_001, rows_used=1_000, quarantined={"invalid_amount": 1})
    assert amount_advice(one, comma)[0].startswith("advice: 1 row (0.1% of the input) quarantined as invalid_amount")
    assert amount_advice(Ledger(rows_in=157_000, rows_used=157_000), comma) == ()
    assert amount_advice(few, comma.model_copy(update={"source": "parquet"})) == ()


def _shape_from_a_filtered_copy(full: pd.DataFrame, days_per_unit: float) -> FeedShape:
    """feed_shape as it was written before: on a filtered copy of the summary."""
    repeat = full[full["frequency"] >= 2].reset_index(drop=True)
    return feed_shape(repeat, days_per_unit)


def test_feed_shape_equals_it_on_the_repeat_customers_alone(feed: Path) -> None:
    subscription = prepare_data(
        parse_config(
            {
                "data": {"source": "csv", "path": str(feed), "columns": {"timestamp": "charge_date"}},
                "prepare": {"calibration_end": "2022-12-31"},
            }
        )
    )[0].full
    cdnow = prepare_data(parse_config({"data": {"source": "cdnow_master"}}))[0].full
    for full in (subscription, cdnow, cdnow.drop(columns="monetary_value")):
        shape = feed_shape(full, DAYS_PER_UNIT["week"])
        before = _shape_from_a_filtered_copy(full, DAYS_PER_UNIT["week"])
        assert astuple(shape)[:-1] == astuple(before)[:-1]
        assert shape.spend_cv == before.spend_cv or (np.isnan(shape.spend_cv) and np.isnan(before.spend_cv))
        assert shape.repeat_customers == int((full["frequency"] >= 2).sum())


def test_timestamps_that_cannot_be_read_in_one_percent_of_the_rows_get_the_format_advice() -> None:
    assert timestamp_advice(Ledger(rows_in=10_000, rows_used=9_901, quarantined={"invalid_timestamp": 99}), None) == ()
    mixed = Ledger(rows_in=6_919, rows_used=3_460, quarantined={"invalid_timestamp": 3_459})
    (line,) = timestamp_advice(mixed, "%Y-%m-%d")
    assert line == (
        "advice: 3,459 rows (50.0% of the input) were quarantined because their timestamp could not be read as "
        "%Y-%m-%d (invalid_timestamp): if the feed mixes formats, write them in one, or set data.timestamp_format "
        "to the format of most rows"
    )
    assert "could not be read (invalid_timestamp)" in timestamp_advice(mixed, None)[0]
    assert timestamp_advice(Ledger(rows_in=0, rows_used=0), None) == ()


def _invoiced_charges(subscribers: int = 300, months: int = 8, seed: int = 3) -> pd.DataFrame:
    """Monthly charges billed as invoice lines: each charge day a plan (9.99 or 19.99) and two to four add-ons of
    random cents, so that a day's lines added up as doubles in another order can differ in their last bit."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(subscribers):
        plan = (9.99, 19.99)[k % 2]
        for month in range(months):
            day = f"2024-{month + 1:02d}-{k % 28 + 1:02d}"
            rows.append((f"s{k:04d}", day, plan))
            rows += [(f"s{k:04d}", day, int(c) / 100) for c in rng.integers(1, 1000, rng.integers(2, 5))]
    return pd.DataFrame(rows, columns=["customer_id", "charge_date", "amount"])


def test_the_charges_summary_is_the_same_bits_whatever_the_row_order() -> None:
    """The charges come from DuckDB in no set order: a charge day's lines are added up as exact integers of
    1/SCALE, so the mean repeat charge and the feed's spend figures are the same bits for the feed shuffled."""
    charges = _invoiced_charges()
    lines = charges.groupby(["customer_id", "charge_date"])["amount"]
    reversed_sums = charges.iloc[::-1].groupby(["customer_id", "charge_date"])["amount"].sum()
    assert int((lines.sum() != reversed_sums).sum()) > 0  # as doubles, the order shows in the last bit
    expected = charges_summary(charges)
    shape = feed_shape(expected, 1.0)
    assert (shape.repeat_customers, shape.period) == (300, "month")
    for seed in range(5):
        shuffled = charges.sample(frac=1, random_state=seed).reset_index(drop=True)
        found = charges_summary(shuffled)
        pd.testing.assert_frame_equal(found, expected, check_exact=True)
        assert feed_shape(found, 1.0) == shape
    by_hand = charges.assign(units=(charges["amount"] * 10_000).round().astype("int64"))
    daily = by_hand.groupby(["customer_id", "charge_date"])["units"].sum().groupby("customer_id")
    first = expected.set_index("customer_id").loc["s0000"]
    assert first["monetary_value"] == (daily.sum()["s0000"] - daily.first()["s0000"]) / (10_000 * 7)


def test_ids_that_differ_only_by_leading_zeros_are_advised() -> None:
    """A folder of exports where one file lost its ids' zeros (a spreadsheet): each customer counted twice."""
    padded = [f"{i:08d}" for i in range(3_100_000, 3_100_300)]
    lost = [str(i) for i in range(3_100_000, 3_100_020)]
    ids = pd.Series([*padded, *lost, "A-0001", "0xyz"], dtype="str")
    assert padded_id_advice(ids) == (
        "advice: 40 customer ids are the same digits as another id but for leading zeros (e.g. '3100000' and "
        "'03100000'), in 20 groups: ids are text, so each is a customer of its own; if some files lost the zeros "
        "(a spreadsheet), write the ids one way in a data.query (e.g. lpad(customer_id, 8, '0'), the padded ids' "
        "width)",
    )
    assert "(e.g. '7' and '0007'), in 1 group: " in padded_id_advice(pd.Series(["0007", "7", "12"], dtype="str"))[0]
    assert padded_id_advice(pd.Series(padded, dtype=object)) == ()  # padded alike: nothing to say
    assert padded_id_advice(pd.Series(lost, dtype="str")) == ()  # no zero to lose


def _zeros_lost(feed: pd.DataFrame, lost: int) -> tuple[pd.DataFrame, str]:
    """``feed`` with its ids as 8 digits (``00001000`` on), and the later half of the rows of ``lost`` customers (every
    100th) written without the zeros, as a second export from a spreadsheet; the advice that names them."""
    codes, _ = pd.factorize(feed["customer_id"], sort=True)
    digits = pd.Series(codes + 1000, index=feed.index)
    ids = digits.map("{:08d}".format)
    chosen = sorted(set(digits.unique()[::100][:lost]))
    later = feed.groupby(digits).cumcount() >= feed.groupby(digits)["customer_id"].transform("size") // 2
    stripped = digits.isin(chosen) & later
    ids[stripped] = digits[stripped].astype(str)
    first = chosen[0]
    advice = (
        f"advice: {2 * lost} customer ids are the same digits as another id but for leading zeros (e.g. '{first}' and "
        f"'{first:08d}'), in {lost} groups: ids are text, so each is a customer of its own; if some files lost the "
        "zeros (a spreadsheet), write the ids one way in a data.query (e.g. lpad(customer_id, 8, '0'), the padded "
        "ids' width)"
    )
    return feed.assign(customer_id=ids), advice


def test_ids_that_lost_their_zeros_are_advised_in_the_contractual_job(tmp_path: Path) -> None:
    """The subscriptions job tells of ids that differ only by leading zeros too: in its result and its summary
    (JSON and text; the run's tags are its advice, tested in tests/pipeline/contractual/test_mixed_plans.py)."""
    charges, advice = _zeros_lost(subscription_feed(per_cohort=100, cohorts=12).iloc[:-DIRTY_ROWS], lost=5)
    charges.to_csv(tmp_path / "billing.csv", index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(tmp_path / "billing.csv"), "columns": {"timestamp": "charge_date"}},
            "prepare": {"calibration_end": str(CALIBRATION_END), "observation_end": str(OBSERVATION_END)},
            "business": {"type": "contractual", "billing_period": "month"},
        }
    )
    result = train_subscriptions(config)
    assert result.advice[-1] == advice
    assert summary_dict(result)["advice"][-1] == advice
    assert f"\n  {advice}" in summary_text(result)


@pytest.mark.usefixtures("tracking_store")
def test_ids_that_lost_their_zeros_are_advised_in_the_discrete_job(tmp_path: Path) -> None:
    """The discrete (BG/BB) job tells of them as the others do: in its result, its summary (JSON and text) and
    its run's tags; a feed whose ids are all written one way gets no advice."""
    feed, advice = _zeros_lost(discrete_feed(per_cohort=600), lost=4)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(tmp_path / "lost.csv"), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": str(DISCRETE_END)},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )
    feed.to_csv(tmp_path / "lost.csv", index=False)
    result = _train_discrete(config)
    assert result.advice == (advice,)
    assert summary_dict(result)["advice"] == summary_dict(result)["warnings"] == [advice]
    assert f"\n  {advice}" in summary_text(result)
    with store.run(store.connect("lost-zeros")) as run_id:
        record_discrete(result, "")
    assert mlflow.MlflowClient().get_run(run_id).data.tags["advice.0"] == advice
    feed.assign(customer_id=feed["customer_id"].str.zfill(8)).to_csv(tmp_path / "lost.csv", index=False)
    assert _train_discrete(config).advice == ()


def _train_discrete(config: Config) -> DiscreteResult:
    engine = open_engine(config.engine)
    try:
        return train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()
