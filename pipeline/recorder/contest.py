"""What the challenger contest records in the MLflow run: its numbers, its decision and its reason.

The parent run gets every ``contest_*`` metric (bootstrap intervals as ``contest_<metric>_lower_<contender>``
and ``_upper_``), the decision and reason as tags, the summary as ``contest.json``, the challenger's
permutation importance and the decile table of each contender (tables and plots) and, when the blend won,
``challenger.registered=false (...)`` until the production blend is built;
:func:`pipeline.recorder.training.log_model` sets it to ``true`` when the logged model serves the blend. Each
contender (BTYD, the blend) also gets a child run with the same metric names.
Names come from :mod:`pipeline.recorder.names`; every write goes through :mod:`pipeline.recorder.store`.
"""

from __future__ import annotations

from pipeline.contest import SERVING_NOTE, ChallengerContest
from pipeline.contest_plots import contest_figures
from pipeline.recorder import names, store

__all__ = ["ContestRecorder", "contender_metrics", "contest_tags", "record_contest"]

CONTENDERS = {"champion": "btyd", "challenger": "blend"}
"""The contest's roles and the names the run shows them under."""


def contest_tags(contest: ChallengerContest) -> dict[str, str]:
    decision = "ineligible" if not contest.eligible else "blend" if contest.blend_wins else "btyd"
    tags = {names.CONTEST_DECISION_TAG: decision, names.CONTEST_REASON_TAG: contest.reason}
    if contest.blend_wins:
        tags[names.CHALLENGER_REGISTERED_TAG] = f"false ({SERVING_NOTE})"
    return tags


def contender_metrics(contest: ChallengerContest, role: str) -> dict[str, float]:
    """The same metric names for each contender: ``mae``, ``total_ratio``, ``churn_auc``, ``gini``,
    ``top10_share``, ``top20_share``, and the interval of each but the total (``<metric>_lower``/``_upper``)."""
    result = contest.result
    if result is None:
        return {}
    metrics = {
        "contest_mae": result.mae[role],
        "contest_total_ratio": result.total_ratio[role],
        "contest_churn_auc": result.churn_auc[role],
        "contest_gini": result.gini[role],
        "contest_top10_share": result.top10_share[role],
        "contest_top20_share": result.top20_share[role],
    }
    for metric, by in result.intervals.items():
        if role in by:
            metrics[f"contest_{metric}_lower"], metrics[f"contest_{metric}_upper"] = by[role]
    return metrics


def record_contest(contest: ChallengerContest) -> None:
    """Record ``contest`` in the active run, and one child run per contender."""
    store.log_metrics(contest.metrics())
    store.set_tags(contest_tags(contest))
    store.log_dict(contest.as_dict(), names.CONTEST_ARTIFACT)
    if contest.importance is not None:
        store.log_table(contest.importance, names.CHALLENGER_IMPORTANCE_TABLE)
    if contest.predictions is not None:
        store.log_table(contest.deciles(), names.CONTEST_DECILES_TABLE)
    for name, figure in contest_figures(contest).items():
        store.log_figure(figure, names.plot_artifact(name))
    for role, name in CONTENDERS.items() if contest.result is not None else ():
        with store.child_run(names.contest_child_run(name)):
            store.set_tags({"candidate": name, "contest.role": role})
            store.log_metrics(contender_metrics(contest, role))


class ContestRecorder:
    """The observer's ``contested`` step, for :class:`pipeline.recorder.training.TrainingRecorder` to inherit."""

    def contested(self, contest: ChallengerContest) -> None:
        record_contest(contest)
