"""Every name the job records under: metrics, tags and artifact paths, written and read back here only.

A metric's name is a contract with everything that reads runs back: ``clv compare``, ``clv models``, the
champion comparison (which rebuilds the champion from its run's ``<model>_<param>`` metrics) and users'
MLflow queries. Keeping the writing and the reading in one module keeps that contract visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.purchase import PARAM_NAMES
from models.spend import PARAM_NAMES as SPEND_PARAM_NAMES

if TYPE_CHECKING:
    from models.fitted import FitStatistics, SpendFit
    from pipeline.checks import RepeatPurchaseCheck
    from pipeline.engines.prepared import PreparedData
    from pipeline.fit import FittedModels

__all__ = [
    "CHALLENGER_IMPORTANCE_TABLE",
    "CHALLENGER_REGISTERED_TAG",
    "CONTEST_ARTIFACT",
    "CONTEST_DECILES_TABLE",
    "CONTEST_DECISION_TAG",
    "CONTEST_REASON_TAG",
    "LEDGER_ARTIFACT",
    "MODEL_NAME_TAG",
    "MODEL_RUN_TAG",
    "MODEL_SELECTION_TABLE",
    "MODEL_URI_TAG",
    "MODEL_VERSION_TAG",
    "MONITOR_TABLE",
    "QUARANTINE_DIR",
    "QUARANTINE_TABLE",
    "REPORT_ARTIFACT",
    "RUN_TYPE_TAG",
    "WHATIF_CUSTOMERS_TABLE",
    "WHATIF_PLOT",
    "WHATIF_TABLE",
    "champion_metric_names",
    "check_metrics",
    "contest_child_run",
    "fit_metrics",
    "ledger_dict",
    "ledger_metrics",
    "linked_experiment",
    "linked_tags",
    "monitor_metric",
    "plot_artifact",
    "spend_fit_metrics",
    "spend_tags",
    "stage_metrics",
    "table_artifact",
    "timestamp_format_tags",
    "whatif_metric",
]

LEDGER_ARTIFACT = "ledger.json"
REPORT_ARTIFACT = "report.html"
QUARANTINE_DIR = "tables"
QUARANTINE_TABLE = f"{QUARANTINE_DIR}/quarantine.parquet"
"""The quarantined rows in a run, whatever the business type (the non-contractual run logs its file into
:data:`QUARANTINE_DIR` under this name)."""
MODEL_SELECTION_TABLE = "tables/model_selection.csv"
CONTEST_ARTIFACT = "contest.json"
CONTEST_DECISION_TAG = "contest.decision"
CONTEST_REASON_TAG = "contest.reason"
CHALLENGER_REGISTERED_TAG = "challenger.registered"
CHALLENGER_IMPORTANCE_TABLE = "tables/challenger_importance.csv"
"""The challenger's permutation importance on its training window (feature, gini_drop, gini_drop_std)."""
CONTEST_DECILES_TABLE = "tables/contest_deciles.csv"
"""Mean predicted and actual holdout revenue by decile of each contender's prediction."""


def contest_child_run(contender: str) -> str:
    """The child run of one contender of the challenger contest (``btyd``, ``blend``)."""
    return f"contest: {contender}"


DATA_PATH_TAG = "data.path"
"""The training run's input file or folder as an absolute path (a config's relative ``data.path`` is relative to
where it was run): ``clv monitor`` reads it again without ``--input``."""
RUN_TYPE_TAG = "run_type"
"""``whatif`` or ``monitor``: runs about a registered model, each in its own experiment (:func:`linked_experiment`)."""
MODEL_NAME_TAG = "model.name"
MODEL_VERSION_TAG = "model.version"
MODEL_RUN_TAG = "model.run_id"
MODEL_URI_TAG = "model.uri"
WHATIF_TABLE = "tables/whatif.csv"
WHATIF_CUSTOMERS_TABLE = "tables/whatif_customers.parquet"
WHATIF_PLOT = "plots/whatif.png"
MONITOR_TABLE = "tables/monitor_periods.csv"


