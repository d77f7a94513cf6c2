from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import bgnbd
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from pipeline.baselines import BASELINES, PURCHASE_BASELINES
from pipeline.engines.prepared import PreparedData
from pipeline.metrics import METRIC_NAMES, normalized_gini, top_share
from pipeline.validate import (
    FREQUENCY_BINS,
    Validation,
    frequency_table,
    holdout_predictions,
    tracking_table,
    validate,
)

PURCHASE = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)
MODEL = CLVModelParams(purchase=PURCHASE, spend=GammaGammaParams(p=6.2488, q=3.7446, v=15.4477), spec=ScoringSpec())
CALIBRATION = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d"],
        "frequency": [2.0, 0.0, 9.0, 1.0],
        "recency": [30.0, 0.0, 38.0, 5.0],
        "T": [38.0, 20.0, 38.0, 38.0],
        "monetary_value": [20.0, 0.0, 40.0, 10.0],
        "total_spend": [60.0, 15.0, 400.0, 25.0],
        "frequency_holdout": [1.0, 0.0, 8.0, 0.0],
        "monetary_value_holdout": [18.0, 0.0, 42.0, 0.0],
        "revenue_holdout": [18.0, 0.0, 336.0, 0.0],
        "recent_spend": [30.0, 15.0, 200.0, 25.0],
        "recent_purchases": [1.0, 1.0, 5.0, 1.0],
        "duration_holdout": [39.0] * 4,
    }
)


def test_holdout_predictions_and_baselines() -> None:
    table, retention = holdout_predictions(MODEL, CALIBRATION, period_length=1 / 7)
    f, r, t = CALIBRATION["frequency"], CALIBRATION["recency"], CALIBRATION["T"]
    np.testing.assert_allclose(table["expected_purchases"], bgnbd.expected_purchases(PURCHASE, 39.0, f, r, t))
    np.testing.assert_allclose(table["expected_revenue"], table["expected_purchases"] * table["expected_order_value"])
    np.testing.assert_allclose(table["churn_risk"], bgnbd.p_no_purchase(PURCHASE, 39.0, f, r, t))
    # spend rate: total calibration spend per week observed (T + one day), carried over 39 weeks.
    assert table["baseline_spend_rate_revenue"][0] == pytest.approx(60 / (38 + 1 / 7) * 39)
    assert table["baseline_repeat_spend_rate_revenue"][0] == pytest.approx(2 * 20 / (38 + 1 / 7) * 39)
    assert table["baseline_repeat_spend_rate_revenue"][1] == 0.0
    # Retention window W = min(39, max T / 2) = 19 weeks: all four started before it, and two (last purchase
    # 8 and 0 weeks before the end) bought in it: r = 0.5 per 19 weeks, so 0.5^(39/19) over the holdout.
    assert retention == pytest.approx(0.5 ** (39 / 19))
    log_rho = np.log(0.5) / 19
    lifespan = np.expm1(log_rho * 39) / log_rho
    np.testing.assert_allclose(
        table["baseline_historical_clv_revenue"], CALIBRATION["total_spend"] / (CALIBRATION["T"] + 1 / 7) * lifespan
    )
    assert table["baseline_last_period_revenue"].tolist() == [30.0, 15.0, 200.0, 25.0]


