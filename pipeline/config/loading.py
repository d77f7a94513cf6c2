"""Reading a YAML config into a :class:`~pipeline.config.job.Config`, and writing and hashing it back.

Unknown keys and wrong values are ConfigErrors that name the key; relative paths in a file are relative to
the working directory, then to the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from pipeline.config.job import Config
from pipeline.errors import ConfigError

__all__ = ["config_as_dict", "config_hash", "describe", "load_config", "parse_config", "read_yaml"]


class _DatesAsText(yaml.SafeLoader):
    """YAML's safe loader, with dates and times left as text for the config's own types to parse: YAML turns an
    unquoted ``1997-02-30`` into an exception of its own (no key, no line), where pydantic names the key."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(text: str) -> object:
    """A YAML document as plain data (``yaml.safe_load``, with dates and times as text)."""
    return yaml.load(text, Loader=_DatesAsText)  # a subclass of the safe loader


def describe(error: ValidationError, source: str, section: str = "") -> str:
    """One line for the first of ``error``'s problems, naming the key (``section.`` before it): ``source: key:
    message``, with "unknown key" for a key that is not allowed."""
    first = error.errors()[0]
    where = section + ".".join(str(p) for p in first["loc"]) or "(top level)"
    where = where.replace("validate_", "validate")
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    elif "input" in first and first["type"] != "missing":
        message = f"{message} (got {first['input']!r})"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {where}: {message}{more}"


def parse_config(raw: object, source: str = "config") -> Config:
    """Validate a parsed YAML document; ConfigError names the offending key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc, source)) from None


def load_config(path: Path | None) -> Config:
    """Read and validate a YAML config; ``None`` gives the built-in defaults (configs/default.yaml)."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        raw = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if raw is None:  # almost always a mistake: the defaults would train on the bundled CDNOW under another name
        raise ConfigError(f"{path}: the config file is empty (without --config, clv trains on the bundled CDNOW)")
    config = parse_config(raw, str(path))
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in a config file are relative to the working directory, then to the file."""
    data_path = _resolve(config.data.path, base)
    cac_path = _resolve(config.business.cac_file, base)
    return config.model_copy(
        update={
            "data": config.data.model_copy(update={"path": data_path}),
            "business": config.business.model_copy(update={"cac_file": cac_path}),
        }
    )


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None or path.is_absolute() or path.exists():
        return path
    candidate = (base / path).resolve()
    return candidate if candidate.exists() else path


def config_as_dict(config: Config) -> dict[str, object]:
    """The config as plain YAML-able data, with the ``validate`` key spelled as in the file. The ``challenger``
    section is left out while it is the default (off): a config hashes as it did before the section existed."""
    quiet = {"challenger"} if config.challenger == type(config.challenger)() else None
    return config.model_dump(mode="json", by_alias=True, exclude=quiet)


def config_hash(config: Config) -> str:
    """SHA-256 of the config's canonical JSON: the same hash and data fingerprint mean a rerun."""
    return hashlib.sha256(json.dumps(config_as_dict(config), sort_keys=True).encode()).hexdigest()
