"""Challenger benchmark: the two-part gradient-boosted model against BG/NBD x Gamma-Gamma, side by side.

For each size it simulates a daily activity table (customer_id, date, purchases, revenue) from BG/NBD x
Gamma-Gamma with CDNOW's published parameters: customers born uniformly over 52 weeks, observed to week
78. Both engines run the time-shift protocol on it with H = 182 days, each in a fresh process (so that
its peak resident memory is its own; the simulated table is in both):

- ``challenger``: features at week 52 and labels over the next 182 days (``features``, ``labels``), the
  two-part fit (``fit_challenger``), then features at week 78 and the prediction;
- ``btyd``: the (frequency, recency, T, monetary value) summary at week 78 from the same table, the
  BG/NBD fit (``models.mle.fit_bgnbd``, on distinct histories), the Gamma-Gamma fit, then expected
  revenue and churn risk over 182 days.

Times are wall-clock seconds of each phase, and the CPU seconds of all phases (all threads: the trees
use every core through OpenMP, so on a shared machine CPU time is the steadier number); ``data_mb`` is
the resident memory once the table exists.

    python -m benchmarks.challenger_bench --sizes 100000 1000000

Measured 2026-12-02 on a shared 2-core machine (load average 5-9), at 1,000,000 customers (2.4M activity
rows): BG/NBD x GG 2.7 s CPU, 719 MB peak; the challenger 118 s CPU (274 s wall) with OpenMP's default
threads and 29 s CPU (91 s wall) with OMP_NUM_THREADS=1, 1,490 MB peak: 11-44x the CPU and 2.1x the
memory of BTYD. Predictions are identical with either thread count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.process import cpu_seconds, peak_mb, run_child

H = 182
ORIGIN = pd.Timestamp("2000-01-01")
TRAINING_CUTOFF = ORIGIN + pd.Timedelta(days=364 - 1)  # end of week 52
CALIBRATION_END = TRAINING_CUTOFF + pd.Timedelta(days=H)  # end of week 78
PURCHASE = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
SPEND = {"p": 6.2488, "q": 3.7446, "v": 15.4477}


def activity(n: int, seed: int = 11) -> pd.DataFrame:
    """Daily activity of ``n`` BG/NBD x Gamma-Gamma customers up to the calibration end (vectorised)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(PURCHASE["r"], 1 / PURCHASE["alpha"], n)
    dropout = rng.beta(PURCHASE["a"], PURCHASE["b"], n)
    birth = rng.integers(0, 364, n)
    span_days = (CALIBRATION_END - ORIGIN).days + 1 - birth
    arrivals = rng.poisson(rate * span_days / 7)
    repeats = np.minimum(arrivals, rng.geometric(dropout))
    owner = np.repeat(np.arange(n), arrivals)
    offset = rng.uniform(0, span_days[owner])
    order = np.lexsort((offset, owner))
    owner, offset = owner[order], offset[order]
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < repeats[owner]  # the first `repeats` arrivals happen; the customer drops out after the last
    customer = np.r_[np.arange(n), owner[keep]]
    day = np.r_[birth, birth[owner[keep]] + np.floor(offset[keep]).astype(np.int64)]
    nu = rng.gamma(SPEND["q"], 1 / SPEND["v"], n)
    frame = pd.DataFrame({"customer_id": customer, "day": day, "revenue": rng.gamma(SPEND["p"], 1 / nu[customer])})
    daily = frame.groupby(["customer_id", "day"], sort=True, as_index=False)[["revenue"]].sum()
    return pd.DataFrame(
        {
            "customer_id": daily["customer_id"].to_numpy(),
            "date": ORIGIN + pd.to_timedelta(daily["day"].to_numpy(), unit="D"),
            "purchases": np.ones(len(daily), dtype=np.int64),
            "revenue": daily["revenue"].to_numpy(),
        }
    )


def _timed(phases: dict[str, float], name: str, start: float) -> float:
    now = time.perf_counter()
    phases[f"{name}_seconds"] = now - start
    return now


