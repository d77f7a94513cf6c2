"""Gamma-Gamma fit benchmark: our fit (models.gamma_gamma_fit) against lifetimes' GammaGammaFitter.

For each size it simulates repeat customers from Gamma-Gamma with the CDNOW parameters (p 6.25,
q 3.74, v 15.44): a frequency of 1 + Geometric(0.35) - 1 repeat purchases, a spend rate nu ~ Gamma(q, v)
and a mean spend over x purchases of Gamma(p x, x nu). Each engine runs in a fresh process; wall time
(the fit alone, data in memory) and peak resident memory are recorded:

- ``clv``: ``models.gamma_gamma_fit.fit_gamma_gamma_mle`` (sufficient statistics, analytic gradient and
  Hessian, Newton trust region);
- ``lifetimes``: ``GammaGammaFitter().fit(frequency, monetary_value)`` (BFGS with autograd).

Both must reach the same parameters (checked: relative difference below 1e-3).

    python -m benchmarks.spend_fit_bench --sizes 1000000 5000000 --lifetimes-max 5000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.process import peak_mb, run_child

TRUE = {"p": 6.25, "q": 3.74, "v": 15.44}


def customers(n: int, seed: int = 5) -> pd.DataFrame:
    """Repeat customers' frequency and mean spend drawn from Gamma-Gamma."""
    rng = np.random.default_rng(seed)
    frequency = rng.geometric(0.35, n).astype(np.float64)
    rate = rng.gamma(TRUE["q"], 1 / TRUE["v"], n)
    mean_spend = rng.gamma(TRUE["p"] * frequency, 1 / (frequency * rate))
    return pd.DataFrame({"frequency": frequency, "monetary_value": mean_spend})


def run_clv(n: int) -> dict[str, float]:
    from models.gamma_gamma_fit import fit_gamma_gamma_mle

    frame = customers(n)
    fit_gamma_gamma_mle([1.0, 2.0], [1.0, 3.0])  # imports and first-call costs outside the timing
    start = time.perf_counter()
    fitted = fit_gamma_gamma_mle(frame["frequency"], frame["monetary_value"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_mb(), "passes": fitted.passes, **fitted.params.as_dict()}


def run_lifetimes(n: int) -> dict[str, float]:
    import warnings

    with warnings.catch_warnings():
        from lifetimes import GammaGammaFitter

    frame = customers(n)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = GammaGammaFitter().fit(frame["frequency"], frame["monetary_value"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_mb(), **{k: float(fitter.params_[k]) for k in TRUE}}


RUNNERS = {"clv": run_clv, "lifetimes": run_lifetimes}


def same_parameters(ours: dict[str, float], theirs: dict[str, float], rel: float = 1e-3) -> bool:
    return all(abs(ours[k] - theirs[k]) <= rel * abs(theirs[k]) for k in TRUE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--lifetimes-max", type=int, default=5_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, n = args.child
        print(json.dumps(RUNNERS[engine](int(n))))
        return 0
    lines = [
        "| repeat customers | clv fit | passes | peak RSS | lifetimes fit | peak RSS | speed-up | same parameters |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for n in args.sizes:
        ours = run_child("benchmarks.spend_fit_bench", "clv", str(n))
        theirs = run_child("benchmarks.spend_fit_bench", "lifetimes", str(n)) if n <= args.lifetimes_max else None
        print(json.dumps({"n": n, "clv": ours, "lifetimes": theirs}), file=sys.stderr)
        life = (
            f"{theirs['seconds']:.2f} s | {theirs['peak_mb']:,.0f} MB | {theirs['seconds'] / ours['seconds']:.0f}x | "
            f"{'yes' if same_parameters(ours, theirs) else 'NO'}"
            if theirs
            else "not run | | | "
        )
        lines.append(
            f"| {n:,} | {ours['seconds']:.2f} s | {int(ours['passes'])} | {ours['peak_mb']:,.0f} MB | {life} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