def test_metrics_by_hand() -> None:
    result = validate(MODEL, CALIBRATION, period_length=1 / 7)
    m = result.metrics
    assert set(m) == set(METRIC_NAMES)
    h = result.holdout
    actual, predicted = CALIBRATION["frequency_holdout"].to_numpy(), h["expected_purchases"].to_numpy()
    assert m["purchases_mae"] == pytest.approx(np.mean(np.abs(predicted - actual)))
    assert m["purchases_rmse"] == pytest.approx(np.sqrt(np.mean((predicted - actual) ** 2)))
    assert m["purchases_total_pct_error"] == pytest.approx((predicted.sum() - 9) / 9 * 100)
    assert m["churn_rate_actual"] == 0.5
    churned = actual == 0
    risk = h["churn_risk"].to_numpy()
    pairs = [(i, j) for i in np.flatnonzero(churned) for j in np.flatnonzero(~churned)]
    assert m["churn_auc"] == pytest.approx(np.mean([risk[i] > risk[j] for i, j in pairs]))
    assert m["churn_brier"] == pytest.approx(np.mean((risk - churned) ** 2))
    revenue = h["expected_revenue"].to_numpy()
    assert m["revenue_mae"] == pytest.approx(np.mean(np.abs(revenue - [18, 0, 336, 0])))
    best = min(m[f"baseline_{b}_revenue_mae"] for b in BASELINES)
    assert m["revenue_mae_skill"] == pytest.approx(1 - m["revenue_mae"] / best)
    # Revenue 336 of 354 sits with customer c: whoever ranks c first captures it with the top 10%.
    assert m["revenue_top10_share"] == pytest.approx(336 / 354)
    assert m["baseline_last_period_revenue_top10_share"] == pytest.approx(336 / 354)


def test_by_frequency_table() -> None:
    table = validate(MODEL, CALIBRATION, period_length=1 / 7).by_frequency
    assert table["frequency_bin"].tolist() == ["0", "1", "2", "7+"]
    assert table["customers"].sum() == 4
    assert set(table["frequency_bin"]) <= set(FREQUENCY_BINS)


def test_churn_auc_is_nan_when_everyone_churned() -> None:
    quiet = CALIBRATION.assign(frequency_holdout=0.0, revenue_holdout=0.0)
    assert np.isnan(validate(MODEL, quiet, period_length=1 / 7).metrics["churn_auc"])


def test_gini_and_top_share() -> None:
    actual = np.array([0.0, 10.0, 0.0, 90.0])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) < 0
    assert top_share(actual, np.array([1.0, 2.0, 3.0, 4.0]), 0.25) == pytest.approx(0.9)
    assert top_share(actual, np.array([4.0, 3.0, 2.0, 1.0]), 0.5) == pytest.approx(0.1)


def test_tracking_sums_new_customer_expectations() -> None:
    import datetime as dt

    calibration = CALIBRATION.assign(
        first_purchase=pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-08", "2020-01-08"])
    )
    weekly = pd.DataFrame(
        {"week": pd.to_datetime(["2019-12-30", "2020-01-06", "2020-01-13"]), "repeat_purchases": [0, 2, 3]}
    )
    table = tracking_table(MODEL, calibration, weekly, dt.date(2020, 1, 19))
    # Week ends: Jan 6 (2 customers 5 days old), Jan 13 (12 and 5 days), Jan 20 (19 and 12 days).
    expect = bgnbd.expected_purchases_new_customer
    np.testing.assert_allclose(
        table["expected_cumulative"],
        [
            2 * expect(PURCHASE, 5 / 7),
            2 * expect(PURCHASE, 12 / 7) + 2 * expect(PURCHASE, 5 / 7),
            2 * expect(PURCHASE, 19 / 7) + 2 * expect(PURCHASE, 12 / 7),
        ],
    )
    assert table["actual_cumulative"].tolist() == [0, 2, 5]
    np.testing.assert_allclose(table["expected"].cumsum(), table["expected_cumulative"])


def test_metric_direction() -> None:
    from pipeline.metrics import metric_direction

    assert metric_direction("purchases_mae") == "lower"
    assert metric_direction("purchases_total_abs_pct_error") == "lower"
    assert metric_direction("churn_brier") == "lower"
    assert metric_direction("churn_auc") == "higher"
    assert metric_direction("purchases_holdout_log_likelihood") == "higher"


