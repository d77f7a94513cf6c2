"""``clv whatif``: scenarios on a segment of customers with a registered model, recorded as a ``whatif`` run."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.scoring import score_customers
from models.whatif import Scenario, UnsupportedModelError
from pipeline.commands.customers import (
    Customers,
    RegisteredModel,
    customers_as_of,
    load_model,
    read_customer_ids,
    read_summaries,
)
from pipeline.errors import ConfigError, InputError
from pipeline.outputs import write_tables
from pipeline.recorder import names, store
from pipeline.whatif import Campaign, Segmenting, WhatIf, segment_labels, whatif, whatif_figure

__all__ = ["WhatIfRun", "parse_scenario", "run_whatif", "table_lines"]


@dataclass(frozen=True)
class WhatIfRun:
    model_uri: str
    version: str
    run_id: str
    result: WhatIf
    outputs: tuple[Path, ...] = ()
    has_spend: bool = True
    """False for a model without a spend model: its CLV counts discounted purchases."""
    warnings: tuple[str, ...] = ()


def parse_scenario(text: str) -> Scenario:
    """``LEVER:K``, e.g. ``dropout:0.05`` (dropout x 0.95), ``rate:0.1`` or ``spend:0.1``."""
    lever, _, k = text.partition(":")
    try:
        return Scenario(lever.strip(), float(k))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"--scenario {text!r}: {exc} (expected LEVER:K, e.g. dropout:0.05)") from None


def _customers(
    model: RegisteredModel, input_path: Path | None, as_of: dt.date | None, customers_path: Path | None
) -> Customers:
    if (input_path is None) == (customers_path is None):
        raise ConfigError("give either --input (raw transactions, with --as-of) or --customers (summaries)")
    if input_path is not None:
        if as_of is None:
            raise ConfigError("--input needs --as-of (the date the customers are summarised at)")
        return customers_as_of(model, input_path, as_of)
    assert customers_path is not None
    return read_summaries(model, customers_path)


def _labels(model: RegisteredModel, customers: Customers, segment_by: Segmenting) -> pd.Series:
    if segment_by == "value_segment" and not model.params.has_spend:
        raise ConfigError(
            "value segments rank customers by CLV, and this model has no spend model; use --segment-by risk_tier"
        )
    summary = customers.summary
    if segment_by == "cohort" and "first_purchase" not in summary.columns:
        raise ConfigError("cohorts need first purchase dates: use --input with --as-of (or a first_purchase column)")
    scores = score_customers(model.params, summary) if segment_by in ("value_segment", "risk_tier") else summary
    return segment_labels(segment_by, scores, summary.get("first_purchase"))


def _selected(
    customers: Customers, labels: pd.Series, segments: Sequence[str], ids_path: Path | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The customers kept by the segments and the id list, and a warning for listed ids that are not customers."""
    keep = np.ones(len(labels), dtype=bool)
    warnings: tuple[str, ...] = ()
    if segments:
        unknown = sorted(set(segments) - set(labels))
        if unknown:
            raise ConfigError(f"--segment {', '.join(unknown)}: no such segment; there are {sorted(set(labels))}")
        keep &= labels.isin(segments).to_numpy()
    if ids_path is not None:
        listed = read_customer_ids(ids_path)
        known = customers.summary["customer_id"]
        keep &= known.isin(listed).to_numpy()
        unknown = sorted(listed - set(known))
        if unknown:
            shown = ", ".join(repr(i) for i in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
            warnings = (f"--ids {ids_path}: {len(unknown):,} of {len(listed):,} ids are not customers here ({shown})",)
    if not keep.any():
        raise InputError("no customer is in the chosen segment(s) and id list")
    return keep, warnings


def _refuse_money(scenarios: Sequence[Scenario], campaign: Campaign) -> None:
    """A model without a spend model counts its "CLV" in discounted purchases (an order value of 1), not money:
    a spend scenario or a break-even spend cannot be valued."""
    if any(s.lever == "spend" for s in scenarios):
        raise ConfigError("--scenario spend: this model has no spend model (its feed has no amounts)")
    if campaign.cost_per_customer > 0:
        raise ConfigError(
            "--campaign-cost: this model has no spend model, so its CLV counts purchases, not money; "
            "a break-even spend needs one"
        )


def _record(model: RegisteredModel, result: WhatIf, context: dict[str, str], figure_name: str) -> tuple[str, str]:
    """The ``whatif`` run, linked to the model version: context as tags, totals as metrics, table and plot."""
    record = store.model_record(model.uri) if model.uri.startswith("models:/") else {}
    link = names.linked_tags(record, model.uri)
    experiment = store.connect(names.linked_experiment(model.config.tracking.experiment, "whatif"))
    with store.run(experiment, run_name=figure_name) as run_id:
        store.set_tags({names.RUN_TYPE_TAG: "whatif", **link, **context})
        store.log_metrics(_metrics(result.table))
        store.log_table(result.table, names.WHATIF_TABLE)
        store.log_table(result.customers, names.WHATIF_CUSTOMERS_TABLE)
        store.log_figure(whatif_figure(result.table), names.WHATIF_PLOT)
    return run_id, link[names.MODEL_VERSION_TAG]


def _metrics(table: pd.DataFrame) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for scenario, rows in table.groupby("scenario", sort=False):
        name = str(scenario)
        total = rows.iloc[-1]  # "all selected", or the one segment
        metrics[names.whatif_metric("delta_clv", name)] = float(total["delta_clv"])
        metrics[names.whatif_metric("customers", name)] = float(total["customers"])
        for _, row in rows.iterrows():
            for quantity in ("delta_clv_per_customer", "delta_clv_pct", "break_even_spend_per_customer"):
                metrics[names.whatif_metric(quantity, name, str(row["segment"]))] = float(row[quantity])
    return {k: v for k, v in metrics.items() if np.isfinite(v)}


def run_whatif(
    model_uri: str,
    scenarios: Sequence[Scenario],
    *,
    input_path: Path | None = None,
    as_of: dt.date | None = None,
    customers_path: Path | None = None,
    segment_by: Segmenting = "value_segment",
    segments: Sequence[str] = (),
    ids_path: Path | None = None,
    campaign: Campaign | None = None,
    output_dir: Path | None = None,
    horizon_months: int | None = None,
) -> WhatIfRun:
    """``clv whatif``: load the model and the customers, label the segments (over all customers), keep the chosen
    ones, apply every scenario, write ``whatif.csv``, ``whatif_customers.parquet`` and ``whatif.png`` to
    ``output_dir`` and record it all in a ``whatif`` run linked to the model version. ``horizon_months``
    replaces the model's CLV horizon for the what-if (the segments stay the model's)."""
    if not scenarios:
        raise ConfigError("give at least one --scenario")
    campaign = campaign if campaign is not None else Campaign()
    model = load_model(model_uri)
    if not model.params.has_spend:
        _refuse_money(scenarios, campaign)
    customers = _customers(model, input_path, as_of, customers_path)
    labels = _labels(model, customers, segment_by)
    keep, warnings = _selected(customers, labels, segments, ids_path)
    params = model.params
    if horizon_months is not None:
        if horizon_months < 1:
            raise ConfigError("--horizon-months must be at least 1")
        params = dataclasses.replace(params, spec=dataclasses.replace(params.spec, clv_horizon_months=horizon_months))
    try:
        result = whatif(params, customers.summary[keep], labels[keep], scenarios, campaign)
    except UnsupportedModelError as exc:
        raise InputError(f"{model_uri}: {exc}") from None
    outputs: tuple[Path, ...] = ()
    if output_dir is not None:
        written = write_tables(output_dir, {"whatif": result.table, "whatif_customers": result.customers})
        figure, text = output_dir / "whatif.png", output_dir / "whatif.csv"
        whatif_figure(result.table).savefig(figure, dpi=100)
        result.table.to_csv(text, index=False)
        outputs = (*written, text, figure)
    context = {
        "whatif.scenarios": ", ".join(s.name for s in scenarios),
        "whatif.segment_by": segment_by,
        "whatif.segments": ", ".join(segments) or "all",
        "whatif.response_rate": f"{campaign.response_rate:g}",
        "whatif.campaign_cost_per_customer": f"{campaign.cost_per_customer:g}",
        "whatif.customers_source": customers.source,
        "whatif.as_of": str(as_of) if as_of else "",
        "whatif.clv_horizon_months": str(params.spec.clv_horizon_months),
    }
    run_id, version = _record(model, result, context, "whatif")
    return WhatIfRun(model_uri, version, run_id, result, outputs, model.params.has_spend, warnings)


def table_lines(table: pd.DataFrame) -> list[str]:
    """The segment x scenario table as text (header first), for the console."""
    header = (
        f"{'segment':<14} {'scenario':<16} {'customers':>9} {'CLV before':>12} {'CLV after':>12} "
        f"{'ΔCLV':>10} {'ΔCLV %':>7} {'ΔCLV/cust':>10} {'break-even/cust':>15}"
    )
    lines = [header]
    for row in table.itertuples(index=False):
        lines.append(
            f"{row.segment!s:<14} {row.scenario!s:<16} {row.customers:>9,} {row.clv_before:>12,.2f} "
            f"{row.clv_after:>12,.2f} {row.delta_clv:>10,.2f} {row.delta_clv_pct:>7.2%} "
            f"{row.delta_clv_per_customer:>10,.4f} {row.break_even_spend_per_customer:>15,.4f}"
        )
    return lines
