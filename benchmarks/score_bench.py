"""Scoring benchmark: our scoring against lifetimes' equivalents, side by side in one run.

For each size it draws a synthetic per-customer summary (daily purchase periods in weeks over two
years, like a real customer base) and scores it with the CDNOW-fitted BG/NBD x Gamma-Gamma
parameters. Each engine runs in a fresh process, and its wall time and peak resident memory are
recorded:

- ``clv``: ``models.scoring.score_customers`` in chunks of 1M customers (what ``clv score``,
  REST and Spark call): P(alive), churn risk and tier, expected purchases at 30/90/365 days,
  expected order value, 12-month discounted CLV;
- ``pyfunc``: the same through a saved MLflow pyfunc model's ``predict`` (signature checks included);
- ``lifetimes``: ``conditional_probability_alive``, ``conditional_expected_number_of_purchases_up_to_time``
  at the three horizons, ``conditional_expected_average_profit`` and ``customer_lifetime_value``
  (12 months), where it fits.

    python -m benchmarks.score_bench --sizes 1000000 10000000 --lifetimes-max 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.process import peak_mb, run_child
from models.bundle import CLVModelParams

CHUNK = 1_000_000
PARAMS = {"r": 0.2516, "alpha": 4.789, "a": 0.7234, "b": 2.161, "p": 6.275, "q": 3.624, "v": 14.98}


def customers(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age_days = rng.integers(1, 730, n)
    frequency = np.minimum(rng.poisson(1.5, n), age_days)
    last_days = np.where(frequency > 0, np.ceil(rng.random(n) * age_days), 0)
    return pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.arange(n).astype(str)),
            "frequency": frequency.astype(np.float64),
            "recency": last_days / 7,
            "T": age_days / 7,
            "monetary_value": np.where(frequency > 0, np.round(rng.lognormal(3, 0.6, n), 2), 0.0),
        }
    )


def _model() -> CLVModelParams:
    from models.bgnbd import BetaGeoParams
    from models.bundle import ScoringSpec
    from models.gamma_gamma import GammaGammaParams

    p = PARAMS
    return CLVModelParams(
        BetaGeoParams(p["r"], p["alpha"], p["a"], p["b"]), GammaGammaParams(p["p"], p["q"], p["v"]), ScoringSpec()
    )


def run_clv(n: int, folder: Path) -> dict[str, float]:
    from models.scoring import score_customers

    frame, model = customers(n), _model()
    start = time.perf_counter()
    total = 0.0
    for begin in range(0, n, CHUNK):
        total += float(score_customers(model, frame.iloc[begin : begin + CHUNK])["clv"].sum())
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "clv_total": total}


def run_pyfunc(n: int, folder: Path) -> dict[str, float]:
    import warnings

    import mlflow

    import models
    from models.pyfunc import PARAMS_ARTIFACT, write_params

    package = Path(models.__file__).parent
    target = folder / f"model_{n}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            path=str(target),
            python_model=str(package / "serving.py"),
            artifacts={PARAMS_ARTIFACT: str(write_params(_model(), folder / "params.json"))},
            code_paths=[str(package)],
            pip_requirements=["mlflow", "numpy", "pandas", "scipy"],
        )
        loaded = mlflow.pyfunc.load_model(str(target))
    frame = customers(n)
    start = time.perf_counter()
    total = 0.0
    for begin in range(0, n, CHUNK):
        total += float(loaded.predict(frame.iloc[begin : begin + CHUNK].reset_index(drop=True))["clv"].sum())
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "clv_total": total}


def run_lifetimes(n: int, folder: Path) -> dict[str, float]:
    import warnings

    with warnings.catch_warnings():
        from lifetimes import BetaGeoFitter, GammaGammaFitter

    bg, gg = BetaGeoFitter(), GammaGammaFitter()
    bg.params_ = pd.Series({k: PARAMS[k] for k in ("r", "alpha", "a", "b")})
    gg.params_ = pd.Series({k: PARAMS[k] for k in ("p", "q", "v")})
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time  # what fit() would set
    frame = customers(n)
    f, r, t, m = frame["frequency"], frame["recency"], frame["T"], frame["monetary_value"]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg.conditional_probability_alive(f, r, t)
        for days in (30, 90, 365):
            bg.conditional_expected_number_of_purchases_up_to_time(days / 7, f, r, t)
        gg.conditional_expected_average_profit(f, m)
        clv = gg.customer_lifetime_value(bg, f, r, t, m, time=12, discount_rate=0.0079741, freq="W")
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "clv_total": float(clv.sum())}


RUNNERS = {"clv": run_clv, "pyfunc": run_pyfunc, "lifetimes": run_lifetimes}


def _child(engine: str, n: int, folder: Path) -> dict[str, float]:
    return run_child("benchmarks.score_bench", engine, str(n), str(folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--lifetimes-max", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, n, folder = args.child
        print(json.dumps(RUNNERS[engine](int(n), Path(folder))))
        return 0
    lines = [
        "| customers | clv scoring | peak RSS | via pyfunc | peak RSS | lifetimes | peak RSS | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            ours, pyfunc = _child("clv", n, Path(tmp)), _child("pyfunc", n, Path(tmp))
            theirs = _child("lifetimes", n, Path(tmp)) if n <= args.lifetimes_max else None
            print(json.dumps({"n": n, "clv": ours, "pyfunc": pyfunc, "lifetimes": theirs}), file=sys.stderr)
            life = (
                f"{theirs['seconds']:.1f} s | {theirs['peak_mb']:,.0f} MB | {theirs['seconds'] / ours['seconds']:.1f}x"
                if theirs
                else "not run | | "
            )
            lines.append(
                f"| {n:,} | {ours['seconds']:.1f} s | {ours['peak_mb']:,.0f} MB | {pyfunc['seconds']:.1f} s | "
                f"{pyfunc['peak_mb']:,.0f} MB | {life} |"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
