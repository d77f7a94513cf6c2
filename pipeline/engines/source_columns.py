"""The source's own columns inside the prepare stage: private aliases, original names, duplicate keys.

The edges (:mod:`pipeline.engines.duckdb_source`, :mod:`pipeline.engines.spark_session`) rename the
mapped columns to the role names (``customer_id``, ``timestamp``, ...) and carry every other source
column under a private alias, :data:`SOURCE_PREFIX` + its name, which cannot clash with a role name. They also hand over
``column_names`` (relation column -> source column name). With these, prepare can

- find repeated rows by the WHOLE source row, mapped columns or not (two products on one invoice at the
  same quantity and price differ in their product column, and are not duplicates), or by the source
  columns the user names in ``prepare.duplicate_key``;
- write the quarantined rows with every source column under its original name.

A relation without ``column_names`` (a caller that built the role columns itself) is its own source:
each column is named as it is, prefix removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.config import PrepareConfig
from pipeline.errors import InputError

__all__ = ["REASON", "SOURCE_PREFIX", "Duplicates", "Layout", "layout", "private_alias", "quarantine_names"]

SOURCE_PREFIX = "source:"
"""Prefix of the unmapped source columns in the relation prepare reads."""
REASON = "reason"
"""The quarantine's reason column (a source column of that name is written as ``source_reason``)."""


def private_alias(name: str) -> str:
    """The relation column that carries the unmapped source column ``name``."""
    return SOURCE_PREFIX + name


@dataclass(frozen=True)
class Duplicates:
    """Which rows are duplicates: the second and later rows with equal ``key`` columns.

    ``order`` (the other columns, empty for whole rows) decides which of the rows is kept: the first in
    that order (NULLs first), so that both engines keep the same one.
    """

    key: tuple[str, ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """What prepare needs to know about the relation's columns.

    ``names``: relation column -> the source column's name, one relation column per source column, in
    the source's order (the quarantine's columns). ``duplicates``: None when repeated rows are kept.
    ``has_amounts``: an amount, or quantity and unit price, is mapped (an event feed has neither).
    """

    names: dict[str, str]
    duplicates: Duplicates | None
    has_amounts: bool
    has_order: bool


def _names(columns: Sequence[str], column_names: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(column_names or {})
    unknown = sorted(set(given) - set(columns))
    if unknown:
        raise ValueError(f"column_names names columns the relation does not have: {', '.join(unknown)}")
    everything = given | {c: c.removeprefix(SOURCE_PREFIX) for c in columns if c not in given}
    names: dict[str, str] = {}
    for column, name in everything.items():
        if name not in names.values():
            names[column] = name
    return names


def layout(
    columns: Sequence[str], column_names: Mapping[str, str] | None, config: PrepareConfig, source: str
) -> Layout:
    """The layout of a relation with ``columns`` under ``config``; InputError for a ``prepare.duplicate_key``
    column the source does not have."""
    names = _names(columns, column_names)
    has_order = "order_id" in columns
    duplicates = None
    if config.duplicate_key is not None:
        by_name = {name: column for column, name in names.items()}
        missing = [name for name in config.duplicate_key if name not in by_name]
        if missing:
            raise InputError(
                f"{source}: prepare.duplicate_key names column(s) the input does not have: {', '.join(missing)}; "
                f"found: {', '.join(names.values())}"
            )
        key = tuple(by_name[name] for name in config.duplicate_key)
        duplicates = Duplicates(key, tuple(c for c in names if c not in key))
    elif config.duplicates == "quarantine" or (config.duplicates == "auto" and has_order):
        duplicates = Duplicates(tuple(columns), ())
    return Layout(names, duplicates, "amount" in columns or "quantity" in columns, has_order)


def quarantine_names(names: Mapping[str, str]) -> dict[str, str]:
    """Relation column -> the quarantine file's column: the source's name, ``source_<name>`` for a source
    column named like the reason column in any case (``Reason``: SQL names ignore case, so it would be the
    reason column's name)."""
    return {column: f"source_{name}" if name.lower() == REASON else name for column, name in names.items()}
