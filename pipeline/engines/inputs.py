"""The inputs both engines read alike: the bundled CDNOW files, input files and their fingerprint, the
CSV header check, and the mapping of source columns to the standard names.

The edges (:mod:`pipeline.engines.duckdb_source`, :mod:`pipeline.engines.spark_session`) rename the
mapped columns to ``customer_id``, ``timestamp``, ``amount`` (or ``quantity`` and ``unit_price``;
neither for an event feed) and, when mapped, ``order_id``; every other source column comes along under
a private alias (see :mod:`pipeline.engines.source_columns`). A CSV written with other number separators
(``data.csv.decimal``, ``data.csv.thousands``) has its mapped number columns rewritten as they are renamed, by
:func:`number_format` (text of another shape is marked with :data:`NOT_IN_FORMAT` and so quarantined).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from pipeline.config import DataConfig
from pipeline.engines.csv_encoding import is_utf8, not_text
from pipeline.engines.source_columns import private_alias
from pipeline.errors import InputError

__all__ = [
    "CDNOW_FILES",
    "FOLDER_FILES",
    "NOT_IN_FORMAT",
    "NUMBER_ROLES",
    "FileSource",
    "NumberFormat",
    "bundled_cdnow_frame",
    "check_csv_header",
    "files",
    "files_fingerprint",
    "first_line",
    "folder_source",
    "mapped_columns",
    "number_format",
    "ragged_line",
    "renamed_columns",
]

CDNOW_FILES = {"cdnow_master": "CDNOW_master.txt", "cdnow_sample": "CDNOW_sample.txt"}


def files_fingerprint(paths: list[Path]) -> str:
    """SHA-256 over the SHA-256 of each file's bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def bundled_cdnow_frame(source: str) -> tuple[pd.DataFrame, str, str, str]:
    """The bundled CDNOW file as text columns customer_id, timestamp, amount; its description,
    fingerprint and timestamp format."""
    resource = importlib.resources.files("lifetimes") / "datasets" / CDNOW_FILES[source]
    with importlib.resources.as_file(resource) as path:
        if source == "cdnow_master":
            names = ["customer_id", "timestamp", "cds", "amount"]
            frame = pd.read_csv(path, sep=r"\s+", skiprows=1, header=None, names=names, dtype=str)
        else:
            # The 1/10 sample has no header: master id, sample id, date, cds, dollars. Ids are sample ids.
            names = ["master_id", "customer_id", "timestamp", "cds", "amount"]
            frame = pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype=str)
        fingerprint = files_fingerprint([path])
    return frame[["customer_id", "timestamp", "amount"]], f"lifetimes:{CDNOW_FILES[source]}", fingerprint, "%Y%m%d"


FileSource = Literal["csv", "parquet"]

FOLDER_FILES: dict[FileSource, str] = {"csv": ".csv", "parquet": ".parquet"}
"""What a folder given as ``data.path`` is read for, by ``data.source``: its files ending so (in any case), hidden
ones left out (an editor's lock file, a Mac's ``._`` copy)."""


def files(path: Path, source: str = "parquet") -> list[Path]:
    """The input files: ``path``, or the files of a folder that end in the source's suffix (:data:`FOLDER_FILES`),
    sorted by name; InputError when there are none, or when a file is empty (naming it)."""
    if path.is_dir():
        suffix = FOLDER_FILES["csv"] if source == "csv" else FOLDER_FILES["parquet"]
        found = _listed(path, suffix)
        if not found:
            raise InputError(f"{path}: folder holds no {suffix} files")
    elif not path.exists():
        raise InputError(f"{path}: input file not found")
    else:
        found = [path]
    for file in found:
        if file.stat().st_size == 0:
            raise InputError(f"{file}: the file is empty")
    return found


def folder_source(folder: Path) -> FileSource:
    """``csv`` or ``parquet``: the kind of input files ``folder`` holds (:data:`FOLDER_FILES`); InputError when it
    holds both kinds, or neither."""
    held = [source for source in FOLDER_FILES if any(_listed(folder, FOLDER_FILES[source]))]
    if len(held) != 1:
        kinds = " and ".join(FOLDER_FILES[source] for source in held) if held else ".csv or .parquet"
        raise InputError(f"{folder}: folder holds {'both' if held else 'no'} {kinds} files")
    return held[0]


def _listed(folder: Path, suffix: str) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() == suffix and not p.name.startswith(".") and p.is_file()
    )


def _csv_header(path: Path, data: DataConfig, encoding: str) -> list[str]:
    """The names of the header line of ``path``, stripped."""
    try:
        with path.open(encoding=encoding, errors="replace", newline="") as handle:
            header = next(csv.reader(handle, delimiter=data.csv.delimiter), [])
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeError as exc:  # a UTF-16 file without a byte order mark: errors="replace" does not cover it
        raise not_text(path, encoding, 1, exc) from None
    names = [name.strip() for name in header]
    if names and is_utf8(encoding):  # a byte order mark, which both engines skip, in some files of a folder only
        names[0] = names[0].removeprefix("\ufeff")
    return names


