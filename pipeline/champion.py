"""The current champion, judged on this run's holdout: the gate's "beats the champion" check.

The recorder reads the champion's calibration parameters back from its run (:class:`ChampionParams`); this
module evaluates them on the new holdout (a pure function) and says what the report and the run should note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.bundle import CLVModelParams
from pipeline.config import Config
from pipeline.engines.prepared import PreparedData
from pipeline.validate import validate

__all__ = ["ChampionComparison", "ChampionParams", "compare_champion"]


@dataclass(frozen=True)
class ChampionParams:
    """What the champion's run logged about its calibration fit."""

    version: int
    model: str
    spend_model: str
    params: dict[str, float]
    units: tuple[str, str]
    fingerprint: str


@dataclass(frozen=True)
class ChampionComparison:
    """The champion's value of the baseline metric on this run's holdout (None when there is no comparable
    champion), what the report should say about it, and the tags and metrics the run should carry."""

    value: float | None
    note: str = ""
    tags: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def compare_champion(
    config: Config,
    prepared: PreparedData,
    period_length: float,
    fingerprint: str,
    found: ChampionParams | None,
) -> ChampionComparison:
    """The current champion's calibration parameters, evaluated on this run's holdout."""
    if found is None:
        return ChampionComparison(None)
    metric = config.validate_.baseline_metric_for(config.has_spend)
    name = f"{config.tracking.model_name} version {found.version}"
    if found.units != (config.prepare.period, config.prepare.time_unit):
        tags: dict[str, object] = {
            "champion.version": found.version,
            "champion.comparable": "false (other period or time unit)",
        }
        return ChampionComparison(None, f"The champion ({name}) uses other periods or time units: not compared.", tags)
    if (found.spend_model != "none") != config.has_spend:
        tags = {"champion.version": found.version, "champion.comparable": "false (spend model)"}
        return ChampionComparison(None, f"The champion ({name}) has a different spend model: not compared.", tags)
    champion = CLVModelParams.from_params(found.params, config.scoring_spec(), found.model, found.spend_model)
    value = validate(champion, prepared.calibration, period_length).metrics[metric]
    tags = {"champion.version": found.version}
    note = ""
    if found.fingerprint and found.fingerprint != fingerprint:
        tags["champion.same_data"] = "false"
        note = (
            f"The champion ({name}) was trained on other data (fingerprint {found.fingerprint[:12]}, this run "
            f"{fingerprint[:12]}): its calibration parameters were evaluated on this run's holdout."
        )
    return ChampionComparison(value, note, tags, {f"champion_{metric}": value})