def test_purchase_baselines_by_hand() -> None:
    from pipeline.baselines import PURCHASE_BASELINES

    table, _ = holdout_predictions(MODEL, CALIBRATION, period_length=1 / 7)
    observed = np.array([38.0, 20.0, 38.0, 38.0]) + 1 / 7
    f = np.array([2.0, 0.0, 9.0, 1.0])
    # Purchases observed in calibration (the first one included) per week observed, over 39 weeks.
    np.testing.assert_allclose(table["baseline_purchase_rate_purchases"], (f + 1) / observed * 39)
    np.testing.assert_allclose(table["baseline_repeat_purchase_rate_purchases"], f / observed * 39)
    log_rho = np.log(0.5) / 19
    np.testing.assert_allclose(
        table["baseline_historical_purchases"], (f + 1) / observed * np.expm1(log_rho * 39) / log_rho
    )
    assert table["baseline_last_period_purchases"].tolist() == [1.0, 1.0, 5.0, 1.0]
    m = validate(MODEL, CALIBRATION, period_length=1 / 7).metrics
    actual = np.array([1.0, 0.0, 8.0, 0.0])
    assert m["baseline_last_period_purchases_mae"] == pytest.approx(np.mean(np.abs([0.0, 1.0, -3.0, 1.0])))
    best = min(m[f"baseline_{b}_purchases_mae"] for b in PURCHASE_BASELINES)
    assert m["purchases_mae_skill"] == pytest.approx(1 - m["purchases_mae"] / best)
    assert m["baseline_purchase_rate_purchases_total_predicted"] == pytest.approx(((f + 1) / observed * 39).sum())
    assert actual.sum() == m["purchases_total_actual"]


def test_without_a_spend_model_there_are_no_money_columns_or_metrics() -> None:
    from pipeline.metrics import MONEY_METRICS

    counts = CALIBRATION.drop(
        columns=["monetary_value", "total_spend", "monetary_value_holdout", "revenue_holdout", "recent_spend"]
    )
    model = CLVModelParams(purchase=MODEL.purchase, spend=None, spec=ScoringSpec())
    result = validate(model, counts, period_length=1 / 7)
    assert not [c for c in result.holdout.columns if "revenue" in c or "order_value" in c or "spend" in c]
    assert set(result.metrics) == set(METRIC_NAMES) - MONEY_METRICS
    with_spend = validate(MODEL, CALIBRATION, period_length=1 / 7).metrics
    for name in result.metrics:  # the purchase side is the same with or without amounts
        assert result.metrics[name] == pytest.approx(with_spend[name], nan_ok=True)
    assert "purchases_mae" in result.by_frequency.columns
    assert "revenue_mae" not in result.by_frequency.columns


# The holdout predictions evaluate the purchase model once per distinct (history, holdout length).


