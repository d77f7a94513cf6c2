"""``tracking``: the MLflow experiment, registered model name and alias, and how much of the big tables a run stores."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import StrictModel

__all__ = ["TrackingConfig"]


class TrackingConfig(StrictModel):
    """``tables``: how the per-customer tables (``holdout``, ``scores``, ``at_risk_valuable``, ``clv_cac``: one
    row per customer, hundreds of MB at millions of customers) are stored in the MLflow run.

    - ``full``: the whole tables, in the run (``tables/<name>.parquet``).
    - ``sample``: their first ``table_sample_rows`` rows (``tables/<name>.sample.parquet``); the whole tables are
      the ``--output`` files, named in the run's tag ``tables.<name>``.
    - ``none``: only that tag.
    - ``auto`` (default): ``full`` without ``--output`` (the run is then the only copy), ``sample`` with it (the
      files are already in ``--output``: not stored twice).

    The small tables (by frequency, tracking, churn calibration, fit attempts, ...) are always stored whole.
    How a run stores its tables does not change what it computes: the two keys are left out of the config's
    dump (``exclude``), so the config hash (what makes a rerun) is the same whatever they are.
    """

    experiment: str = "clv"
    model_name: str = "clv"
    alias: str = "champion"
    tables: Literal["auto", "full", "sample", "none"] = Field(
        default="auto",
        exclude=True,
        description="per-customer tables in the run: full, sample (plus a pointer to the --output file), none "
        "(the pointer), auto (full without --output, sample with it: not stored twice)",
    )
    table_sample_rows: int = Field(
        default=10_000, ge=1, exclude=True, description="rows of a sampled table (its first rows)"
    )

    def table_mode(self, has_output: bool) -> Literal["full", "sample", "none"]:
        """What ``tables`` means for this run (``auto`` resolved by whether ``--output`` is given)."""
        if self.tables == "auto":
            return "sample" if has_output else "full"
        return self.tables