def linked_experiment(experiment: str, run_type: str) -> str:
    """``clv-whatif``, ``clv-monitor``: not the training experiment, so ``clv compare`` lists training runs only."""
    return f"{experiment}-{run_type}"


def linked_tags(record: dict[str, str], model_uri: str) -> dict[str, str]:
    """The tags that link a what-if or monitoring run to the model version it is about."""
    return {
        MODEL_URI_TAG: model_uri,
        MODEL_NAME_TAG: record.get("name", ""),
        MODEL_VERSION_TAG: record.get("version", ""),
        MODEL_RUN_TAG: record.get("run_id", ""),
    }


def _slug(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def whatif_metric(quantity: str, scenario: str, segment: str | None = None) -> str:
    """``whatif_<scenario>_<quantity>`` (all customers) or ``whatif_<scenario>_<segment>_<quantity>``, e.g.
    ``whatif_dropout_5_delta_clv`` and ``whatif_dropout_5_top_5_break_even_spend_per_customer``."""
    parts = ["whatif", _slug(scenario), *([_slug(segment)] if segment else []), quantity]
    return "_".join(p for p in parts if p)


def monitor_metric(check: str) -> str:
    """``monitor_<check>``, logged once per monitoring period (the period is the metric's step)."""
    return f"monitor_{check}"


def table_artifact(name: str, suffix: str = "parquet") -> str:
    """``tables/<name>.<suffix>``: where a table of the run is logged."""
    return f"tables/{name}.{suffix}"


def plot_artifact(name: str) -> str:
    """``plots/<name>.png``: where a figure of the run is logged."""
    return f"plots/{name}.png"


def fit_metrics(prefix: str, fitted: FittedModels) -> dict[str, float]:
    """Parameters (and standard errors, or posterior sd for MCMC) under the model's name, e.g. ``bgnbd_r`` and
    ``gamma_gamma_p`` (``pooled_mean_mean`` for the pooled-mean spend model)."""
    metrics: dict[str, float] = {}
    model = fitted.model
    for name, value in fitted.purchase.params.as_dict().items():
        metrics[f"{prefix}{model}_{name}"] = value
        metrics[f"{prefix}{model}_{name}_se"] = fitted.purchase.standard_errors[name]
    for kind in (model, "purchase"):
        metrics |= _stats_metrics(f"{prefix}{kind}", fitted.purchase.stats)
    if fitted.spend is not None:
        metrics |= spend_fit_metrics(prefix, fitted.spend)
    metrics[f"{prefix}purchase_unique_histories"] = fitted.purchase.n_unique_rows
    metrics[f"{prefix}spend_frequency_correlation"] = fitted.spend_frequency_correlation
    metrics[f"{prefix}fit_attempts"] = len(fitted.attempts)
    metrics[f"{prefix}spend_fit_attempts"] = len(fitted.spend_attempts)
    if fitted.spread_test is not None:
        metrics[f"{prefix}spend_spread_statistic"] = fitted.spread_test.statistic
        metrics[f"{prefix}spend_spread_p_value"] = fitted.spread_test.p_value
    if fitted.diagnostics is not None:
        metrics |= {f"{prefix}mcmc_{k}": v for k, v in fitted.diagnostics.as_dict().items()}
    return metrics


def _stats_metrics(name: str, stats: FitStatistics) -> dict[str, float]:
    return {
        f"{name}_log_likelihood": stats.log_likelihood,
        f"{name}_aic": stats.aic,
        f"{name}_bic": stats.bic,
        f"{name}_customers": stats.n_observations,
    }


def spend_fit_metrics(prefix: str, spend: SpendFit) -> dict[str, float]:
    """A spend model's parameters, standard errors and fit statistics under its name, e.g. ``gamma_gamma_p``,
    ``gamma_gamma_p_se``, ``gamma_gamma_log_likelihood`` (``pooled_mean_mean`` for the pooled mean)."""
    metrics: dict[str, float] = {}
    for name, value in spend.params.as_dict().items():
        metrics[f"{prefix}{spend.model}_{name}"] = value
        metrics[f"{prefix}{spend.model}_{name}_se"] = spend.standard_errors[name]
    return metrics | _stats_metrics(f"{prefix}{spend.model}", spend.stats)


def spend_tags(prefix: str, spend_model: str, fallback: str) -> dict[str, object]:
    """The spend model used and, when the pooled mean replaced Gamma-Gamma, why."""
    tags: dict[str, object] = {f"{prefix}spend_model": spend_model}
    if fallback:
        tags[f"{prefix}spend.fallback"] = fallback
    return tags


def fit_tags(prefix: str, fitted: FittedModels) -> dict[str, object]:
    """The models, method, chosen remedy and spend fallback of a fit."""
    tags: dict[str, object] = {
        f"{prefix}purchase_model": fitted.model,
        f"{prefix}fit.method": fitted.method,
        **spend_tags(prefix, fitted.spend_model, fitted.spend_fallback),
    }
    if fitted.chosen is not None:
        tags[f"{prefix}fit.remedy"] = fitted.chosen.remedy
    return tags


def champion_metric_names(model: str, spend_model: str) -> dict[str, str] | None:
    """Parameter -> metric name of a calibration fit logged by :func:`fit_metrics` (None: an unknown model)."""
    if model not in PARAM_NAMES or spend_model not in SPEND_PARAM_NAMES:
        return None
    purchase = {k: f"{model}_{k}" for k in PARAM_NAMES[model]}
    return purchase | {k: f"{spend_model}_{k}" for k in SPEND_PARAM_NAMES[spend_model]}


def timestamp_format_tags(configured: str | None, used: str | None) -> dict[str, str]:
    """The ``data.timestamp_format`` tag: the strptime format text timestamps were read with and whether it was
    ``given`` (``configured``, data.timestamp_format) or ``detected``; nothing for the engine's own reading."""
    if used is None:
        return {}
    return {"data.timestamp_format": f"{used} ({'given' if configured else 'detected'})"}


def stage_metrics(timings: dict[str, float]) -> dict[str, float]:
    """``stage_seconds_<stage>``: wall seconds the workflow spent in each stage."""
    return {f"stage_seconds_{stage}": seconds for stage, seconds in timings.items()}


def check_metrics(check: RepeatPurchaseCheck) -> dict[str, float]:
    return {
        "repeat_purchases_chi_square": check.chi_square,
        "repeat_purchases_dof": float(check.degrees_of_freedom),
        "repeat_purchases_p_value": check.p_value,
    }


def ledger_metrics(prepared: PreparedData) -> dict[str, float]:
    ledger = prepared.ledger
    metrics = {
        "rows_in": float(ledger.rows_in),
        "rows_used": float(ledger.rows_used),
        "rows_quarantined": float(ledger.rows_quarantined),
        "customers_calibration": float(len(prepared.calibration)),
        "customers_full": float(len(prepared.full)),
        "customers_new_in_holdout": float(prepared.customers_new_in_holdout),
        "returns_netted": float(ledger.returns_netted),
        "returns_unmatched": float(ledger.returns_unmatched),
        "duration_holdout": prepared.duration_holdout,
    }
    metrics.update({f"quarantined_{reason}": float(n) for reason, n in ledger.quarantined.items()})
    return metrics


def ledger_dict(prepared: PreparedData) -> dict[str, object]:
    """The ledger as ``ledger.json`` (in the run and in ``clv prepare``'s output) and the summary show it."""
    ledger = prepared.ledger
    return {
        "rows_in": ledger.rows_in,
        "rows_used": ledger.rows_used,
        "rows_quarantined": ledger.rows_quarantined,
        "quarantined": ledger.quarantined,
        "reconciled": ledger.reconciled,
        "returns_netted": ledger.returns_netted,
        "returns_unmatched": ledger.returns_unmatched,
        "customers_calibration": len(prepared.calibration),
        "customers_full": len(prepared.full),
        "customers_new_in_holdout": prepared.customers_new_in_holdout,
        "first_date": str(prepared.first_date),
        "last_date": str(prepared.last_date),
        "calibration_end": str(prepared.calibration_end),
        "observation_end": str(prepared.observation_end),
    }
