"""sBG benchmark: fit the shifted beta-geometric by acquisition cohort, then score the active subscribers.

For each size it simulates subscribers from the sBG (alpha 1.2, beta 4.0: the churn probability
theta ~ Beta(alpha, beta), then one renewal decision a month, churning with probability theta), acquired
evenly over 24 monthly cohorts and observed at the end of the last one (cohort k has made 24 - k
decisions), each on one of two plans ($10 or $30 a month). In a fresh process per size, wall time and
peak resident memory are recorded for:

- ``fit``: :func:`pipeline.contractual.validation.fit_cohorts`, the pooled sBG and one per cohort by
  maximum likelihood on renewal counts (the time includes counting them);
- ``score``: :func:`models.subscription_model.score_subscribers` on every active subscriber (P(renew),
  churn risk over 3 periods, expected remaining lifetime, DERL at 10% a year, CLV), as ``clv train``
  and the registered model do; and, for the cost of one call at that size, on every row as if all were active.

    python -m benchmarks.sbg_bench --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.process import peak_mb, run_child

TRUE = {"alpha": 1.2, "beta": 4.0}
COHORTS = 24


def subscribers(n: int, seed: int = 5) -> pd.DataFrame:
    """One row per subscriber as the contractual prepare writes it: customer_id, cohort (YYYY-MM-01),
    renewals, age (decisions due), churned, price."""
    rng = np.random.default_rng(seed)
    cohort = rng.integers(0, COHORTS, n)
    age = COHORTS - cohort
    theta = rng.beta(TRUE["alpha"], TRUE["beta"], n)
    lifetime = rng.geometric(theta)  # periods paid; renewals made = lifetime - 1
    renewals = np.minimum(lifetime - 1, age)
    months = pd.period_range("2022-01", periods=COHORTS, freq="M").strftime("%Y-%m-01").to_numpy()
    return pd.DataFrame(
        {
            "customer_id": np.char.add("s", np.arange(n).astype(str)),
            "cohort": months[cohort],
            "renewals": renewals.astype(np.int64),
            "age": age.astype(np.int64),
            "churned": renewals < age,
            "price": np.where(rng.random(n) < 0.5, 10.0, 30.0),
        }
    )


def run(n: int) -> dict[str, float]:
    from models.subscription_model import SubscriptionParams, score_subscribers
    from pipeline.contractual.validation import fit_cohorts

    frame = subscribers(n)
    start = time.perf_counter()
    fits = fit_cohorts(frame)
    fit_seconds = time.perf_counter() - start
    model = SubscriptionParams(
        pooled=fits.pooled.params, cohorts=dict(fits.params), discount_rate=1.1 ** (1 / 12) - 1, risk_periods=3
    )
    active = frame.loc[~frame["churned"], ["customer_id", "cohort", "renewals", "price"]].reset_index(drop=True)
    start = time.perf_counter()
    scores = score_subscribers(model, active)
    score_seconds = time.perf_counter() - start
    start = time.perf_counter()
    every = score_subscribers(model, frame)  # every row, as if all were active: the cost of a 1M-row call
    score_all_seconds = time.perf_counter() - start
    return {
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
        "score_all_seconds": score_all_seconds,
        "scored_all": float(len(every)),
        "peak_mb": peak_mb(),
        "active": float(len(active)),
        "own_cohort_fits": float(len(fits.own)),
        "alpha": fits.pooled.params.alpha,
        "beta": fits.pooled.params.beta,
        "clv_total": float(scores["clv"].sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run(int(args.child[0]))))
        return 0
    lines = [
        "| subscribers | cohorts fitted | sBG fit | active scored | scoring | all rows scored | peak RSS "
        "| alpha (1.2) | beta (4.0) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in args.sizes:
        r = run_child("benchmarks.sbg_bench", str(n))
        print(json.dumps({"n": n, **r}), file=sys.stderr)
        lines.append(
            f"| {n:,} | {int(r['own_cohort_fits'])} + pooled | {r['fit_seconds']:.2f} s | {int(r['active']):,} | "
            f"{r['score_seconds']:.2f} s | {r['score_all_seconds']:.2f} s | {r['peak_mb']:,.0f} MB | "
            f"{r['alpha']:.4f} | {r['beta']:.4f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
