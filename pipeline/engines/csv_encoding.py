"""CSV files in another encoding than UTF-8 (``data.csv.encoding``): checked and transcoded with Python's codecs.

DuckDB reads only UTF-8 CSV without its ``encodings`` extension (which it downloads, and a job may run
offline), so a file in another encoding is transcoded to a temporary UTF-8 file first, a chunk at a time
(:func:`transcoded`), and DuckDB reads that. Spark reads the same UTF-8 file: its own ``encoding`` option
knows a few charsets only (not cp1252), and splits UTF-16 lines on the byte ``\\n``. Either way, an unknown
encoding, or a file that is not text in it (an undecodable byte, a UTF-16 file without a byte order mark), is
an InputError naming the file, the encoding and the line.

The files of a folder are read as one list, and DuckDB reads every file with the line ending it found in the
first: a later file whose lines end otherwise (``\r\n`` against ``\n``, from another tool) gave no rows at all,
and no error. When the files' line endings differ, the files not ending their lines in ``\n`` are rewritten so
into the temporary folder too (:func:`same_line_endings`).
"""

from __future__ import annotations

import codecs
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import InputError

__all__ = [
    "CHUNK_BYTES",
    "codec_name",
    "is_utf8",
    "line_ending",
    "not_text",
    "same_line_endings",
    "transcoded",
    "utf8_files",
]

CHUNK_BYTES = 1 << 20
"""Bytes decoded at a time."""


def codec_name(encoding: str) -> str:
    """Python's name for ``encoding`` (``latin-1`` for ``latin1``, ``utf-16`` for ``UTF16``); InputError when
    Python does not know it."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"data.csv.encoding: unknown encoding {encoding!r}") from None
    if not info._is_text_encoding:  # base64, rot13: not a text encoding
        raise InputError(f"data.csv.encoding: {encoding!r} is not a text encoding")
    return info.name


def is_utf8(encoding: str) -> bool:
    """Whether the files are read as they are (UTF-8; a byte order mark is skipped by both engines)."""
    return codec_name(encoding) == "utf-8"


def not_text(path: Path, encoding: str, line: int, exc: UnicodeError) -> InputError:
    """The error for a file that is not text in ``encoding``."""
    reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
    return InputError(f"{path}: not {encoding} text (line {line}: {reason}); set data.csv.encoding")


def _transcode(source: Path, target: Path, encoding: str) -> None:
    """``source`` decoded from ``encoding``, written to ``target`` as UTF-8, a chunk at a time."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines = 1
    with source.open("rb") as raw, target.open("w", encoding="utf-8", newline="") as out:
        while True:
            chunk = raw.read(CHUNK_BYTES)
            state = decoder.getstate()
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeError as exc:
                raise not_text(source, encoding, lines + _lines_before(decoder, state, exc), exc) from None
            out.write(text)
            lines += text.count("\n")
            if not chunk:
                return


def _lines_before(decoder: codecs.IncrementalDecoder, state: tuple[bytes, int], exc: UnicodeError) -> int:
    """The line breaks in the chunk before the byte that could not be decoded."""
    if not isinstance(exc, UnicodeDecodeError):
        return 0
    decoder.setstate((b"", state[1]))
    try:
        return decoder.decode(exc.object[: exc.start]).count("\n")
    except UnicodeError:
        return 0


def transcoded(paths: list[Path], encoding: str, folder: Path) -> list[Path]:
    """The files, each transcoded from ``encoding`` to a UTF-8 file in ``folder`` (the caller removes it)."""
    codec_name(encoding)
    targets = []
    for i, path in enumerate(paths):
        target = folder / f"{i:05d}.csv"
        _transcode(path, target, encoding)
        targets.append(target)
    return targets


def line_ending(path: Path) -> bytes | None:
    """How the first line of ``path`` ends (``b"\n"``, ``b"\r\n"`` or ``b"\r"``); None when no line ends in its
    first :data:`CHUNK_BYTES` (a file of one line)."""
    with path.open("rb") as raw:
        head = raw.read(CHUNK_BYTES + 1)
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if not ends:
        return None
    at = min(ends)
    return b"\r\n" if head[at : at + 2] == b"\r\n" else head[at : at + 1]


def _unix_lines(source: Path, target: Path) -> None:
    """``source`` with every line ending (``\r\n``, ``\r``) written as ``\n``, a chunk at a time."""
    with source.open("rb") as raw, target.open("wb") as out:
        carried = b""
        while chunk := raw.read(CHUNK_BYTES):
            chunk = carried + chunk
            carried = b"\r" if chunk.endswith(b"\r") else b""  # its \n may open the next chunk
            chunk = chunk[: len(chunk) - len(carried)]
            out.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        out.write(b"\n" if carried else b"")


def same_line_endings(paths: list[Path], folder: Callable[[], Path]) -> list[Path]:
    """The files, those whose lines do not end in ``\n`` rewritten so into ``folder()`` when the files' line
    endings differ (as they are when they agree: one file, or a folder from one tool)."""
    if len(paths) < 2:
        return paths
    endings = [line_ending(path) for path in paths]
    if len({ending for ending in endings if ending is not None}) <= 1:
        return paths
    rewritten = []
    for i, (path, ending) in enumerate(zip(paths, endings, strict=True)):
        if ending in (None, b"\n"):
            rewritten.append(path)
            continue
        target = folder() / f"lines-{i:05d}.csv"
        _unix_lines(path, target)
        rewritten.append(target)
    return rewritten


def utf8_files(found: list[Path], encoding: str, temp_directory: Path | None, owner: object) -> list[Path]:
    """The CSV files as the engine reads them, in UTF-8 and, in a folder, with one line ending: as they are, or
    transcoded from ``encoding`` (:func:`transcoded`) and rewritten with ``\n`` line endings
    (:func:`same_line_endings`) into a temporary folder (in ``temp_directory`` when given) that is removed when
    ``owner`` (the DuckDB connection, the Spark session) goes, or when the process ends: the engines read the files
    lazily."""
    made: list[tempfile.TemporaryDirectory[str]] = []

    def folder() -> Path:
        if not made:
            if temp_directory is not None:
                temp_directory.mkdir(parents=True, exist_ok=True)
            made.append(tempfile.TemporaryDirectory(prefix="clv_csv_", dir=temp_directory))
            weakref.finalize(owner, made[0].cleanup)
        return Path(made[0].name)

    try:
        utf8 = found if is_utf8(encoding) else transcoded(found, encoding, folder())
        return same_line_endings(utf8, folder)
    except BaseException:
        if made:
            made[0].cleanup()
        raise
