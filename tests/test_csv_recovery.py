"""CSV/TSV reading past a bad row, pure: what `Reader` yields after a stray character, an
unclosed quote or a line over the limit, with the lines and byte offsets `--state` resumes
from (issue 24; docs/bad-input.md)."""

from __future__ import annotations

from pathlib import Path

from revbridge_cli.input.reader import Reader

HEADER = b"user_id,event_name\n"


def read(tmp_path: Path, data: bytes, **kw: object) -> tuple[Reader, list[tuple[int, int, str]]]:
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    reader = Reader(str(path), **kw)  # type: ignore[arg-type]
    out = [(r.line, r.end_offset, r.error or r.value["event_name"]) for r in reader]
    return reader, out


def test_after_an_unclosed_quote_the_lines_it_took_are_rows_with_their_own_offsets(
    tmp_path: Path,
) -> None:
    data = HEADER + b'u1,"a\nu2,b\nu3,c\n'
    reader, rows = read(tmp_path, data)
    assert rows == [
        (2, 25, "unclosed quote: the quoted cell runs to the end of the file; the 2 lines "
         "after it read as rows"),
        (3, 30, "b"),
        (4, 35, "c"),
    ]  # fmt: skip
    assert (reader.lines, reader.end_offset) == (4, len(data))


def test_an_unclosed_quote_past_the_limit_and_a_long_line(tmp_path: Path) -> None:
    data = HEADER + b'u1,"a\n' + b"u2,b\n" * 10 + b"x" * 100 + b"\nu3,c\n"
    _, rows = read(tmp_path, data, max_line_bytes=40)
    assert rows[0][2].startswith("unclosed quote: the quoted cell runs to the 40-byte record")
    assert [r[2] for r in rows[1:]] == ["b"] * 10 + [
        "row too large: 100 bytes, a record may be at most 40",
        "c",
    ]
    assert [r[0] for r in rows] == list(range(2, 15))
    assert rows[-1][1] == len(data)


def test_a_last_row_with_an_open_quote_is_held_back_for_the_next_run(tmp_path: Path) -> None:
    """With --state a growing file's last row may be half written: it waits, whole."""
    data = HEADER + b'u1,a\nu2,"b\nstill'
    reader, rows = read(tmp_path, data, hold_partial_last_line=True)
    assert rows == [(2, 24, "a")]
    assert (reader.end_offset, reader.held_back_bytes) == (24, len(data) - 24)


def test_invalid_utf8_in_a_line_read_again_is_still_named(tmp_path: Path) -> None:
    data = HEADER + b'u1,"a\nu2,b\xff\nu3,c\n'
    _, rows = read(tmp_path, data)
    assert [r[2] for r in rows][1:] == ["invalid UTF-8 (byte 0xff at byte 5)", "c"]


def test_invalid_utf8_inside_a_quoted_newline_sets_its_row_aside(tmp_path: Path) -> None:
    data = HEADER + b'u1,"a\nb\xff"\nu2,c\n'
    _, rows = read(tmp_path, data)
    assert rows == [(3, 29, "invalid UTF-8 (byte 0xff at byte 2)"), (4, 34, "c")]


def test_a_revenue_no_json_writer_takes_as_an_integer(tmp_path: Path) -> None:
    """Past 64 bits a float (as orjson reads NDJSON); past a float's range, text (refused by
    the contract with the value named); the packer never meets an integer it cannot write."""
    data = b"user_id,event_name,revenue\n" + b"".join(
        b"u,e,%s\n" % v for v in (b"-9223372036854775809", b"18446744073709551615", b"9" * 400)
    )
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    values = [r.value["revenue"] for r in Reader(str(path))]
    assert values == [-9.223372036854776e18, 18446744073709551615, "9" * 400]


def test_a_long_last_line_without_its_newline_is_held_back_not_set_aside(tmp_path: Path) -> None:
    data = HEADER + b"u1,a\n" + b"x" * 100
    reader, rows = read(tmp_path, data, hold_partial_last_line=True, max_line_bytes=40)
    assert rows == [(2, 24, "a")]
    assert (reader.end_offset, reader.held_back_bytes) == (24, 100)
