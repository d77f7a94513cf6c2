"""BG/BB: replication on the donations data (Fader, Hardie & Shang 2010), lifetimes' formulas, simulation."""

from __future__ import annotations

import importlib.resources
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln

from models import bgbb
from models.bgbb import BetaGeoBetaBinomParams

with warnings.catch_warnings():
    from lifetimes import BetaGeoBetaBinomFitter

# Fader, Hardie & Shang (2010) on the donations data (../shared/notes/reference-values.md).
PAPER = BetaGeoBetaBinomParams(alpha=1.2035, beta=0.7497, gamma=0.6567, delta=2.7834)


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    """11,104 donors over 6 opportunities, one row per (frequency, recency) with its count of donors."""
    with importlib.resources.as_file(importlib.resources.files("lifetimes") / "datasets" / "donations.csv") as path:
        return pd.read_csv(path)


@pytest.fixture(scope="module")
def lifetimes_fit(donations: pd.DataFrame) -> BetaGeoBetaBinomFitter:
    d = donations
    return BetaGeoBetaBinomFitter().fit(d["frequency"], d["recency"], d["periods"], weights=d["weights"])


def simulate(rng: np.random.Generator, params: BetaGeoBetaBinomParams, size: int, n: int) -> tuple[np.ndarray, ...]:
    """(x, t_x, n) of customers watched for n opportunities: inactive from a geometric opportunity on."""
    p = rng.beta(params.alpha, params.beta, size)
    theta = np.clip(rng.beta(params.gamma, params.delta, size), 1e-300, 1)
    first_inactive = rng.geometric(theta)
    t = np.arange(1, n + 1)[None, :]
    buys = (t < first_inactive[:, None]) & (rng.random((size, n)) < p[:, None])
    last = np.where(buys.any(axis=1), n - np.argmax(buys[:, ::-1], axis=1), 0)
    return buys.sum(axis=1), last, np.full(size, n)


def test_replicates_the_donations_fit(donations: pd.DataFrame, lifetimes_fit: BetaGeoBetaBinomFitter) -> None:
    d = donations
    fit = bgbb.fit_bgbb(d["frequency"], d["recency"], d["periods"], d["weights"])
    for name, value in PAPER.as_dict().items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=1e-3), name
    assert fit.stats.n_observations == 11_104
    assert fit.n_unique_rows == 22
    # The total log-likelihood in the paper's units: lifetimes' per-row terms times the weights.
    lifetimes_rows = lifetimes_fit._loglikelihood(
        lifetimes_fit.params_.to_numpy(), d["frequency"].to_numpy(), d["recency"].to_numpy(), d["periods"].to_numpy()
    )
    assert fit.stats.log_likelihood == pytest.approx(float(lifetimes_rows @ d["weights"]), abs=1e-6)
    assert fit.stats.log_likelihood == pytest.approx(-33225.58, abs=0.01)
    for name in PAPER.as_dict():
        assert fit.standard_errors[name] == pytest.approx(lifetimes_fit.standard_errors_[name], rel=1e-5), name


