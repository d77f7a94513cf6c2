"""``tracking``: the MLflow experiment, registered model name and alias."""

from __future__ import annotations

from pipeline.config.base import StrictModel

__all__ = ["TrackingConfig"]


class TrackingConfig(StrictModel):
    experiment: str = "clv"
    model_name: str = "clv"
    alias: str = "champion"
