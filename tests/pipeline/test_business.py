from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import bgnbd
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.gamma_gamma import GammaGammaParams
from pipeline import business

PURCHASE = BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259)
MODEL = CLVModelParams(PURCHASE, GammaGammaParams(6.25, 3.74, 15.44), ScoringSpec())
SCORES = pd.DataFrame(
    {
        "customer_id": [f"c{i}" for i in range(20)],
        "clv": np.arange(20, dtype=float),
        "churn_risk": [0.9] * 10 + [0.1, 0.95] * 5,
        "p_alive": 0.5,
        "historical_clv": 10.0,
        "expected_order_value": 30.0,
    }
)


def test_at_risk_valuable() -> None:
    chosen = business.at_risk_valuable(SCORES, clv_quantile=0.8, churn_risk_min=0.8)
    assert chosen["customer_id"].tolist() == ["c19", "c17"]


def test_value_segments_and_shares() -> None:
    table = business.segment_table(SCORES)
    assert table["value_segment"].tolist() == ["top 5%", "next 15%", "middle 30%", "bottom 50%"]
    assert table["customers"].tolist() == [1, 3, 6, 10]
    assert table["clv_share"].sum() == pytest.approx(1.0)


def test_cohorts_and_windows() -> None:
    customers = pd.DataFrame(
        {
            "first_purchase": pd.to_datetime(["1997-01-05"] * 10 + ["1997-02-10"] * 10),
            "frequency": 2.0,
            "recency": 20.0,
            "T": 38.0,
        }
    )
    cohorts = business.cohort_table(SCORES, customers)
    assert cohorts["cohort"].tolist() == ["1997-01", "1997-02"]
    assert cohorts["customers"].tolist() == [10, 10]
    windows = business.clv_windows(MODEL, customers, SCORES)
    assert windows["clv_365d"][0] == pytest.approx(30.0 * bgnbd.expected_purchases(PURCHASE, 365 / 7, 2, 20, 38))
    assert (windows["clv_30d"] < windows["clv_60d"]).all()


def test_clv_cac_and_payback() -> None:
    from models.scoring import score_customers

    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "frequency": [5.0, 0.0, 2.0],
            "recency": [36.0, 0.0, 30.0],
            "T": [38.0, 38.0, 38.0],
            "monetary_value": [40.0, 0.0, 20.0],
        }
    )
    scores = score_customers(MODEL, customers)
    cac = pd.Series([10.0, 50.0], index=pd.Index(["a", "b"], name="customer_id"))
    view = business.clv_cac(MODEL, customers, scores, cac)
    assert view["customer_id"].tolist() == ["a", "b"]  # c has no CAC
    assert view["clv_cac_ratio"][0] == pytest.approx(scores["clv"][0] / 10.0)
    assert 1 <= view["payback_months"][0] <= 12  # a frequent buyer covers 10 quickly
    assert np.isnan(view["payback_months"][1])  # a one-time buyer does not cover 50 within a year
    summary = business.cac_summary(view, 12)
    assert summary["customers_with_cac"][0] == 2
    assert summary["share_payback_within_12_months"][0] == 0.5


def test_clv_cac_follows_the_winner_value_when_the_blend_is_served() -> None:
    """With ``btyd_clv`` (the blend served), the ratio reads the winner's ``clv`` and the payback scales BTYD's
    monthly values by ``clv / btyd_clv``: paying back CAC with 3x BTYD's value is paying back CAC / 3 with BTYD's."""
    from models.scoring import score_customers

    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "frequency": [5.0, 2.0, 1.0],
            "recency": [36.0, 30.0, 10.0],
            "T": [38.0, 38.0, 38.0],
            "monetary_value": [40.0, 20.0, 30.0],
        }
    )
    btyd = score_customers(MODEL, customers)
    scale = np.array([3.0, 0.5, 1.0])
    served = btyd.assign(clv=btyd["clv"] * scale, btyd_clv=btyd["clv"])
    cac = pd.Series([60.0, 12.0, 8.0], index=pd.Index(["a", "b", "c"], name="customer_id"))
    view = business.clv_cac(MODEL, customers, served, cac)
    np.testing.assert_allclose(view["clv_cac_ratio"], btyd["clv"] * scale / cac.to_numpy(), rtol=1e-12)
    same = business.clv_cac(MODEL, customers, btyd, cac / scale)
    np.testing.assert_array_equal(view["payback_months"], same["payback_months"])
    assert not np.array_equal(view["payback_months"], business.clv_cac(MODEL, customers, btyd, cac)["payback_months"])


