"""The how-to's configs for a billing export with a payment status (docs/how-to/business-types.md), run as written
on a generated Stripe-style export of monthly and yearly plans: failed attempts (retried, or churning the
subscriber), refunded charges, ids padded with spaces and a row without an id. Without the failed rows the
export is told it mixes plans; the monthly plan's query gives exactly the subscribers and sBG of the clean
monthly charges."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.config import parse_config
from pipeline.config.loading import load_config
from pipeline.contractual.workflow import ContractualResult
from pipeline.engines import open_engine
from pipeline.errors import InputError
from tests.feeds import query_rows
from tests.subscription_feed import (
    CALIBRATION_END,
    DIRTY_ROWS,
    OBSERVATION_END,
    subscription_feed,
    train_subscriptions,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "how-to" / "business-types.md"
PRICES = {("basic", 1): "19.00", ("pro", 1): "49.00", ("basic", 12): "190.00", ("pro", 12): "490.00"}
COLUMNS = ["Customer ID", "Created (UTC)", "Amount", "Status", "Invoice ID"]


def _attempts(charges: pd.DataFrame, months: int) -> list[tuple[str, str, str, str]]:
    """The charges as attempts (id, day, amount, status): every 11th renewal fails and is paid three days later,
    every 13th is refunded, and every 17th subscriber's next renewal after their last charge fails three times
    (an involuntary churn) when that is before the observation end."""
    rows: list[tuple[str, str, str, str]] = []
    first = charges.groupby("customer_id")["charge_date"].transform("min")
    for k, (customer, plan, day, renewal) in enumerate(
        zip(
            charges["customer_id"],
            charges["plan"],
            charges["charge_date"],
            charges["charge_date"] != first,
            strict=True,
        )
    ):
        date, price = dt.date.fromisoformat(day), PRICES[(plan, months)]
        if renewal and k % 11 == 0 and date + dt.timedelta(days=3) <= OBSERVATION_END:
            rows += [(customer, day, price, "Failed"), (customer, str(date + dt.timedelta(days=3)), price, "Paid")]
        else:
            rows.append((customer, day, price, "Refunded" if renewal and k % 13 == 0 else "Paid"))
    for n, (customer, group) in enumerate(charges.groupby("customer_id")):
        assert isinstance(customer, str)
        due = dt.date.fromisoformat(group["charge_date"].max()) + dt.timedelta(days=31 * months)
        if n % 17 == 0 and due + dt.timedelta(days=10) <= OBSERVATION_END:
            price = PRICES[(group["plan"].iloc[0], months)]
            rows += [(customer, str(due + dt.timedelta(days=d)), price, "Failed") for d in (0, 3, 10)]
    return rows


def _export(monthly: pd.DataFrame, yearly: pd.DataFrame) -> pd.DataFrame:
    """The attempts of both plans as a Stripe-style export: times of day, every 7th id padded with a space, one
    annual-priced row without an id."""
    rows = _attempts(monthly, 1) + _attempts(yearly, 12) + [("", "2023-05-05", "190.00", "Paid")]
    export = pd.DataFrame(rows, columns=["Customer ID", "day", "Amount", "Status"])
    padded = export.index % 7 == 0
    export.loc[padded, "Customer ID"] = " " + export.loc[padded, "Customer ID"]
    added: dict[str, pd.Series[str] | list[str]] = {
        "Created (UTC)": export["day"] + " 09:30",
        "Invoice ID": [f"in_{k:06d}" for k in range(len(export))],
    }
    return export.assign(**added).loc[:, COLUMNS]


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """billing_export.csv (1,200 monthly and 300 yearly subscribers) and clean.csv (the monthly charges)."""
    folder = tmp_path_factory.mktemp("exports")
    monthly = subscription_feed(per_cohort=50, cohorts=24).iloc[:-DIRTY_ROWS]
    yearly = subscription_feed(per_cohort=25, cohorts=12, seed=11, months_per_charge=12).iloc[:-DIRTY_ROWS]
    yearly = yearly.assign(customer_id="y" + yearly["customer_id"])
    _export(monthly, yearly).to_csv(folder / "billing_export.csv", index=False)
    monthly.to_csv(folder / "clean.csv", index=False)
    return folder


def _docs_config(plans: bool) -> dict[str, object]:
    """The how-to's YAML block reading billing_export.csv: the one keeping the monthly plan (``plans``) or the
    one keeping both; with the generated feed's calibration and observation ends."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)
    (block,) = [b for b in blocks if "billing_export.csv" in b and ("annual" in b) is plans]
    raw = yaml.safe_load(block)
    raw["prepare"] = {"calibration_end": str(CALIBRATION_END), "observation_end": str(OBSERVATION_END)}
    return dict(raw)