def _histories() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every valid (x, t_x, n) with n <= 12."""
    rows = [(x, t, n) for n in range(13) for t in range(n + 1) for x in range(t + 1) if x > 0 or t == 0]
    return tuple(np.array(v) for v in zip(*rows, strict=True))  # type: ignore[return-value]


@pytest.mark.parametrize(
    "params", [PAPER, BetaGeoBetaBinomParams(0.4, 2.0, 1.7, 0.9), BetaGeoBetaBinomParams(3.0, 5.0, 0.2, 12.0)]
)
def test_matches_lifetimes_conditional_predictions(params: BetaGeoBetaBinomParams) -> None:
    """Equal to 1e-10 once lifetimes' own offset is undone: it adds 1e-15 to the sum of the dropout terms
    before dividing by B(alpha, beta) B(gamma, delta), which shifts its likelihood L by a relative 1e-15 / (L B B)
    (up to 1.4e-9 for these histories; 4e-13 on the donations data)."""
    fitter = BetaGeoBetaBinomFitter()
    fitter.params_ = pd.Series(params.as_dict())
    x, t_x, n = _histories()
    likelihood = np.exp(bgbb.log_likelihood_rows(params, x, t_x, n))
    offset = 1e-15 * np.exp(-betaln(params.alpha, params.beta) - betaln(params.gamma, params.delta))
    undo = (likelihood + offset) / likelihood
    for m in (0, 1, 5):
        np.testing.assert_allclose(
            bgbb.p_alive(params, x, t_x, n, m), fitter.conditional_probability_alive(m, x, t_x, n) * undo, rtol=1e-10
        )
    for horizon in (1, 5, 10, 50):
        np.testing.assert_allclose(
            bgbb.expected_transactions(params, horizon, x, t_x, n),
            fitter.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, n) * undo,
            rtol=1e-10,
        )


def test_matches_lifetimes_on_the_donations(donations: pd.DataFrame, lifetimes_fit: BetaGeoBetaBinomFitter) -> None:
    d = donations
    params = BetaGeoBetaBinomParams(*lifetimes_fit.params_.to_numpy())
    f, r, n = d["frequency"], d["recency"], d["periods"]
    for m in (0, 1, 5):
        np.testing.assert_allclose(
            bgbb.p_alive(params, f, r, n, m), lifetimes_fit.conditional_probability_alive(m, f, r, n), rtol=1e-10
        )
    for horizon in (1, 5, 10, 50):
        np.testing.assert_allclose(
            bgbb.expected_transactions(params, horizon, f, r, n),
            lifetimes_fit.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, n),
            rtol=1e-10,
        )


def test_new_customer_expectation_and_count_distribution() -> None:
    a, b, g, d = PAPER.alpha, PAPER.beta, PAPER.gamma, PAPER.delta
    n = np.arange(0, 15)
    # FHS (2010), eq. 9 (fine away from gamma = 1).
    closed = (
        a
        / (a + b)
        * d
        / (g - 1)
        * (1 - np.exp(gammaln(g + d) - gammaln(g + d + n) + gammaln(1 + d + n) - gammaln(1 + d)))
    )
    np.testing.assert_allclose(bgbb.expected_transactions_new_customer(PAPER, n), closed, rtol=1e-12)
    for periods in (1, 6, 11):
        x = np.arange(periods + 1)
        pmf = bgbb.transaction_count_pmf(PAPER, x, periods)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-13)
        assert pmf @ x == pytest.approx(bgbb.expected_transactions_new_customer(PAPER, periods)[()], rel=1e-12)
    assert bgbb.transaction_count_pmf(PAPER, 7, 6)[()] == 0.0


def test_count_distribution_fits_the_donations(donations: pd.DataFrame) -> None:
    """FHS (2010), Figure 3: expected donors by number of repeat donations in 1996-2001 against the actual."""
    expected = 11_104 * bgbb.transaction_count_pmf(PAPER, np.arange(7), 6)
    actual = donations.groupby("frequency")["weights"].sum().to_numpy()
    np.testing.assert_allclose(expected, actual, rtol=0.08)
    assert expected.round().tolist() == [3455, 1889, 1349, 1113, 1018, 1027, 1253]


def test_gamma_one_has_no_singularity() -> None:
    """Eq. 13's delta / (gamma - 1) is 0/0 at gamma = 1; our sum form is continuous through it."""
    x, t_x, n = _histories()
    at_one = bgbb.expected_transactions(BetaGeoBetaBinomParams(1.2, 0.75, 1.0, 2.8), 10, x, t_x, n)
    near = bgbb.expected_transactions(BetaGeoBetaBinomParams(1.2, 0.75, 1.0 + 1e-9, 2.8), 10, x, t_x, n)
    assert np.isfinite(at_one).all()
    np.testing.assert_allclose(at_one, near, rtol=1e-7)