def test_read_cac_by_channel(tmp_path: Path) -> None:
    from pipeline.cac import read_cac
    from pipeline.config import BusinessConfig
    from pipeline.errors import InputError

    path = tmp_path / "cac.csv"
    path.write_text("customer_id,channel\n0001,ads\n0002,email\n")
    config = BusinessConfig(cac_file=path, cac_by_channel={"ads": 30.0, "email": 5.0})
    by_channel = read_cac(config, pd.Series(["0001"]))
    assert by_channel is not None
    assert by_channel.to_dict() == {"0001": 30.0, "0002": 5.0}
    flat = read_cac(BusinessConfig(cac=12.0), pd.Series(["x", "y"]))
    assert flat is not None
    assert flat.tolist() == [12.0, 12.0]
    assert read_cac(BusinessConfig(), pd.Series(["x"])) is None
    with pytest.raises(InputError, match=r"without a cost in business\.cac_by_channel: email"):
        read_cac(BusinessConfig(cac_file=path, cac_by_channel={"ads": 30.0}), pd.Series(["x"]))


def test_at_risk_list_reads_value_first() -> None:
    scores = SCORES.assign(risk_tier="high", value_segment="top 5%")
    chosen = business.at_risk_valuable(scores, clv_quantile=0.8, churn_risk_min=0.8)
    assert chosen.columns.tolist()[:5] == ["customer_id", "clv", "churn_risk", "risk_tier", "value_segment"]


def test_with_views_adds_the_business_columns() -> None:
    customers = pd.DataFrame({"frequency": [2.0] * 20, "recency": [20.0] * 20, "T": [38.0] * 20})
    out = business.with_views(MODEL, customers, SCORES)
    assert out.columns.tolist() == [*SCORES.columns, "clv_30d", "clv_60d", "clv_90d", "clv_365d", "value_segment"]
    assert out["value_segment"].value_counts().to_dict() == {
        "bottom 50%": 10,
        "middle 30%": 6,
        "next 15%": 3,
        "top 5%": 1,
    }
    assert out.loc[19, "value_segment"] == "top 5%"


def test_with_views_equals_the_concatenated_frames() -> None:
    """The windows added as columns of a shallow copy give the frame the concatenation gave (dtypes too),
    with any index on the scores."""
    scores = SCORES.set_axis(pd.RangeIndex(100, 120))
    customers = pd.DataFrame({"frequency": np.arange(20.0) % 4, "recency": np.arange(20.0), "T": np.full(20, 38.0)})
    windows = business.clv_windows(MODEL, customers, scores)
    expected = pd.concat([scores.reset_index(drop=True), windows.drop(columns="customer_id")], axis=1)
    expected["value_segment"] = business.value_segment(expected).to_numpy()
    pd.testing.assert_frame_equal(business.with_views(MODEL, customers, scores), expected, check_exact=True)


def test_without_money_the_views_rank_by_expected_purchases() -> None:
    counts = SCORES.drop(columns=["clv", "historical_clv", "expected_order_value"]).assign(
        expected_purchases_30d=np.arange(20) / 10, expected_purchases_365d=np.arange(20, dtype=float)
    )
    assert business.value_column(counts) == "expected_purchases_365d"
    customers = pd.DataFrame({"frequency": [2.0] * 20, "recency": [20.0] * 20, "T": [38.0] * 20})
    assert business.with_views(MODEL, customers, counts) is counts  # no money columns to add
    chosen = business.at_risk_valuable(counts, clv_quantile=0.8, churn_risk_min=0.8)
    assert chosen["customer_id"].tolist() == ["c19", "c17"]
    assert chosen.columns[1] == "expected_purchases_365d"
    cohorts = business.cohort_table(counts, pd.DataFrame({"first_purchase": pd.to_datetime(["1997-01-05"] * 20)}))
    assert cohorts["expected_purchases_365d_total"].tolist() == [190.0]


# Business views evaluate the purchase model once per distinct history: the same numbers as per customer.


