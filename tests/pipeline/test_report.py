from __future__ import annotations

import re

import pandas as pd
from matplotlib.figure import Figure

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from pipeline import plots
from pipeline.baselines import BASELINES
from pipeline.gate import Check, GateResult
from pipeline.report import comparison_table, render_report
from pipeline.validate import validate
from tests.pipeline.test_validate import CALIBRATION

MODEL = CLVModelParams(
    BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259), GammaGammaParams(6.25, 3.74, 15.44), ScoringSpec()
)


def _report(passed: bool) -> str:
    validation = validate(MODEL, CALIBRATION, period_length=1 / 7)
    gate = GateResult((Check("churn_auc_higher_than_0.99", "churn_auc", 0.7, 0.99, "higher", passed),))
    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    return render_report(
        title="CLV <report>",
        run_id="abc",
        data_description="test.csv",
        ledger={"rows_in": 10},
        parameters={"r": 0.24},
        validation=validation,
        gate=gate,
        figures={"line": plots.png(fig)},
        business=[("segments", pd.DataFrame({"segment": ["top"], "customers": [1]}))],
        registered="version 3",
    )


def test_report_is_self_contained_html() -> None:
    text = _report(passed=True)
    assert text.startswith("<!DOCTYPE html>")
    assert "CLV &lt;report&gt;" in text  # escaped
    assert len(re.findall(r"src='data:image/png;base64,[A-Za-z0-9+/=]{100,}'", text)) == 1
    assert "http://" not in text  # nothing to fetch
    assert "https://" not in text
    for baseline in BASELINES:
        assert f"baseline: {baseline}" in text
    assert "segments" in text


def test_verdict_names_the_failed_checks() -> None:
    assert "Validation passed: version 3." in _report(passed=True)
    failed = _report(passed=False)
    assert "Validation failed: nothing was registered" in failed
    assert "churn_auc_higher_than_0.99" in failed


def test_comparison_table_rows() -> None:
    metrics = validate(MODEL, CALIBRATION, period_length=1 / 7).metrics
    table = comparison_table(metrics)
    assert table["predictor"].tolist() == ["BG/NBD x Gamma-Gamma", *[f"baseline: {b}" for b in BASELINES]]
    assert table.loc[0, "MAE"] == metrics["revenue_mae"]


def test_report_reads_like_a_report() -> None:
    from pipeline.glossary import scoring_definitions
    from pipeline.report import BusinessView

    validation = validate(MODEL, CALIBRATION, period_length=1 / 7)
    gate = GateResult((Check("churn_auc_higher_than_0.7", "churn_auc", 0.8, 0.7, "higher", True),))
    text = render_report(
        title="CLV",
        run_id="abc",
        data_description="test.csv",
        ledger={"rows_in": 12, "rows_quarantined": 2, "quarantined": {"duplicate": 1, "missing_customer_id": 1}},
        parameters={"r": 0.24},
        validation=validation,
        gate=gate,
        figures={},
        business=[
            BusinessView("At risk", pd.DataFrame({"customer_id": ["a"]}), "Showing 1 of 7: the full list is in x")
        ],
        notes=["The champion (version 2) was trained on other data"],
        definitions=scoring_definitions(MODEL.spec),
    )
    assert "{'duplicate'" not in text  # reasons are a table, not a Python dict
    assert "<td>missing_customer_id</td><td class='num'>1</td><td class='num'>0.5</td>" in text
    assert "Churn risk: AUC against &#39;no purchase in the holdout&#39;" in text  # labels, escaped
    assert "P(no purchase in the next 90 days)" in text
    assert "discounted at 10% a year" in text
    assert "Showing 1 of 7: the full list is in x" in text
    assert "The champion (version 2) was trained on other data" in text