def _assert_per_history_equal(calibration: pd.DataFrame) -> None:
    from models import purchase

    table, _ = holdout_predictions(MODEL, calibration, period_length=1 / 7)
    f, r, t = (calibration[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    duration = calibration["duration_holdout"].to_numpy(dtype=np.float64)
    expected = purchase.expected_purchases(MODEL.purchase, duration, f, r, t)  # per customer, as before
    np.testing.assert_array_equal(table["expected_purchases"].to_numpy(), expected)
    np.testing.assert_array_equal(table["p_alive"].to_numpy(), purchase.p_alive(MODEL.purchase, f, r, t))
    churn = purchase.p_no_purchase(MODEL.purchase, duration, f, r, t)
    np.testing.assert_array_equal(table["churn_risk"].to_numpy(), churn)


def test_holdout_predictions_per_history_equal_per_customer_on_cdnow() -> None:
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    prepared, _ = prepare_data(parse_config({"data": {"source": "cdnow_master"}}))
    _assert_per_history_equal(prepared.calibration)
    varied = prepared.calibration.assign(duration_holdout=prepared.calibration["T"] % 7 + 30)
    _assert_per_history_equal(varied)  # holdout lengths that differ between customers


def test_holdout_predictions_per_history_equal_per_customer_on_the_generated_feed(tmp_path: Path) -> None:
    from benchmarks.feed import prepared_feed

    _assert_per_history_equal(prepared_feed(200_000, tmp_path).calibration)


def _validated(prepared: PreparedData) -> Validation:
    return validate(
        MODEL,
        prepared.calibration,
        1 / 7,
        weekly=prepared.weekly,
        calibration_end=prepared.calibration_end,
        observation_end=prepared.observation_end,
        full=prepared.full,
    )


def _assert_blocks_side_by_side_equal_one_after_the_other(prepared: PreparedData) -> None:
    with pytest.MonkeyPatch.context() as patch:  # three threads, whatever the machine's cores
        patch.setattr("pipeline.validate.workers", lambda: 3)
        patch.setattr("models.histories.workers", lambda: 3)
        side_by_side = _validated(prepared)
    with pytest.MonkeyPatch.context() as patch:  # one thread: the blocks run one after the other
        patch.setattr("pipeline.validate.workers", lambda: 1)
        patch.setattr("models.histories.workers", lambda: 1)
        one_after_the_other = _validated(prepared)
    assert list(side_by_side.metrics) == list(one_after_the_other.metrics)
    for name, value in one_after_the_other.metrics.items():
        assert side_by_side.metrics[name] == value or (np.isnan(value) and np.isnan(side_by_side.metrics[name])), name
    assert not np.isnan(side_by_side.metrics["purchases_holdout_log_likelihood"])
    assert not np.isnan(side_by_side.metrics["revenue_gini"])
    for table in ("holdout", "by_frequency", "tracking", "churn_calibration"):
        pd.testing.assert_frame_equal(
            getattr(side_by_side, table), getattr(one_after_the_other, table), check_exact=True
        )


def test_validation_blocks_side_by_side_equal_one_after_the_other_on_cdnow() -> None:
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    prepared, _ = prepare_data(parse_config({"data": {"source": "cdnow_master"}}))
    _assert_blocks_side_by_side_equal_one_after_the_other(prepared)


def test_validation_blocks_side_by_side_equal_one_after_the_other_on_the_generated_feed(tmp_path: Path) -> None:
    from benchmarks.feed import prepared_feed

    _assert_blocks_side_by_side_equal_one_after_the_other(prepared_feed(200_000, tmp_path))


def _frequency_table_by_text(holdout: pd.DataFrame) -> pd.DataFrame:
    """The previous frequency table, as it was: grouped by the bins' names (a text column per customer)."""
    bins = np.minimum(holdout["frequency"].to_numpy(), 7).astype(int)
    frame = holdout.assign(frequency_bin=np.asarray(FREQUENCY_BINS)[bins])
    columns: dict[str, tuple[str, str]] = {
        "customers": ("customer_id", "size"),
        "actual_purchases": ("actual_purchases", "mean"),
        "expected_purchases": ("expected_purchases", "mean"),
    }
    if "actual_revenue" in frame.columns:
        frame["model_abs_error"] = (frame["expected_revenue"] - frame["actual_revenue"]).abs()
        for b in BASELINES:
            frame[f"baseline_{b}_abs_error"] = (frame[f"baseline_{b}_revenue"] - frame["actual_revenue"]).abs()
        columns |= {
            "actual_revenue": ("actual_revenue", "mean"),
            "expected_revenue": ("expected_revenue", "mean"),
            "revenue_mae": ("model_abs_error", "mean"),
            **{f"baseline_{b}_revenue": (f"baseline_{b}_revenue", "mean") for b in BASELINES},
            **{f"baseline_{b}_revenue_mae": (f"baseline_{b}_abs_error", "mean") for b in BASELINES},
        }
    else:
        frame["model_abs_error"] = (frame["expected_purchases"] - frame["actual_purchases"]).abs()
        columns["purchases_mae"] = ("model_abs_error", "mean")
        for b in PURCHASE_BASELINES:
            frame[f"baseline_{b}_abs_error"] = (frame[f"baseline_{b}_purchases"] - frame["actual_purchases"]).abs()
            columns[f"baseline_{b}_purchases"] = (f"baseline_{b}_purchases", "mean")
            columns[f"baseline_{b}_purchases_mae"] = (f"baseline_{b}_abs_error", "mean")
    table = frame.groupby("frequency_bin", sort=False).agg(**columns)
    return table.reindex([b for b in FREQUENCY_BINS if b in table.index]).reset_index()


def test_frequency_table_grouped_by_number_equals_the_table_grouped_by_text() -> None:
    rng = np.random.default_rng(4)
    n = 200_000
    holdout = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i}" for i in range(n)], dtype="str"),
            "frequency": rng.poisson(1.5, n).astype(float),
            "actual_purchases": rng.poisson(1.0, n).astype(float),
            "expected_purchases": rng.gamma(1.0, 1.0, n),
            "actual_revenue": rng.gamma(1.0, 50.0, n),
            "expected_revenue": rng.gamma(1.0, 50.0, n),
        }
    )
    for b in BASELINES:
        holdout[f"baseline_{b}_revenue"] = rng.gamma(1.0, 40.0, n)
    for b in PURCHASE_BASELINES:
        holdout[f"baseline_{b}_purchases"] = rng.gamma(1.0, 1.0, n)
    counts_only = holdout.drop(columns=[c for c in holdout.columns if "revenue" in c])
    for frame in (holdout, counts_only, holdout[holdout["frequency"] != 1], counts_only[counts_only["frequency"] < 3]):
        table = frequency_table(frame)
        pd.testing.assert_frame_equal(table, _frequency_table_by_text(frame), check_exact=True)
        assert table["frequency_bin"].tolist() == sorted(set(table["frequency_bin"]), key=FREQUENCY_BINS.index)


