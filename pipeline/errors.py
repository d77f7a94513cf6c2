"""Errors that end the job with a documented exit code and one line on stderr."""

from __future__ import annotations


class CLVError(Exception):
    """Base class: ``exit_code`` is what the CLI returns; ``str(exc)`` is the one line it prints."""

    exit_code = 2


class InputError(CLVError):
    """Bad input data: a file, a column or a value that the job cannot use (exit 2)."""

    exit_code = 2


class ConfigError(CLVError):
    """A config file or value that is wrong (exit 2)."""

    exit_code = 2


class TrackingUnavailableError(CLVError):
    """The MLflow tracking store or registry cannot be reached or written (exit 3)."""

    exit_code = 3


class EngineUnavailableError(CLVError):
    """The compute engine cannot be reached: a Spark master that does not answer (exit 3)."""

    exit_code = 3
