from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.engines import csv_encoding
from pipeline.engines.csv_encoding import codec_name, is_utf8, line_ending, same_line_endings, transcoded
from pipeline.errors import InputError

TEXT = "".join(f"c{i},2020-01-{1 + i % 28:02d},{i}.5,Müller €\r\n" for i in range(500))


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_transcoded_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, chunk: int
) -> None:
    """Chunks that split a character (7 bytes: half a UTF-16 code unit) change nothing."""
    monkeypatch.setattr(csv_encoding, "CHUNK_BYTES", chunk)
    (tmp_path / "a.csv").write_bytes(TEXT.encode(encoding))
    (tmp_path / "b.csv").write_bytes(TEXT[:100].encode(encoding))
    (tmp_path / "out").mkdir()
    out = transcoded([tmp_path / "a.csv", tmp_path / "b.csv"], encoding, tmp_path / "out")
    assert [p.read_bytes() for p in out] == [TEXT.encode(), TEXT[:100].encode()]


@pytest.mark.parametrize("chunk", [5, 64, 1 << 20])
def test_an_undecodable_byte_names_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(csv_encoding, "CHUNK_BYTES", chunk)
    lines = TEXT.encode("cp1252").split(b"\n")
    lines[321] = lines[321].replace(b"M", b"\x81")  # undefined in cp1252
    (tmp_path / "a.csv").write_bytes(b"\n".join(lines))
    (tmp_path / "out").mkdir()
    message = r"a\.csv: not cp1252 text \(line 322: character maps to <undefined>\); set data\.csv\.encoding"
    with pytest.raises(InputError, match=message):
        transcoded([tmp_path / "a.csv"], "cp1252", tmp_path / "out")


def test_a_truncated_utf16_file_names_its_last_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(TEXT.encode("utf-16")[:-1])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=r"a\.csv: not utf-16 text \(line 500: truncated data\)"):
        transcoded([tmp_path / "a.csv"], "utf-16", tmp_path / "out")


def test_encoding_names() -> None:
    assert [codec_name(e) for e in ("latin1", "UTF16", "windows-1252")] == ["iso8859-1", "utf-16", "cp1252"]
    assert [is_utf8(e) for e in ("UTF8", "utf-8", "utf-8-sig", "latin-1")] == [True, True, False, False]
    with pytest.raises(InputError, match=r"data\.csv\.encoding: unknown encoding 'klingon'"):
        codec_name("klingon")
    with pytest.raises(InputError, match=r"data\.csv\.encoding: 'rot13' is not a text encoding"):
        codec_name("rot13")


def test_line_endings_are_read_from_the_first_line(tmp_path: Path) -> None:
    for name, data, ending in [
        ("unix", b"a,b\n1,2\n", b"\n"),
        ("windows", b"a,b\r\n1,2\r\n", b"\r\n"),
        ("mac", b"a,b\r1,2\r", b"\r"),
        ("one_line", b"a,b", None),
    ]:
        (tmp_path / name).write_bytes(data)
        assert line_ending(tmp_path / name) == ending, name


def test_a_folders_other_line_endings_are_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only when the files disagree; each file not in \\n is rewritten, a \\r\\n split across two chunks included."""
    monkeypatch.setattr(csv_encoding, "CHUNK_BYTES", 4)
    unix, windows, mac = (tmp_path / f"{n}.csv" for n in ("1", "2", "3"))
    unix.write_bytes(b"a,b\n1,2\n")
    windows.write_bytes(b"a,b\r\n10,20\r\n3,4\r\n")
    mac.write_bytes(b"a,b\r5,6\r")
    out = tmp_path / "out"
    out.mkdir()
    assert same_line_endings([windows], lambda: out) == [windows]
    assert same_line_endings([unix, unix], lambda: out) == [unix, unix]
    found = same_line_endings([unix, windows, mac], lambda: out)
    assert found[0] == unix
    assert [p.read_bytes() for p in found[1:]] == [b"a,b\n10,20\n3,4\n", b"a,b\n5,6\n"]
