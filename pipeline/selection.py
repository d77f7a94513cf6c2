"""Model selection: the candidate that is best on one holdout metric wins (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Selection:
    winner: str
    metric: str
    direction: str
    table: pd.DataFrame
    """One row per candidate: ``candidate``, ``value`` of the metric, ``status`` and ``rank``."""

    @property
    def reason(self) -> str:
        ranked = self.table.dropna(subset=["rank"]).sort_values("rank")
        best = ranked.iloc[0]
        others = ", ".join(f"{row.candidate} {row.value:.6g}" for row in ranked.iloc[1:].itertuples())
        failed = self.table[self.table["status"] != "ok"]
        text = f"{self.winner} has the {'highest' if self.direction == 'higher' else 'lowest'} {self.metric}"
        text += f" ({best['value']:.6g}" + (f"; others: {others})" if others else ")")
        if not failed.empty:
            text += "; not ranked: " + ", ".join(f"{r.candidate} ({r.status})" for r in failed.itertuples())
        return text


class NoCandidateError(ValueError):
    """Every candidate failed to fit or has no value for the selection metric."""


def select(values: dict[str, float], statuses: dict[str, str], metric: str, direction: str) -> Selection:
    """Rank the candidates that fitted (``statuses[name] == "ok"``) by ``metric``; ties go to the first listed."""
    rows = []
    for name, status in statuses.items():
        value = values.get(name, math.nan)
        if status == "ok" and math.isnan(value):
            status = f"no {metric}"
        rows.append({"candidate": name, "value": value, "status": status})
    table = pd.DataFrame(rows)
    ok = table["status"] == "ok"
    if not ok.any():
        details = "; ".join(f"{r.candidate}: {r.status}" for r in table.itertuples())
        raise NoCandidateError(f"no candidate model could be selected ({details})")
    key = table["value"].where(ok)
    table["rank"] = (key if direction == "lower" else -key).rank(method="first")
    winner = str(table.loc[table["rank"] == 1, "candidate"].iloc[0])
    return Selection(winner=winner, metric=metric, direction=direction, table=table)
