"""The contractual report's retention curves by cohort: observed S(t) counted by hand, the sBG's from the
cohort's parameters, a figure and a table in the HTML."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from models import sbg
from pipeline.config import parse_config
from pipeline.contractual.report import report_html
from pipeline.contractual.retention import retention_curves, retention_table
from pipeline.contractual.workflow import ContractualResult
from tests.subscription_feed import train_subscriptions, write_subscription_feed


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ContractualResult:
    path = write_subscription_feed(tmp_path_factory.mktemp("report") / "billing.csv", per_cohort=150)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "charge_date"}},
            "prepare": {"calibration_end": "2023-12-31"},
            "business": {"type": "contractual", "cac": 60},
        }
    )
    return train_subscriptions(config)


def test_the_curves_are_counted_and_modelled_per_cohort(result: ContractualResult) -> None:
    assert result.production_fits is not None
    full = result.subscribers.full
    curves = retention_curves(full, result.production_fits)
    first = full[full["cohort"].astype(str) == "2022-01-01"]
    cell = curves[(curves["cohort"] == "2022-01-01") & (curves["t"] == 3)].iloc[0]
    due = first[first["age"] >= 3]
    assert cell["at_risk"] == len(due) == 150
    assert cell["observed"] == (due["renewals"] >= 3).sum() / len(due)
    params = result.production_fits.params["2022-01-01"]
    assert cell["sbg"] == pytest.approx(float(sbg.survival(params, np.array([3]))[0]), rel=1e-15)
    assert curves["observed"].between(0, 1).all()
    assert curves.groupby("cohort")["sbg"].apply(lambda s: bool((np.diff(s.to_numpy()) < 0).all())).all()
    assert curves["cohort"].nunique() == 24


def test_the_table_has_every_cohort_and_its_due_periods(result: ContractualResult) -> None:
    assert result.production_fits is not None
    curves = retention_curves(result.subscribers.full, result.production_fits)
    table = retention_table(curves).set_index("cohort")
    assert len(table) == 24
    first = curves[(curves["cohort"] == "2022-01-01") & (curves["t"] == 12)].iloc[0]
    assert table.at["2022-01-01", "observed_12"] == first["observed"]
    assert table.at["2022-01-01", "sbg_12"] == first["sbg"]
    last = sorted(table.index)[-1]
    observed = table.at[last, "observed_12"]
    assert isinstance(observed, float | np.floating)
    assert np.isnan(observed)  # the newest cohort has not reached its 12th decision


def test_the_report_shows_the_retention_figure_and_table(result: ContractualResult) -> None:
    page = report_html(result)
    assert "<h2>Retention by cohort</h2>" in page
    assert "sBG (production fit)" in page
    png = page.split("data:image/png;base64,", 1)[1].split("'", 1)[0]
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    section = page.split("<h2>Retention by cohort</h2>", 1)[1].split("<h2>", 1)[0]
    assert section.count("<tr>") == 1 + 24  # the header and one row per cohort
    assert "<td>2022-01-01</td><td>150</td>" in section


def test_the_figure_writes(result: ContractualResult, tmp_path: Path) -> None:
    from pipeline.contractual.retention import retention_figure

    assert result.production_fits is not None
    figure = retention_figure(retention_curves(result.subscribers.full, result.production_fits))
    assert len(figure.axes[0].lines) == 12  # six cohorts, observed and sBG
    figure.savefig(tmp_path / "retention.png")
    assert (tmp_path / "retention.png").stat().st_size > 1000


def test_payback_against_cac_is_in_the_run_and_the_report(result: ContractualResult) -> None:
    from pipeline.contractual.workflow import payback_by_cohort

    assert result.payback is not None
    assert result.model is not None
    expected = payback_by_cohort(result.subscribers.full, result.model, 60.0)
    assert result.payback.equals(expected)
    assert len(expected) == 24
    first = expected.iloc[0]
    params = result.model.for_cohort(str(first["cohort"]))
    k = int(first["payback_periods"])
    paid = [
        first["mean_price"] * float(sbg.survival(params, np.array([t]))[0]) / (1 + result.model.discount_rate) ** t
        for t in range(k)
    ]
    assert sum(paid) >= 60.0 > sum(paid[:-1])
    page = report_html(result)
    assert "<h2>Payback against CAC</h2>" in page
    assert "acquisition cost (60)" in page


def test_the_lifetime_cap_is_counted_and_noted(result: ContractualResult) -> None:
    """The feed's law (alpha 1.2, beta 4) has a heavy tail: 1,200 months hold 53% to 67% of the mean lifetime, so
    the cap decides every active subscriber's expected_remaining_lifetime (5 cohorts are fitted at alpha <= 1, with
    no finite mean), and the run says so."""
    from models.subscription_model import at_lifetime_cap
    from pipeline.contractual.report import summary_dict, summary_text
    from pipeline.contractual.workflow import lifetime_cap_note

    assert result.model is not None
    assert result.scores is not None
    capped = at_lifetime_cap(result.model, result.scores)
    assert result.lifetime_capped == capped.sum() == len(result.scores) == 584  # every one of them
    endless = sum(p.alpha <= 1 for p in result.model.cohorts.values())
    assert endless == 5
    note = (
        "expected_remaining_lifetime is capped at 1,200 periods: it is the renewals expected within 1,200 months, "
        "and for 584 of 584 active subscribers the mean lifetime would be over 1% higher uncapped (infinite in "
        "the 5 of 24 cohorts with alpha <= 1: no finite mean)"
    )
    assert result.notes == (note,)
    assert note not in result.warnings  # advice on the data only
    assert summary_dict(result)["scores"] == {
        "active_subscribers": 584,
        "horizon_periods": 1200,
        "at_lifetime_cap": 584,
        "notes": [note],
    }
    assert summary_text(result).splitlines()[-1] == f"  note        {note}"
    assert f"<h2>Notes on the scores</h2><ul><li>{note.replace('<', '&lt;')}</li></ul>" in report_html(result)
    assert lifetime_cap_note(result.model, 584, 0) == ()


@pytest.mark.usefixtures("tracking_store")
def test_the_run_records_the_lifetime_cap_count_as_a_metric(result: ContractualResult) -> None:
    """The count was in the summary and the report only; the run now logs it as the metric at_lifetime_cap (584,
    every active subscriber), and a run that scored nothing (a failed gate) logs no such metric."""
    import dataclasses

    import mlflow

    from pipeline.recorder import store
    from pipeline.recorder.contractual import record_contractual

    experiment_id = store.connect("lifetime-cap")
    with store.run(experiment_id) as run_id:
        record_contractual(result, "", report_html(result))
    metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
    assert metrics["at_lifetime_cap"] == 584.0
    assert metrics["subscribers"] == 3600.0
    unscored = dataclasses.replace(result, model=None, scores=None, lifetime_capped=None, notes=())
    with store.run(experiment_id) as run_id:
        record_contractual(unscored, "", report_html(unscored))
    assert "at_lifetime_cap" not in mlflow.MlflowClient().get_run(run_id).data.metrics