def _discounted_by_steps(
    params: BetaGeoBetaBinomParams, horizon: int, rate: float, x: np.ndarray, t_x: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """The former implementation, the reference: the differences of eq. 13 over k = 1..horizon, discounted."""
    total = np.zeros(np.shape(x), dtype=np.float64)
    previous = np.zeros_like(total)
    for k in range(1, horizon + 1):
        current = bgbb.expected_transactions(params, k, x, t_x, n)
        total += (current - previous) / (1.0 + rate) ** k
        previous = current
    return total


@pytest.mark.parametrize(
    "params",
    [
        PAPER,
        BetaGeoBetaBinomParams(0.4, 2.0, 1.7, 0.9),
        BetaGeoBetaBinomParams(3.0, 5.0, 0.2, 12.0),
        BetaGeoBetaBinomParams(1.2, 0.75, 1.0, 2.8),  # gamma = 1
    ],
)
def test_discounted_transactions_in_closed_form_equal_the_discounted_steps(params: BetaGeoBetaBinomParams) -> None:
    x, t_x, n = _histories()
    x, t_x, n = (
        np.concatenate([x, [0, 7, 120]]),
        np.concatenate([t_x, [0, 200, 150]]),
        np.concatenate([n, [300, 200, 150]]),
    )
    for horizon in (0, 1, 5, 12, 52):
        for rate in (0.0, 0.0080, 0.1, 1.5):
            expected = _discounted_by_steps(params, horizon, rate, x, t_x, n)
            got = bgbb.discounted_transactions(params, horizon, rate, x, t_x, n)
            assert got.shape == expected.shape
            if horizon == 0:
                assert got.tolist() == [0.0] * len(x)
                continue
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    # r = 0: eq. 13 itself.
    np.testing.assert_allclose(
        bgbb.discounted_transactions(params, 12, 0.0, x, t_x, n),
        bgbb.expected_transactions(params, 12, x, t_x, n),
        rtol=1e-12,
        atol=0,
    )


def test_special_histories() -> None:
    # Histories are packed into one integer key; beyond 2M opportunities they are sorted as rows instead.
    for n in (6, 3_000_000):
        x, t_x, n_out, inverse = bgbb.unique_histories([1, 0, 1], [n, 0, n], [n, n, n])
        assert (x.tolist(), t_x.tolist(), n_out.tolist(), inverse.tolist()) == ([0, 1], [0, n], [n, n], [1, 0, 1])
    # A transaction at the last opportunity proves the customer active.
    assert bgbb.p_alive(PAPER, [1, 6], [6, 6], [6, 6]).tolist() == pytest.approx([1.0, 1.0], rel=1e-14)
    # No opportunity yet: the likelihood is 1 and the expectation is the new customer's.
    assert bgbb.log_likelihood_rows(PAPER, [0], [0], [0])[0] == pytest.approx(0.0, abs=1e-14)
    assert bgbb.expected_transactions(PAPER, 6, 0, 0, 0)[()] == pytest.approx(
        bgbb.expected_transactions_new_customer(PAPER, 6)[()], rel=1e-12
    )
    assert bgbb.expected_transactions(PAPER, 0, [2, 0], [3, 0], [6, 6]).tolist() == [0.0, 0.0]
    per_customer = bgbb.expected_transactions(PAPER, [1, 5], [2, 2], [3, 3], [6, 6])
    assert per_customer.tolist() == pytest.approx(
        [bgbb.expected_transactions(PAPER, h, 2, 3, 6)[()] for h in (1, 5)], rel=1e-14
    )


def test_gradient_is_the_derivative_of_the_likelihood(donations: pd.DataFrame) -> None:
    d = donations
    x, t_x, n, inverse = bgbb.unique_histories(d["frequency"], d["recency"], d["periods"])
    w = np.bincount(inverse, d["weights"].to_numpy(dtype=float)).astype(np.float64)
    values = np.array([1.3, 0.7, 0.5, 3.0])
    ll, grad = bgbb._log_likelihood_and_gradient(BetaGeoBetaBinomParams(*values), x, t_x, n, w)
    step = 1e-6
    numeric = [
        (
            bgbb._log_likelihood_and_gradient(BetaGeoBetaBinomParams(*(values + step * e)), x, t_x, n, w)[0]
            - bgbb._log_likelihood_and_gradient(BetaGeoBetaBinomParams(*(values - step * e)), x, t_x, n, w)[0]
        )
        / (2 * step)
        for e in np.eye(4)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6)
    assert ll == pytest.approx(bgbb.log_likelihood(BetaGeoBetaBinomParams(*values), x, t_x, n, w), rel=1e-14)


def test_recovers_simulated_parameters_at_any_scale() -> None:
    rng = np.random.default_rng(42)
    truth = BetaGeoBetaBinomParams(1.2, 0.75, 0.65, 2.8)
    x, t_x, n = simulate(rng, truth, 100_000, 10)
    fit = bgbb.fit_bgbb(x, t_x, n)
    for name, value in truth.as_dict().items():
        found, se = getattr(fit.params, name), fit.standard_errors[name]
        assert found == pytest.approx(value, rel=0.15), name
        assert abs(found - value) < 3 * se, name
    assert fit.n_unique_rows <= 66  # the (x, t_x) pairs possible in 10 opportunities
    rows = bgbb.unique_histories(x, t_x, n)
    weights = np.bincount(rows[3]) * 100.0  # 10M customers, the same histories
    large = bgbb.fit_bgbb(rows[0], rows[1], rows[2], weights)
    assert large.params.delta == pytest.approx(fit.params.delta, rel=1e-5)
    assert large.standard_errors["delta"] == pytest.approx(fit.standard_errors["delta"] / 10, rel=1e-3)


@pytest.mark.parametrize("small", [1e-9, 1e-3, 1.0, 1e3, 1e9])
@pytest.mark.parametrize("large", [1e-9, 1.0, 1e9])
def test_numerical_corners_are_finite_and_silent(small: float, large: float) -> None:
    x, t_x, n = _histories()
    for params in (
        BetaGeoBetaBinomParams(small, large, small, large),
        BetaGeoBetaBinomParams(large, small, large, small),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = [
                bgbb.log_likelihood_rows(params, x, t_x, n),
                bgbb.p_alive(params, x, t_x, n),
                bgbb.expected_transactions(params, 52, x, t_x, n),
                bgbb.expected_transactions_new_customer(params, [0, 1, 100]),
                bgbb.transaction_count_pmf(params, [0, 3, 12], 12),
            ]
        for value in values:
            assert np.isfinite(value).all()


def test_bad_histories_are_refused() -> None:
    for x, t_x, n in [(2, 1, 6), (1, 7, 6), (0, 2, 6), (1.5, 2, 6), (-1, 0, 6)]:
        with pytest.raises(ValueError, match="frequency <= recency <= n_periods"):
            bgbb.p_alive(PAPER, [x], [t_x], [n])


@pytest.mark.slow
def test_pymc_map_equals_the_mle(donations: pd.DataFrame) -> None:
    import pymc as pm

    d = donations
    mle = bgbb.fit_bgbb(d["frequency"], d["recency"], d["periods"], d["weights"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with bgbb.bgbb_pymc_model(d["frequency"], d["recency"], d["periods"], d["weights"]):
            found = pm.find_MAP(progressbar=False, seed=1)
    for name, value in mle.params.as_dict().items():
        assert float(found[name]) == pytest.approx(value, rel=5e-3), name


def test_the_penalized_fit_is_lifetimes_penalized_fit(donations: pd.DataFrame) -> None:
    """lifetimes' penalizer_coef (an L2 penalty on the mean log-likelihood per donor); the statistics keep the
    unpenalized log-likelihood."""
    d = donations
    for penalizer in (0.01, 0.1):
        theirs = BetaGeoBetaBinomFitter(penalizer_coef=penalizer).fit(
            d["frequency"], d["recency"], d["periods"], weights=d["weights"]
        )
        fit = bgbb.fit_bgbb(d["frequency"], d["recency"], d["periods"], d["weights"], penalizer=penalizer)
        for name, value in theirs.params_.items():
            assert getattr(fit.params, name) == pytest.approx(value, rel=1e-4), (penalizer, name)
        assert fit.penalizer == penalizer
        rows = bgbb.log_likelihood_rows(fit.params, d["frequency"], d["recency"], d["periods"])
        assert fit.stats.log_likelihood == pytest.approx(float(rows @ d["weights"]), rel=1e-12)
        assert (
            fit.stats.log_likelihood
            < bgbb.fit_bgbb(d["frequency"], d["recency"], d["periods"], d["weights"]).stats.log_likelihood
        )


def test_a_fit_without_heterogeneity_takes_the_smallest_penalizer_that_converges() -> None:
    """Every customer with the same purchase and dropout probabilities: the Beta shapes run off to infinity and
    the plain fit does not converge; the remedy is the first penalizer that gives a fit, and says why."""
    from models.fitted import FitError

    rng = np.random.default_rng(0)
    size, n = 5000, 10
    first_inactive = rng.geometric(0.05, size)
    t = np.arange(1, n + 1)[None, :]
    buys = (t < first_inactive[:, None]) & (rng.random((size, n)) < 0.2)
    x = buys.sum(axis=1)
    t_x = np.where(buys.any(axis=1), n - np.argmax(buys[:, ::-1], axis=1), 0)
    periods = np.full(size, n)
    with pytest.raises(FitError, match="did not converge"):
        bgbb.fit_bgbb(x, t_x, periods)
    fit = bgbb.fit_bgbb_with_remedies(x, t_x, periods, (0.1, 0.001, 0.01))
    assert fit.penalizer == 0.001
    assert fit.remedy == "penalizer 0.001 (BG/BB: the maximum-likelihood fit did not converge)"
    assert fit.params.alpha / (fit.params.alpha + fit.params.beta) == pytest.approx(0.2, abs=0.02)


def test_a_fit_that_converges_takes_no_remedy(donations: pd.DataFrame) -> None:
    d = donations
    rows = d.loc[d.index.repeat(d["weights"])]
    fit = bgbb.fit_bgbb_with_remedies(rows["frequency"], rows["recency"], rows["periods"], (0.001,))
    assert (fit.penalizer, fit.remedy) == (0.0, "")
    assert fit.params.alpha == pytest.approx(PAPER.alpha, rel=1e-3)