def _windows_per_customer(customers: pd.DataFrame, scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """The previous clv_windows: expected purchases evaluated for every customer."""
    from models import purchase
    from models.clv import days_to_units

    f, r, t = (customers[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    return {
        f"clv_{days}d": scores["expected_order_value"].to_numpy()
        * purchase.expected_purchases(MODEL.purchase, days_to_units(days, "week"), f, r, t)
        for days in business.CLV_WINDOWS_DAYS
    }


def _assert_views_per_history_equal(customers: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    scores = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "expected_order_value": rng.uniform(5, 80, len(customers)),
            "clv": rng.uniform(0, 300, len(customers)),
        }
    )
    windows = business.clv_windows(MODEL, customers, scores.set_axis(scores.index + 7))  # any index: by position
    for name, values in _windows_per_customer(customers, scores).items():
        np.testing.assert_array_equal(windows[name].to_numpy(), values)
    expected_ids = pd.Series(scores["customer_id"].to_numpy(), name="customer_id", dtype="str")
    pd.testing.assert_series_equal(windows["customer_id"], expected_ids)  # the ids shared, not re-made as objects
    # from the job's own scores, the 30, 90 and 365-day windows reuse their expected purchases: the same numbers
    from models.scoring import score_customers

    scored = score_customers(MODEL, customers)
    assert {"expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d"} <= set(scored.columns)
    reused = business.clv_windows(MODEL, customers, scored)
    for name, values in _windows_per_customer(customers, scored).items():
        np.testing.assert_array_equal(reused[name].to_numpy(), values, err_msg=name)
    cac = pd.Series(rng.uniform(1, 100, len(customers)), index=scores["customer_id"].to_numpy())
    view = business.clv_cac(MODEL, customers, scores, cac.iloc[::2])
    assert len(view) == (len(customers) + 1) // 2
    # payback per customer, as before: month by month on every customer's own history
    from models import purchase
    from models.clv import DAYS_PER_MONTH, days_to_units

    known = customers.iloc[::2]
    f, r, t = (known[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    value = scores["expected_order_value"].to_numpy()[::2]
    cost = cac.iloc[::2].to_numpy()
    cumulative, previous, payback = np.zeros(len(f)), np.zeros(len(f)), np.full(len(f), np.nan)
    for month in range(1, MODEL.spec.clv_horizon_months + 1):
        current = purchase.expected_purchases(MODEL.purchase, days_to_units(month * DAYS_PER_MONTH, "week"), f, r, t)
        cumulative += value * (current - previous) / (1 + MODEL.spec.annual_discount_rate) ** (month / 12)
        previous = current
        payback = np.where(np.isnan(payback) & (cumulative >= cost), month, payback)
    np.testing.assert_array_equal(view["payback_months"].to_numpy(), payback)


def test_views_per_history_equal_per_customer_on_cdnow(cdnow_sample_summary: pd.DataFrame) -> None:
    _assert_views_per_history_equal(cdnow_sample_summary.reset_index())


def test_views_per_history_equal_per_customer_on_the_generated_feed(tmp_path: Path) -> None:
    from benchmarks.feed import prepared_feed

    _assert_views_per_history_equal(prepared_feed(200_000, tmp_path).full)


def _cohort_months_per_customer(first_purchase: pd.Series) -> np.ndarray:
    """The cohort months as they were worked out before: per customer."""
    return np.asarray(pd.to_datetime(first_purchase).dt.to_period("M").astype(str).to_numpy())


def _full_summary(feed: str, tmp_path: Path) -> pd.DataFrame:
    """The full-history summary of CDNOW (``cdnow``) or of a generated feed of 200,000 rows (``generated``)."""
    if feed == "cdnow":
        from pipeline.config import parse_config
        from pipeline.workflow import prepare_data

        return prepare_data(parse_config({"data": {"source": "cdnow_master"}}))[0].full
    from benchmarks.feed import prepared_feed

    return prepared_feed(200_000, tmp_path).full


@pytest.mark.parametrize("feed", ["cdnow", "generated"])
def test_cohort_codes_per_date_equal_the_months_per_customer(feed: str, tmp_path: Path) -> None:
    full = _full_summary(feed, tmp_path)
    dates = full["first_purchase"]
    with_missing = pd.concat([dates, pd.Series([pd.NaT, None, dates.iloc[0]])], ignore_index=True)
    for first_purchase in (dates, with_missing, dates.astype(str)):
        codes, names = business.cohort_codes(first_purchase)
        assert list(names) == sorted(names)  # the codes follow the names' order
        got = np.append(np.asarray(names, dtype=object), np.nan)[codes]  # code -1: no cohort
        before = _cohort_months_per_customer(first_purchase)
        pd.testing.assert_series_equal(pd.Series(got), pd.Series(before), check_exact=True)
    assert (business.cohort_codes(with_missing)[0][-3:-1] == -1).all()


def test_segment_table_takes_the_scores_segments_when_they_carry_them() -> None:
    scored = SCORES.assign(value_segment=business.value_segment(SCORES))
    pd.testing.assert_frame_equal(business.segment_table(scored), business.segment_table(SCORES), check_exact=True)
    relabelled = scored.assign(value_segment="top 5%")  # the column is what the table counts
    assert business.segment_table(relabelled)["customers"].tolist() == [20]


@pytest.mark.parametrize("with_nan", [False, True])
def test_value_segments_by_one_numpy_sort_equal_pandas_ranks(with_nan: bool) -> None:
    """The CLV rank and the segments equal those of pandas' ``rank(pct=True, method="first")`` and the
    per-customer names they replaced: ties (many zeros, repeated values) in row order, NaN left to pandas."""
    rng = np.random.default_rng(5)
    clv = np.round(rng.gamma(0.5, 100.0, 200_000), 1)
    clv[rng.random(len(clv)) < 0.3] = 0.0
    if with_nan:
        clv[rng.random(len(clv)) < 0.01] = np.nan
    scores = pd.DataFrame({"clv": clv}, index=pd.RangeIndex(7, 7 + len(clv)))
    expected_rank = scores["clv"].rank(pct=True, method="first").to_numpy()
    np.testing.assert_array_equal(business.clv_rank(scores["clv"]), expected_rank)
    segment = np.select(
        [expected_rank > lower for _, lower in business.SEGMENTS], range(len(business.SEGMENTS)), default=3
    )
    names = np.asarray([name for name, _ in business.SEGMENTS], dtype=object)[segment]
    expected = pd.Series(names, index=scores.index, name="value_segment", dtype="str")
    pd.testing.assert_series_equal(business.value_segment(scores), expected)


def test_windows_of_posterior_scores_use_the_point_parameters() -> None:
    """Scores with posterior draws hold posterior means: the windows are worked out from the point parameters,
    as without scores to reuse, not taken from those means."""
    import dataclasses

    from models.bundle import PosteriorDraws

    draws = PosteriorDraws(
        purchase={
            "r": np.array([0.2, 0.3]),
            "alpha": np.array([4.0, 5.0]),
            "a": np.array([0.7, 0.9]),
            "b": np.array([2.0, 3.0]),
        },
        spend={},
    )
    bayes = dataclasses.replace(MODEL, posterior=draws)
    customers = pd.DataFrame({"frequency": np.arange(20.0) % 4, "recency": np.arange(20.0), "T": np.full(20, 38.0)})
    means = SCORES.assign(**{f"expected_purchases_{d}d": 99.0 for d in (30, 90, 365)})
    expected = business.clv_windows(MODEL, customers, SCORES)
    pd.testing.assert_frame_equal(business.clv_windows(bayes, customers, means), expected, check_exact=True)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 19, 20, 21, 100, 101, 1000, 4099])
def test_value_segments_by_position_equal_the_ranks_compared_with_each_bound(n: int) -> None:
    """Segments set by position in the sort equal the ranks compared with each bound, at sizes where a bound
    falls on a position (20, 100) and next to one; ties in row order."""
    clv = np.random.default_rng(n).integers(0, 5, n).astype(np.float64)
    scores = pd.DataFrame({"clv": clv})
    rank = scores["clv"].rank(pct=True, method="first").to_numpy()
    segment = np.select([rank > lower for _, lower in business.SEGMENTS], range(len(business.SEGMENTS)), default=3)
    expected = np.asarray([name for name, _ in business.SEGMENTS], dtype=object)[segment]
    assert business.value_segment(scores).tolist() == expected.tolist()


def _cohort_table_by_name(scores: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """The cohort table as it was worked out before: grouped by a column of cohort names."""
    frame = scores.assign(cohort=_cohort_months_per_customer(customers["first_purchase"]))
    value = business.value_column(scores)
    columns: dict[str, tuple[str, str]] = {"customers": ("customer_id", "size")}
    if value == "clv":
        columns |= {"clv_mean": ("clv", "mean"), "clv_total": ("clv", "sum")}
        columns["historical_clv_mean"] = ("historical_clv", "mean")
    else:
        columns |= {f"{value}_mean": (value, "mean"), f"{value}_total": (value, "sum")}
    columns["p_alive_mean"] = ("p_alive", "mean")
    return frame.groupby("cohort").agg(**columns).reset_index()


@pytest.mark.parametrize("feed", ["cdnow", "generated"])
def test_cohort_table_by_code_equals_by_name(feed: str, tmp_path: Path) -> None:
    from models.scoring import score_customers

    full = _full_summary(feed, tmp_path)
    scores = score_customers(MODEL, full).assign(historical_clv=full["total_spend"].to_numpy())
    # a tenth of the customers without a first purchase, and the months' order not the rows'
    missing = full.assign(first_purchase=full["first_purchase"].where(np.arange(len(full)) % 10 != 3))
    events = scores.drop(columns=["clv", "expected_order_value", "historical_clv"])
    for frame, customers in ((scores, full), (scores, missing), (events, full), (events.iloc[::-1], full.iloc[::-1])):
        got, before = business.cohort_table(frame, customers), _cohort_table_by_name(frame, customers)
        assert len(got) >= 3
        assert got["customers"].sum() == customers["first_purchase"].notna().sum()
        pd.testing.assert_frame_equal(got, before, check_exact=True)
    # no cohort at all: no customer, or none with a first purchase
    nobody = full.assign(first_purchase=pd.NaT)  # type: ignore[arg-type]  # pandas-stubs leave NaT out of scalars
    for frame, customers in ((scores.head(0), full.head(0)), (scores, nobody)):
        got, before = business.cohort_table(frame, customers), _cohort_table_by_name(frame, customers)
        assert got.empty
        pd.testing.assert_frame_equal(got, before, check_exact=True)


def _segment_table_by_name(scores: pd.DataFrame) -> pd.DataFrame:
    """The segment table as it was worked out before: grouped by the segment names."""
    segments = scores["value_segment"] if "value_segment" in scores.columns else business.value_segment(scores)
    table = (
        scores.assign(value_segment=segments)
        .groupby("value_segment")
        .agg(
            customers=("customer_id", "size"),
            clv_total=("clv", "sum"),
            clv_mean=("clv", "mean"),
            churn_risk_mean=("churn_risk", "mean"),
        )
    )
    table["clv_share"] = table["clv_total"] / table["clv_total"].sum()
    return table.reindex([name for name, _ in business.SEGMENTS]).dropna(how="all").reset_index()


@pytest.mark.parametrize("feed", ["cdnow", "generated"])
def test_segment_table_by_code_equals_by_name(feed: str, tmp_path: Path) -> None:
    from models.scoring import score_customers

    full = _full_summary(feed, tmp_path)
    plain = score_customers(MODEL, full)
    scores = plain.assign(value_segment=business.value_segment(plain))
    assert str(scores["value_segment"].dtype) == "str"
    # every tenth customer without a segment, the names as Python objects, and another row order
    gaps = scores.assign(value_segment=scores["value_segment"].where(np.arange(len(scores)) % 10 != 3))
    objects = scores.assign(value_segment=scores["value_segment"].astype(object))
    names = [name for name, _ in business.SEGMENTS]  # a categorical groups in its categories' order
    ordered = scores.assign(value_segment=pd.Categorical(scores["value_segment"], categories=names))
    unordered = scores.assign(value_segment=pd.Categorical(scores["value_segment"], categories=names[::-1]))
    for frame in (scores, plain, gaps, objects, ordered, unordered, scores.iloc[::-1], scores.head(3)):
        got, before = business.segment_table(frame), _segment_table_by_name(frame)
        assert got["customers"].sum() == frame.get("value_segment", scores["value_segment"]).notna().sum()
        pd.testing.assert_frame_equal(got, before, check_exact=True)
