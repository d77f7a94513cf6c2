"""``clv promote``, ``clv models`` and ``clv compare``: the registry and the runs, read and moved."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.errors import ConfigError, InputError
from pipeline.recorder import listing, store

__all__ = ["Promotion", "compare_lines", "model_lines", "promote"]

COMPARED = ("revenue_mae", "revenue_mae_skill", "churn_auc", "purchases_total_abs_pct_error")


def _check_name(name: str) -> None:
    if not name or any(c in name for c in "'\"\\"):
        raise ConfigError(f"--name {name!r}: not a valid registered model name")


@dataclass(frozen=True)
class Promotion:
    name: str
    alias: str
    version: int
    before: int | None


def promote(name: str, alias: str, version: int, force: bool = False) -> Promotion:
    """Move ``alias`` to ``version``: only a version that passed its gate, unless ``force``."""
    _check_name(name)
    passed = store.version_passed_gate(name, version)
    if not passed and not force:
        raise InputError(f"{name} version {version} did not pass its validation gate; use --force to promote it anyway")
    before = store.alias_version(name, alias)
    store.set_alias(name, alias, version)
    return Promotion(name, alias, version, before)


def compare_lines(experiment: str, limit: int) -> list[str]:
    """Recent training runs side by side, as text lines (header first)."""
    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    rows = listing.recent_runs(experiment, limit)
    header = f"{'run':<8} {'started':<16} {'status':<9} {'ver':>3} {'gate':<5} {'data':<12} "
    lines = [header + " ".join(f"{k:>{max(len(k), 9)}}" for k in COMPARED) + "  note"]
    for row in rows:
        started = dt.datetime.fromtimestamp(row["start_time"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
        gate = {"True": "pass", "False": "FAIL"}.get(row["gate"], "-")
        values = " ".join(f"{row['metrics'].get(k, float('nan')):>{max(len(k), 9)}.4g}" for k in COMPARED)
        note = f"rerun of {row['rerun_of'][:8]} (same data and config)" if row["rerun_of"] else ""
        lines.append(
            f"{row['run_id'][:8]:<8} {started:<16} {row['status']:<9} {row['version'] or '-':>3} {gate:<5} "
            f"{row['data_fingerprint'][:12]:<12} {values}  {note}"
        )
    return lines


def model_lines(name: str) -> list[str]:
    """Registered versions with aliases, gate results and metrics, as text lines (header first)."""
    _check_name(name)
    rows = listing.model_versions(name)
    if not rows:
        return [f"clv models: no versions of {name!r}"]
    lines = [f"{'version':>7}  {'aliases':<14} {'gate':<5} {'revenue_mae':>11} {'churn_auc':>9}  {'data':<12} run"]
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"{row['version']:>7}  {','.join(row['aliases']) or '-':<14} {'pass' if row['gate_passed'] else 'FAIL':<5} "
            f"{m.get('revenue_mae', float('nan')):>11.3f} {m.get('churn_auc', float('nan')):>9.3f}  "
            f"{row['data_fingerprint'][:12]:<12} {row['run_id']}"
        )
    return lines