def run_challenger(n: int) -> dict[str, float]:
    from models.challenger import fit_challenger
    from models.challenger_features import features, labels

    table = activity(n)
    out: dict[str, float] = {"data_mb": peak_mb(), "rows": float(len(table))}
    start, cpu = time.perf_counter(), cpu_seconds()
    train, target = features(table, TRAINING_CUTOFF), labels(table, TRAINING_CUTOFF, H)
    scoring = features(table, CALIBRATION_END)
    mark = _timed(out, "features", start)
    fitted = fit_challenger(train, target)
    mark = _timed(out, "fit", mark)
    predicted = fitted.predict(scoring)
    _timed(out, "predict", mark)
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = cpu_seconds() - cpu
    out["peak_mb"] = peak_mb()
    out["predicted_total"] = float(predicted["expected_revenue"].sum())
    out["iterations"] = float(fitted.classifier.n_iter_ + fitted.regressor.n_iter_)
    return out


def summary(table: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """frequency, recency and T in weeks, and the mean repeat spend, of every customer at ``cutoff``."""
    rows = table[table["date"] <= cutoff]
    grouped = rows.groupby("customer_id", sort=True)
    first, last = grouped["date"].min(), grouped["date"].max()
    f = (grouped["purchases"].sum() - 1).to_numpy(dtype=np.float64)
    repeat_spend = grouped["revenue"].sum().to_numpy() - grouped["revenue"].first().to_numpy()
    return pd.DataFrame(
        {
            "frequency": f,
            "recency": ((last - first).dt.days / 7).to_numpy(),
            "T": ((cutoff - first).dt.days / 7).to_numpy(),
            "monetary_value": np.where(f > 0, repeat_spend / np.maximum(f, 1), 0.0),
        },
        index=first.index,
    )


def run_btyd(n: int) -> dict[str, float]:
    from models import purchase, spend
    from models.mle import fit_bgnbd, fit_gamma_gamma

    table = activity(n)
    out: dict[str, float] = {"data_mb": peak_mb(), "rows": float(len(table))}
    start, cpu = time.perf_counter(), cpu_seconds()
    rows = summary(table, CALIBRATION_END)
    f, r, t, m = (rows[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    mark = _timed(out, "features", start)
    purchases = fit_bgnbd(f, r, t).params
    order_value = fit_gamma_gamma(f, m).params
    mark = _timed(out, "fit", mark)
    revenue = purchase.expected_purchases(purchases, H / 7, f, r, t) * spend.expected_order_value(order_value, f, m)
    purchase.p_no_purchase(purchases, H / 7, f, r, t)
    _timed(out, "predict", mark)
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = cpu_seconds() - cpu
    out["peak_mb"] = peak_mb()
    out["predicted_total"] = float(revenue.sum())
    return out | {k: float(v) for k, v in purchases.as_dict().items()}


RUNNERS = {"challenger": run_challenger, "btyd": run_btyd}


def _cells(result: dict[str, float]) -> str:
    return (
        f"{result['features_seconds']:.2f} s | {result['fit_seconds']:.2f} s | {result['predict_seconds']:.2f} s | "
        f"{result['seconds']:.2f} s | {result['cpu_seconds']:.2f} s | "
        f"{result['data_mb']:,.0f} / {result['peak_mb']:,.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, n = args.child
        print(json.dumps(RUNNERS[engine](int(n))))
        return 0
    lines = [
        "| customers | activity rows | model | features | fit | predict | total | CPU | RSS data / peak | time ratio "
        "| CPU ratio | peak ratio |",
        "|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in args.sizes:
        btyd = run_child("benchmarks.challenger_bench", "btyd", str(n))
        ml = run_child("benchmarks.challenger_bench", "challenger", str(n))
        print(json.dumps({"n": n, "btyd": btyd, "challenger": ml}), file=sys.stderr)
        time_ratio = ml["seconds"] / btyd["seconds"]
        cpu_ratio = ml["cpu_seconds"] / btyd["cpu_seconds"]
        peak_ratio = ml["peak_mb"] / btyd["peak_mb"]
        lines.append(f"| {n:,} | {int(btyd['rows']):,} | BG/NBD x GG | {_cells(btyd)} | 1 | 1 | 1 |")
        lines.append(f"| | | challenger | {_cells(ml)} | {time_ratio:.1f}x | {cpu_ratio:.1f}x | {peak_ratio:.2f}x |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