def check_csv_header(paths: list[Path], data: DataConfig, encoding: str | None = None) -> None:
    """DuckDB silently renames repeated header names (amount, amount_1): refuse them instead. The files of a
    folder must have the same header as the first (in the same order): both engines read the columns by
    position, and a file with its columns in another order would have its values put under other names.

    ``encoding``: the files' (``data.csv.encoding`` without it); a file that is not text in it is an
    InputError."""
    encoding = encoding or data.csv.encoding
    first = _csv_header(paths[0], data, encoding)
    repeated = sorted({name for name in first if first.count(name) > 1})
    if repeated:
        raise InputError(f"{paths[0]}: duplicate column name(s) in the header: {', '.join(repeated)}")
    differ = [(path, names) for path in paths[1:] if (names := _csv_header(path, data, encoding)) != first]
    if differ:
        path, names = differ[0]
        others = [p.name for p, _ in differ[1:]]
        more = (
            f" (and {len(others)} more: {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})" if others else ""
        )
        raise InputError(
            f"{path}: its header ({', '.join(names)}) is not that of {paths[0].name} ({', '.join(first)}){more}; "
            "every file of the folder needs the same columns in the same order, or a data.query that reads them "
            "by name (see the docs on real feeds: folders)"
        )


def ragged_line(paths: list[Path], data: DataConfig) -> str | None:
    """The first line whose number of fields is not the header's (the first line's), as "file: cannot read csv:
    line N has K fields where the header has H"; None when every line has as many. DuckDB only says that it could not
    detect the file's dialect; this is read on that error only (a pass over the files in Python)."""
    for path in paths:
        try:
            with path.open(encoding=data.csv.encoding, errors="replace", newline="") as handle:
                reader = csv.reader(handle, delimiter=data.csv.delimiter)
                width = None
                for row in reader:
                    if not row:  # a blank line
                        continue
                    if width is None:
                        width = len(row)
                    elif len(row) != width:
                        first = "the header" if data.csv.header else "the first line"
                        fields = f"line {reader.line_num} has {len(row)} fields where {first} has {width}"
                        return f"{path}: cannot read csv: {fields}"
        except (OSError, UnicodeError, csv.Error):
            return None
    return None


def mapped_columns(columns: list[str], data: DataConfig, description: str) -> dict[str, str]:
    """Standard name -> input column for every mapped role; InputError for a missing or repeated column."""
    mapping = data.columns
    roles = {
        "customer_id": mapping.customer_id,
        "timestamp": mapping.timestamp,
        "amount": None if mapping.uses_quantity else mapping.amount,
        "quantity": mapping.quantity,
        "unit_price": mapping.unit_price,
        "order_id": mapping.order_id,
    }
    if len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError(f"{description}: duplicate column name(s): {', '.join(duplicated)}")
    selected = {}
    for role, column in roles.items():
        if column is None:
            continue
        if column not in columns:
            raise InputError(
                f"{description}: missing required column '{column}' (data.columns.{role}); found: {', '.join(columns)}"
                + _missing_hint(role, column)
            )
        selected[role] = column
    return selected


def _missing_hint(role: str, column: str) -> str:
    """What to do about a missing amount: a feed without one is an event feed, and YAML writes no value as
    ``null`` (``none`` is a column named none)."""
    if role != "amount":
        return ""
    if column.lower() in ("none", "null", "nan", ""):
        return f"; '{column}' is a column name here: for an event feed (no amounts) write data.columns.amount: null"
    return "; an event feed without amounts sets data.columns.amount: null (not for business.type contractual)"


def renamed_columns(columns: list[str], data: DataConfig, description: str) -> dict[str, str]:
    """Relation column -> source column, in the source's order: the mapped roles under their standard
    names, every other source column under its private alias; InputError for a missing column."""
    selected = mapped_columns(columns, data, description)
    renamed: dict[str, str] = {}
    for column in columns:
        roles = [role for role, mapped in selected.items() if mapped == column]
        renamed.update(dict.fromkeys(roles, column) if roles else {private_alias(column): column})
    return renamed


NUMBER_ROLES = ("amount", "quantity", "unit_price")


@dataclass(frozen=True)
class NumberFormat:
    """How a CSV writes its numbers when not as ``1234.56`` (``data.csv.decimal``, ``data.csv.thousands``).

    ``pattern``: the shape a number must have, a full-match regular expression that DuckDB (RE2) and Spark
    (Java) read alike: an optional sign, digits grouped by three with the thousands separator (or not grouped
    at all), and an optional decimal part; spaces around. ``replacements``: the literal replacements, in order,
    that turn such text into ``1234.56``. Text of another shape is not a number: it gets :data:`NOT_IN_FORMAT`
    appended, so that it is quarantined as ``invalid_amount`` and shown as it was (``12.50`` with
    ``thousands: "."`` is refused rather than read as 1250)."""

    pattern: str
    replacements: tuple[tuple[str, str], ...]


NOT_IN_FORMAT = " (not in the data.csv number format)"


def number_format(data: DataConfig) -> NumberFormat | None:
    """The CSV's number format; None for other sources (typed columns) and for plain ``1234.56``."""
    if data.source != "csv" or not data.csv.rewrites_numbers:
        return None
    thousands, decimal = data.csv.thousands, data.csv.decimal
    integer = r"[0-9]+" if thousands is None else rf"[0-9]{{1,3}}([{thousands}][0-9]{{3}})+|[0-9]+"
    pattern = rf" *[+-]?({integer})([{decimal}][0-9]+)? *"
    removed = () if thousands is None else ((thousands, ""),)
    pointed = () if decimal == "." else ((decimal, "."),)
    return NumberFormat(pattern, removed + pointed)


def first_line(exc: Exception) -> str:
    """An error's first line (its type when it has no text)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
