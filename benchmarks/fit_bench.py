"""BG/NBD fit benchmark: our fit against lifetimes' plain fit, side by side in one run.

For each size it simulates customers from BG/NBD with the CDNOW parameters (r 0.2516, alpha 4.789,
a 0.7234, b 2.161 per week), born uniformly over 78 weeks and observed at day resolution, and fits
BG/NBD in weeks. Each engine runs in a fresh process; wall time and peak resident memory are
recorded:

- ``clv``: ``models.mle.fit_bgnbd``: the distinct (frequency, recency, T) histories with their counts
  as weights (the time includes finding them), our own fit (:mod:`models.bgnbd_fit`), plus the total
  log-likelihood;
- ``before``: what ``fit_bgnbd`` did before our own fit: the same distinct histories fitted by lifetimes'
  ``BetaGeoFitter`` with weights (:class:`models.lifetimes_fit.LifetimesFitter`), plus the log-likelihood;
- ``lifetimes``: ``BetaGeoFitter().fit(frequency, recency, T)`` on every customer, where it fits.

Wall and CPU seconds (user + system, all threads) are both reported: on a shared machine CPU is the
comparable number. All must reach the same parameters (checked: relative difference below 1e-6).

    python -m benchmarks.fit_bench --sizes 1000000 5000000 --lifetimes-max 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.process import cpu_seconds, peak_mb, run_child

TRUE = {"r": 0.2516, "alpha": 4.789, "a": 0.7234, "b": 2.161}


def customers(n: int, seed: int = 11) -> pd.DataFrame:
    """BG/NBD histories: Poisson(lambda) purchases until a dropout after one of them (chance p each)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    dropout = rng.beta(TRUE["a"], TRUE["b"], n)
    age_days = rng.integers(1, 547, n)
    T = age_days / 7
    arrivals = rng.poisson(rate * T)
    lifetime_purchases = rng.geometric(np.clip(dropout, 1e-12, 1))
    frequency = np.minimum(arrivals, lifetime_purchases)
    # The x-th of n uniform arrival times in (0, T] is T * Beta(x, n - x + 1).
    fraction = rng.beta(np.maximum(frequency, 1), np.maximum(arrivals - frequency, 0) + 1)
    recency_days = np.where(frequency > 0, np.maximum(np.ceil(fraction * age_days), 1), 0)
    return pd.DataFrame({"frequency": frequency.astype(np.float64), "recency": recency_days / 7, "T": T})


def run_clv(n: int) -> dict[str, float]:
    from models.mle import fit_bgnbd

    frame = customers(n)
    start, cpu = time.perf_counter(), cpu_seconds()
    fitted = fit_bgnbd(frame["frequency"], frame["recency"], frame["T"])
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    result = {"seconds": seconds, "cpu_s": cpu, "peak_mb": peak_mb(), "unique": fitted.n_unique_rows}
    return {**result, **fitted.params.as_dict()}


def run_before(n: int) -> dict[str, float]:
    from models import registry
    from models.bgnbd import BetaGeoParams, log_likelihood
    from models.histories import unique_histories
    from models.lifetimes_fit import LifetimesFitter

    frame = customers(n)
    start, cpu = time.perf_counter(), cpu_seconds()
    rows = unique_histories(frame["frequency"], frame["recency"], frame["T"])
    values = LifetimesFitter("BetaGeoFitter")(registry.get("bgnbd"), rows, 0.0, None).values  # noqa: PD011
    log_likelihood(BetaGeoParams(**values), rows["frequency"], rows["recency"], rows["T"], rows["weight"])
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": peak_mb(), "unique": len(rows), **values}


def run_lifetimes(n: int) -> dict[str, float]:
    import warnings

    with warnings.catch_warnings():
        from lifetimes import BetaGeoFitter

    frame = customers(n)
    start, cpu = time.perf_counter(), cpu_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = BetaGeoFitter().fit(frame["frequency"], frame["recency"], frame["T"])
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": peak_mb(), **{k: float(fitter.params_[k]) for k in TRUE}}


RUNNERS = {"clv": run_clv, "before": run_before, "lifetimes": run_lifetimes}


def same_parameters(ours: dict[str, float], theirs: dict[str, float], rel: float = 1e-6) -> bool:
    return all(abs(ours[k] - theirs[k]) <= rel * abs(theirs[k]) for k in TRUE)


def _cell(result: dict[str, float]) -> str:
    return f"{result['seconds']:.2f} s / {result['cpu_s']:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--lifetimes-max", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, n = args.child
        print(json.dumps(RUNNERS[engine](int(n))))
        return 0
    lines = [
        "| customers | distinct histories | clv fit (wall / CPU) | peak RSS | before (wall / CPU) | peak RSS "
        "| lifetimes per customer (wall / CPU) | peak RSS | CPU speed-up over before | same parameters |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for n in args.sizes:
        ours = run_child("benchmarks.fit_bench", "clv", str(n))
        before = run_child("benchmarks.fit_bench", "before", str(n))
        theirs = run_child("benchmarks.fit_bench", "lifetimes", str(n)) if n <= args.lifetimes_max else None
        print(json.dumps({"n": n, "clv": ours, "before": before, "lifetimes": theirs}), file=sys.stderr)
        same = same_parameters(ours, before) and (theirs is None or same_parameters(ours, theirs))
        life = f"{_cell(theirs)} | {theirs['peak_mb']:,.0f} MB" if theirs else "not run | "
        lines.append(
            f"| {n:,} | {int(ours['unique']):,} | {_cell(ours)} | {ours['peak_mb']:,.0f} MB | {_cell(before)} "
            f"| {before['peak_mb']:,.0f} MB | {life} | {before['cpu_s'] / ours['cpu_s']:.1f}x "
            f"| {'yes' if same else 'NO'} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