@pytest.fixture(scope="module")
def clean(feeds: Path) -> ContractualResult:
    raw = {"data": {"source": "csv", "path": str(feeds / "clean.csv"), "columns": {"timestamp": "charge_date"}}}
    return train_subscriptions(parse_config({**_docs_config(plans=True), **raw}))


def test_the_monthly_query_gives_the_clean_monthly_subscribers(
    feeds: Path, clean: ContractualResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed attempts dropped, refunds and retries kept: each subscriber's cohort, renewals, age and churn, and
    the sBG, are those of the clean monthly charges; the yearly subscribers (ids padded or not) are out."""
    monkeypatch.chdir(feeds)  # the query's relative path is opened from the working directory
    export = pd.read_csv("billing_export.csv", dtype=str)
    assert export["Status"].value_counts().to_dict() == {"Paid": 7448, "Failed": 805, "Refunded": 452}
    last = export.assign(id=export["Customer ID"].str.strip()).groupby("id")["Status"].last()
    assert int((last == "Failed").sum()) == 72  # their retries all failed: churned
    result = train_subscriptions(parse_config(_docs_config(plans=True)))
    columns = ["customer_id", "cohort", "renewals", "age", "churned"]
    assert len(result.subscribers.full) == 1200
    pd.testing.assert_frame_equal(result.subscribers.full[columns], clean.subscribers.full[columns])
    pd.testing.assert_frame_equal(result.subscribers.calibration[columns], clean.subscribers.calibration[columns])
    assert result.calibration_fits.pooled.params == clean.calibration_fits.pooled.params
    assert result.advice == clean.advice == ()


def test_the_status_query_keeps_both_plans_and_is_told_they_mix(feeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 300 yearly subscribers are in: the 221 charged on two days or more (by hand on the clean charges: 79
    are charged once) are 19.3% of the 1,145 charged twice (924 monthly ones)."""
    monkeypatch.chdir(feeds)
    result = train_subscriptions(parse_config(_docs_config(plans=False)))
    assert len(result.subscribers.full) == 1500
    assert result.advice == (
        "advice: 221 of 1,145 subscribers charged on two days or more (19.3%) are charged at least 2 times "
        "business.billing_period apart (month: 30.4375 days): 221 every 365 days (the median of each one's "
        "intervals; subscribers charged once are not counted); the feed mixes plans: the sBG counts each of them "
        "as churned at its first month without a charge, so the pooled fit is biased and they are not scored; "
        "train each plan on its own, with its billing_period: data.source: sql and a data.query keeping one plan's "
        "subscribers whole, with every one of their charges (a WHERE on a plan column, or, without one, on the "
        "subscribers who never paid another plan's price; invoice lines go whole, by subscriber, not line by line): "
        "see 'billing exports' in docs/how-to/business-types.md",
    )


def test_not_in_a_list_holding_a_null_keeps_no_row(feeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The monthly query keeps the monthly plan's paid and refunded attempts; without its IS NOT NULL (the export
    has a row without an id at an annual price) it keeps none."""
    monkeypatch.chdir(feeds)
    query = str(_docs_config(plans=True)["data"]["query"])  # type: ignore[index]
    export = pd.read_csv("billing_export.csv", dtype=str)
    monthly = export["Customer ID"].str.strip().str.startswith("c") & (export["Status"] != "Failed")
    assert int(monthly.sum()) == 7_296
    assert query_rows(f"SELECT count(*) FROM ({query})") == [(7_296,)]
    without = query.replace(' AND "Customer ID" IS NOT NULL', "")
    assert without != query
    assert query_rows(f"SELECT count(*) FROM ({without})") == [(0,)]


def test_the_query_path_is_opened_from_the_working_directory(feeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config file next to the export, run from the folder above: its query's file is not found (it is not
    looked for in the config's folder), while a ``data.path`` is."""
    (feeds / "status.yaml").write_text(yaml.safe_dump(_docs_config(plans=False)), encoding="utf-8")
    csv = {**_docs_config(plans=False), "data": {"source": "csv", "path": "clean.csv"}}
    (feeds / "clean.yaml").write_text(yaml.safe_dump(csv), encoding="utf-8")
    monkeypatch.chdir(feeds.parent)
    assert load_config(Path(feeds.name) / "clean.yaml").data.path == feeds / "clean.csv"
    config = load_config(Path(feeds.name) / "status.yaml")
    engine = open_engine(config.engine)
    try:
        with pytest.raises(InputError) as raised:
            engine.open(config.data)
    finally:
        engine.close()
    assert str(raised.value) == 'data.query: IO Error: No files found that match the pattern "billing_export.csv"'