def test_holdout_table_takes_the_calibration_rows_whatever_their_index() -> None:
    """The table is built from whole columns aligned on the calibration's own index (ids, duplicates, any
    order): the same table as from a range index, numbered from 0."""
    expected, _ = holdout_predictions(MODEL, CALIBRATION, period_length=1 / 7)
    assert expected.columns.tolist()[:12] == [
        "customer_id", "frequency", "recency", "T", "monetary_value", "total_spend", "duration_holdout",
        "actual_purchases", "expected_purchases", "p_alive", "churn_risk", "baseline_historical_purchases",
    ]  # fmt: skip
    for index in (pd.Index(["x", "y", "x", "z"]), pd.Index([9, 3, 7, 1])):
        table, _ = holdout_predictions(MODEL, CALIBRATION.set_axis(index), period_length=1 / 7)
        pd.testing.assert_frame_equal(table, expected, check_exact=True)


def test_baselines_and_revenue_in_chunks_equal_whole_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The baselines' predictions, the expected order value and revenue, worked out chunk by chunk on threads,
    equal the same formulas on whole columns (as they were computed before), number for number."""
    from models import spend
    from pipeline.baselines import lifespan
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    prepared, _ = prepare_data(parse_config({"data": {"source": "cdnow_master"}}))
    calibration = prepared.calibration
    monkeypatch.setattr("models.histories.PARALLEL_ROWS", 100)  # 24 chunks of CDNOW's 2,357 customers
    monkeypatch.setattr("models.histories.workers", lambda: 3)
    table, _ = holdout_predictions(MODEL, calibration, period_length=1 / 7)
    f, m, t, total, duration = (
        calibration[c].to_numpy(dtype=np.float64)
        for c in ("frequency", "monetary_value", "T", "total_spend", "duration_holdout")
    )
    observed = t + 1 / 7
    _, retained_time = lifespan(calibration, float(duration[0]))
    order_value = spend.expected_order_value(MODEL.spend, f, m)
    expected = {
        "baseline_historical_purchases": (f + 1) / observed * retained_time,
        "baseline_purchase_rate_purchases": (f + 1) / observed * duration,
        "baseline_repeat_purchase_rate_purchases": f / observed * duration,
        "expected_order_value": order_value,
        "expected_revenue": table["expected_purchases"].to_numpy() * order_value,
        "baseline_historical_clv_revenue": total / observed * retained_time,
        "baseline_spend_rate_revenue": total / observed * duration,
        "baseline_repeat_spend_rate_revenue": f * m / observed * duration,
    }
    for column, values in expected.items():
        np.testing.assert_array_equal(table[column].to_numpy(), values, err_msg=column)


def test_the_churn_metrics_of_int8_labels_are_those_of_int64_labels() -> None:
    """The validation passes the churn labels as int8 (0 and 1): AUC, Brier, the calibration curve and the
    isotonic check are the same numbers as with int64 labels, with ties, a small sample and one class."""
    from pipeline.validate import _churn_metrics

    rng = np.random.default_rng(21)
    for n in (50, 300, 20_000):
        risk = np.round(rng.random(n), 2)
        for labels in ((rng.random(n) < risk).astype(np.int64), np.zeros(n, dtype=np.int64)):
            wide, wide_curve = _churn_metrics(labels, risk)
            narrow, narrow_curve = _churn_metrics(labels.astype(np.int8), risk)
            assert wide == pytest.approx(narrow, rel=0, abs=0, nan_ok=True)
            pd.testing.assert_frame_equal(wide_curve, narrow_curve)


def _assert_ranked_metrics_equal_the_plain_ones(prepared: PreparedData) -> None:
    """The purchase predictions ranked by their distinct histories, the churn risk too, and the spend-rate
    baseline sorted along the historical CLV's order give the numbers of one plain sort per metric (scipy's
    Spearman, the stable sorts of Gini and the top shares), exactly."""
    from pipeline.metrics import auc, spearman
    from pipeline.validate import holdout_histories

    validation = _validated(prepared)
    rows, _ = holdout_histories(prepared.calibration)
    assert len(rows) < len(prepared.calibration)  # customers share histories: the grouped ranks are used
    holdout, metrics = validation.holdout, validation.metrics
    actual_n = holdout["actual_purchases"].to_numpy()
    assert metrics["purchases_spearman"] == spearman(actual_n, holdout["expected_purchases"].to_numpy())
    for name in PURCHASE_BASELINES:
        predicted = holdout[f"baseline_{name}_purchases"].to_numpy()
        assert metrics[f"baseline_{name}_purchases_spearman"] == spearman(actual_n, predicted), name
    churned = (actual_n == 0).astype(np.int8)
    assert metrics["churn_auc"] == auc(churned, holdout["churn_risk"].to_numpy())
    actual = holdout["actual_revenue"].to_numpy()
    for prefix, column in [("revenue", "expected_revenue")] + [(f"baseline_{b}_revenue",) * 2 for b in BASELINES]:
        predicted = holdout[column].to_numpy()
        assert metrics[f"{prefix}_spearman"] == spearman(actual, predicted), prefix
        assert metrics[f"{prefix}_gini"] == normalized_gini(actual, predicted), prefix
        assert metrics[f"{prefix}_top10_share"] == top_share(actual, predicted, 0.10), prefix
        assert metrics[f"{prefix}_top20_share"] == top_share(actual, predicted, 0.20), prefix


def test_ranked_metrics_equal_the_plain_ones_on_cdnow() -> None:
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    prepared, _ = prepare_data(parse_config({"data": {"source": "cdnow_master"}}))
    _assert_ranked_metrics_equal_the_plain_ones(prepared)


def test_ranked_metrics_equal_the_plain_ones_on_the_generated_feed(tmp_path: Path) -> None:
    from benchmarks.feed import prepared_feed

    _assert_ranked_metrics_equal_the_plain_ones(prepared_feed(200_000, tmp_path))
