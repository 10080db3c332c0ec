"""The reader over real temporary files: formats, bad lines, offsets, gzip, stdin, paths."""

from __future__ import annotations

import gzip
import io
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from revbridge_cli.input.reader import (
    InputError,
    RawRecord,
    Reader,
    check_input,
    compare_identity,
    expand_inputs,
    file_identity,
    is_empty,
    same_file,
)

CORPUS = Path("/work/shared/corpora/jsontestsuite")


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def ndjson(*values: Any) -> bytes:
    return b"".join(orjson.dumps(v) + b"\n" for v in values)


def collect(path: str, **kw: Any) -> tuple[list[RawRecord], InputError | None]:
    records: list[RawRecord] = []
    try:
        for rec in Reader(path, **kw):
            records.append(rec)
    except InputError as e:
        return records, e
    return records, None


def values(records: list[RawRecord]) -> list[Any]:
    return [r.value for r in records if r.error is None]


# NDJSON


def test_ndjson_blank_lines_crlf_and_bom_are_normal_input(tmp_path: Path) -> None:
    data = b'\xef\xbb\xbf{"a":1}\r\n\r\n   \n{"a":2}\r\n\n\t\n{"a":3}'
    records = list(Reader(write(tmp_path, "x.ndjson", data)))
    assert [(r.line, r.value) for r in records] == [(1, {"a": 1}), (4, {"a": 2}), (7, {"a": 3})]
    assert all(r.error is None and r.raw is None for r in records)
    assert records[-1].end_offset == len(data)


BAD_LINES = [
    (b'{"a": 1,,}', "invalid JSON (unexpected character"),
    (b'{"a": NaN}', "NaN/Infinity is not JSON"),
    (b'{"a": Infinity}', "NaN/Infinity is not JSON"),
    (b'{"a": -Infinity}', "NaN/Infinity is not JSON"),
    (b"[1, 2]", "not a JSON object (got array)"),
    (b"42", "not a JSON object (got number)"),
    (b'"text"', "not a JSON object (got string)"),
    (b"null", "not a JSON object (got null)"),
    (b"true", "not a JSON object (got boolean)"),
    (b'{"a": "\xff\xfe"}', "invalid UTF-8"),
    (b'{"a": "\xed\xa0\x80"}', "invalid UTF-8"),  # an encoded surrogate is not UTF-8 either
    (b'{"a": "\\ud800"}', "invalid JSON (no low surrogate"),  # orjson rejects lone escapes
    (b"[" * 2000 + b"]" * 2000, "nesting too deep"),
    (b'{"a": {"b": ' * 1100 + b"1" + b"}}" * 1100, "nesting too deep"),
    (b'{"a":' * 300 + b"1" + b"}" * 300, "nesting too deep (more than 254"),  # orjson writes 254
]


def test_nesting_up_to_what_orjson_can_write_is_fine(tmp_path: Path) -> None:
    line = b'{"a":' * 254 + b"1" + b"}" * 254 + b"\n"
    padded = b'{"s":"' + b"[" * 600 + b'","a":[' + b"[" * 200 + b"]" * 200 + b"]}\n"
    records = list(Reader(write(tmp_path, "x.ndjson", line + padded)))
    assert [r.error for r in records] == [None, None]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_each_bad_line_becomes_an_error_record_between_good_ones(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    data = b'{"n":1}\n' + line + b'\n{"n":2}\n'
    records = list(Reader(write(tmp_path, "x.ndjson", data)))
    assert [r.line for r in records] == [1, 2, 3]
    good1, bad, good2 = records
    assert (good1.value, good2.value) == ({"n": 1}, {"n": 2})
    assert bad.value is None
    assert bad.error is not None and bad.error.startswith(reason), bad.error
    assert bad.raw == line.decode("utf-8", "replace")
    assert bad.end_offset == len(b'{"n":1}\n' + line + b"\n")


def test_oversized_line_is_reported_with_a_prefix_and_not_parsed(tmp_path: Path) -> None:
    long = b'{"a":"' + b"x" * 300_000 + b'"}'
    data = b'{"n":1}\n' + long + b'\r\n{"n":2}\n' + b'{"s":"' + b"y" * 500 + b'"}\n'
    records = list(Reader(write(tmp_path, "x.ndjson", data), max_line_bytes=400))
    assert [r.line for r in records] == [1, 2, 3, 4]
    big, small = records[1], records[3]
    assert big.error == "line too large: 300,008 bytes, a request may be at most 400 bytes"
    assert big.raw is not None and big.raw.endswith("…") and len(big.raw) == 1001
    assert small.error is not None and small.error.startswith("line too large: 508 bytes")
    assert records[2].value == {"n": 2}
    assert [r.end_offset for r in records] == [
        8,
        8 + len(long) + 2,
        8 + len(long) + 10,
        len(data),
    ]


def test_oversized_last_line_without_newline(tmp_path: Path) -> None:
    data = b'{"n":1}\n' + b"z" * 200_000
    path = write(tmp_path, "x.ndjson", data)
    records = list(Reader(path, max_line_bytes=1000))
    assert records[-1].error is not None and "200,000 bytes" in records[-1].error
    reader = Reader(path, hold_partial_last_line=True, max_line_bytes=1000)
    assert [r.value for r in reader] == [{"n": 1}]
    assert (reader.held_back_bytes, reader.end_offset) == (200_000, 8)


def test_default_line_limit_is_the_request_limit(tmp_path: Path) -> None:
    line = b'{"a":"' + b"x" * 10_000_000 + b'"}\n'
    records = list(Reader(write(tmp_path, "x.ndjson", line + b'{"b":1}\n')))
    assert records[0].error == (
        "line too large: 10,000,008 bytes, a request may be at most 10,000,000 bytes"
    )
    assert records[1].value == {"b": 1}


def test_resume_from_end_offset_yields_exactly_the_following_records(tmp_path: Path) -> None:
    data = ndjson(*({"i": i} for i in range(20))).replace(b'{"i":5}\n', b'{"i":5}\n\n')
    for name, blob in [("x.ndjson", data), ("x.ndjson.gz", gzip.compress(data))]:
        path = write(tmp_path, name, blob)
        everything = list(Reader(path))
        for k in (0, 5, 12, 19):
            rec = everything[k]
            rest = list(Reader(path, start_offset=rec.end_offset, start_line=rec.line))
            assert rest == [
                RawRecord(path, r.line, r.end_offset, r.value) for r in everything[k + 1 :]
            ]


def test_resume_past_the_end_of_a_truncated_file_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ndjson", ndjson({"a": 1}))
    with pytest.raises(InputError, match="cannot resume"):
        list(Reader(path, start_offset=1000))


def test_partial_last_line_is_held_back_only_when_asked(tmp_path: Path) -> None:
    data = b'{"a":1}\n{"a":2}\n{"a":'
    path = write(tmp_path, "grow.ndjson", data)
    reader = Reader(path, hold_partial_last_line=True)
    assert values(list(reader)) == [{"a": 1}, {"a": 2}]
    assert (reader.held_back_bytes, reader.end_offset, reader.lines) == (5, 16, 2)
    records = list(Reader(path))
    assert records[-1].error is not None and records[-1].raw == '{"a":'
    with open(path, "ab") as f:
        f.write(b"3}\n")
    rest = list(Reader(path, start_offset=16, start_line=2, hold_partial_last_line=True))
    assert [(r.line, r.value) for r in rest] == [(3, {"a": 3})]
    complete = write(tmp_path, "done.ndjson", b'{"a":1}\n{"a":2}')
    assert values(list(Reader(complete))) == [{"a": 1}, {"a": 2}]


# gzip


def test_gzip_is_read_transparently_by_magic_not_name(tmp_path: Path) -> None:
    data = ndjson(*({"i": i} for i in range(1000)))
    for name in ("x.ndjson.gz", "x.ndjson", "noext"):
        reader = Reader(write(tmp_path, name, gzip.compress(data)))
        assert len(values(list(reader))) == 1000
        assert reader.compressed


def test_gz_name_without_gzip_magic_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ndjson.gz", ndjson({"a": 1}))
    with pytest.raises(InputError, match="not a gzip file"):
        check_input(path)
    with pytest.raises(InputError, match="not a gzip file"):
        list(Reader(path))


def test_truncated_gzip_keeps_complete_records_then_raises(tmp_path: Path) -> None:
    data = ndjson(*({"i": i, "pad": "p" * (i % 50)} for i in range(20_000)))
    blob = gzip.compress(data)
    path = write(tmp_path, "x.ndjson.gz", blob[: len(blob) // 2])
    records, error = collect(path)
    assert error is not None and "gzip stream is truncated or corrupt after line" in str(error)
    assert error.line == len(records) > 1000
    assert values(records) == [{"i": i, "pad": "p" * (i % 50)} for i in range(len(records))]


def test_corrupt_gzip_header_is_caught_by_check_input(tmp_path: Path) -> None:
    path = write(tmp_path, "x.gz", b"\x1f\x8b\x09garbage-not-deflate")
    with pytest.raises(InputError, match="gzip"):
        check_input(path)
    records, error = collect(path)
    assert records == [] and error is not None


# JSON documents


def test_json_array_each_item_is_a_record(tmp_path: Path) -> None:
    doc = orjson.dumps([{"a": 1}, {"b": 2.5}, [3], {"c": None}])
    records = list(Reader(write(tmp_path, "x.json", doc)))
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert values(records) == [{"a": 1}, {"b": 2.5}, {"c": None}]
    assert records[2].error == "not a JSON object (got array)" and records[2].raw == "[3]"


def test_pretty_printed_users_body_yields_each_user(tmp_path: Path) -> None:
    body = {"users": [{"id": "u1"}, {"id": "u2"}]}
    path = write(tmp_path, "body.json", orjson.dumps(body, option=orjson.OPT_INDENT_2))
    records = list(Reader(path))
    assert [(r.line, r.value) for r in records] == [(1, {"id": "u1"}), (2, {"id": "u2"})]


def test_pretty_printed_single_object_is_one_record(tmp_path: Path) -> None:
    event = {"user_id": "u1", "event": "signup", "props": {"a": [1, 2]}}
    path = write(tmp_path, "one.json", orjson.dumps(event, option=orjson.OPT_INDENT_2))
    assert [(r.line, r.value) for r in Reader(path)] == [(1, event)]


def test_large_documents_stream_with_ints_and_floats(tmp_path: Path) -> None:
    items = [{"i": i, "f": i + 0.5, "pad": "x" * 100} for i in range(15_000)]
    for doc in (items, {"meta": 1, "users": [*items, 7]}):
        path = write(tmp_path, "big.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        assert os.path.getsize(path) > 2 << 20  # past the sniff window: the streaming path
        reader = Reader(path)
        records = list(reader)
        assert values(records) == items
        assert type(records[0].value["i"]) is int and type(records[0].value["f"]) is float
        assert reader.bytes_read == reader.total_bytes
    assert records[-1].error == "not a JSON object (got number)"


@pytest.mark.parametrize("size", [200, 30_000])
def test_truncated_json_array_yields_good_items_then_raises(tmp_path: Path, size: int) -> None:
    doc = orjson.dumps([{"i": i} for i in range(size)], option=orjson.OPT_INDENT_2)
    cut = doc.index(b'"i": 150') + 3
    records, error = collect(write(tmp_path, "x.json", doc[:cut]))
    assert values(records) == [{"i": i} for i in range(150)]
    assert error is not None and error.line == 150
    assert "invalid JSON after record 150" in error.message


def test_deeply_nested_document_stops_with_input_error(tmp_path: Path) -> None:
    doc = b'[{"a": 1},\n' + b"[" * 200_000 + b"]" * 200_000 + b"]"
    records, error = collect(write(tmp_path, "deep.json", doc))
    assert values(records) == [{"a": 1}]
    assert error is not None and "nesting too deep" in error.message and error.line == 1


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    item = {"s": "[[[{{{" * 300 + '\\"[[[', "t": "]]]" * 100}
    path = write(tmp_path, "x.json", orjson.dumps([item] * 2000, option=orjson.OPT_INDENT_2))
    assert values(list(Reader(path))) == [item] * 2000


def test_json_document_item_nested_deeper_than_orjson_writes(tmp_path: Path) -> None:
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    records = list(Reader(write(tmp_path, "x.json", b'[{"a":1},\n' + deep + b',{"b":2}]')))
    assert [r.error for r in records] == [None, "nesting too deep (more than 254 levels)", None]


def test_json_document_resumes_by_record_number(tmp_path: Path) -> None:
    doc = orjson.dumps([{"i": i} for i in range(10)], option=orjson.OPT_INDENT_2)
    records = list(Reader(write(tmp_path, "x.json", doc), start_line=7))
    assert [(r.line, r.value) for r in records] == [(8, {"i": 7}), (9, {"i": 8}), (10, {"i": 9})]


def test_sniffing_picks_ndjson_for_a_broken_first_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", b'{"a": 1,,}\n{"a": 2}\n')
    records = list(Reader(path))
    assert records[0].error is not None and records[1].value == {"a": 2}


def test_explicit_format_overrides_sniffing(tmp_path: Path) -> None:
    doc = orjson.dumps({"users": [{"id": 1}]})  # minified: sniffed as a one-line NDJSON file
    path = write(tmp_path, "x.json", doc)
    assert values(list(Reader(path))) == [{"users": [{"id": 1}]}]
    assert values(list(Reader(path, fmt="json"))) == [{"id": 1}]
    with pytest.raises(ValueError):
        Reader(path, fmt="xml")


# stdin


class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


@pytest.mark.parametrize("compress", [False, True])
def test_stdin_is_read_like_a_file(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    data = b'\n{"a":1}\n{"a":2}\n'
    monkeypatch.setattr(sys, "stdin", FakeStdin(gzip.compress(data) if compress else data))
    reader = Reader("-")
    records = list(reader)
    assert [(r.source, r.line, r.value) for r in records] == [
        ("<stdin>", 2, {"a": 1}),
        ("<stdin>", 3, {"a": 2}),
    ]
    assert reader.total_bytes is None and reader.bytes_read > 0


def test_stdin_json_document(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = orjson.dumps([{"a": 1}, {"a": 2}], option=orjson.OPT_INDENT_2)
    monkeypatch.setattr(sys, "stdin", FakeStdin(doc))
    assert values(list(Reader("-"))) == [{"a": 1}, {"a": 2}]


# progress


def test_byte_progress_reaches_total_for_plain_and_gzip(tmp_path: Path) -> None:
    data = ndjson(*({"i": i} for i in range(50_000)))
    for name, blob in [("x.ndjson", data), ("x.ndjson.gz", gzip.compress(data))]:
        reader = Reader(write(tmp_path, name, blob))
        seen = []
        for i, _ in enumerate(reader):
            if i % 10_000 == 0:
                seen.append(reader.bytes_read)
        assert seen == sorted(seen) and seen[-1] < len(blob)
        assert reader.bytes_read == reader.total_bytes == len(blob)


# paths


def test_expand_inputs_directory_glob_and_stdin(tmp_path: Path) -> None:
    for name in ("b.ndjson", "a.json", "c.jsonl.gz", "notes.txt", "d.xlsx"):
        write(tmp_path, name, b"{}\n")
    (tmp_path / "sub.json").mkdir()
    write(tmp_path, "sub.json/z.ndjson", b"{}\n")
    d = str(tmp_path)
    # Non-recursive; a directory that a pattern matches is expanded, as when the shell globs.
    assert expand_inputs([d]) == [f"{d}/a.json", f"{d}/b.ndjson", f"{d}/c.jsonl.gz"]
    assert expand_inputs(["-", f"{d}/*.json*"]) == [
        "-",
        f"{d}/a.json",
        f"{d}/c.jsonl.gz",
        f"{d}/sub.json/z.ndjson",
    ]


def test_expand_inputs_problems_are_one_line_input_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (str(tmp_path / "missing.ndjson"), "no such file"),
        (str(tmp_path / "*.nothing"), "no such file"),
        (str(empty), "no input files in directory"),
        ("/dev/null", "not a regular file"),
    ]
    for arg, message in cases:
        with pytest.raises(InputError, match=message) as info:
            expand_inputs([arg])
        assert "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file_is_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ndjson", b"{}\n")
    os.chmod(path, 0)
    with pytest.raises(InputError, match="permission denied"):
        expand_inputs([path])
    with pytest.raises(InputError, match="permission denied"):
        check_input(path)


def test_empty_files_pass_check_input_and_are_reported_by_is_empty(tmp_path: Path) -> None:
    empty = write(tmp_path, "e.ndjson", b"")
    empty_gz = write(tmp_path, "e.ndjson.gz", gzip.compress(b""))
    full = write(tmp_path, "f.ndjson", b"{}\n")
    for path in (empty, empty_gz, full):
        check_input(path)
    assert (is_empty(empty), is_empty(empty_gz), is_empty(full), is_empty("-")) == (
        True,
        True,
        False,
        False,
    )
    assert list(Reader(empty)) == [] and list(Reader(empty_gz)) == []


@pytest.mark.parametrize(
    ("content", "empty"),
    [
        (b"\n\n", True),
        (b" \t\r\n", True),
        (b"\xef\xbb\xbf\n", True),
        (b"[]", True),
        (b" [ \n ] \n", True),
        (b"\xef\xbb\xbf[]", True),
        (b"[\x0c]", False),  # a form feed is not JSON whitespace: the reader reports it
        (b"{}\n", False),
        (b"[{}]", False),
        (b"\n" * 70_000, False),  # past the probe: taken to hold something, read as usual
    ],
)
def test_inputs_holding_no_record_count_as_empty(
    tmp_path: Path, content: bytes, empty: bool
) -> None:
    """A failed export leaves a newline or `[]` as often as nothing: all refused alike."""
    plain = write(tmp_path, "x.ndjson", content)
    packed = write(tmp_path, "x.ndjson.gz", gzip.compress(content))
    assert (is_empty(plain), is_empty(packed)) == (empty, empty)


def test_missing_file_is_an_input_error_when_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(Reader(str(tmp_path / "nope.ndjson")))


# file identity


def test_same_file_tells_grown_from_replaced_and_truncated(tmp_path: Path) -> None:
    path = tmp_path / "log.ndjson"
    path.write_bytes(b'{"a":1}\n' * 1000)
    old = file_identity(str(path))
    assert old["head_len"] == 4096 and len(old["head_sha"]) == 64
    assert same_file(old, file_identity(str(path))) == "same"
    with open(path, "ab") as f:
        f.write(b'{"a":2}\n')
    assert same_file(old, file_identity(str(path))) == "grown"
    path.write_bytes(b'{"a":1}\n' * 10)  # same inode, cut
    assert same_file(old, file_identity(str(path))) == "truncated"
    path.write_bytes(b'{"b":9}\n' * 2000)  # same inode, rewritten
    assert same_file(old, file_identity(str(path))) == "replaced"
    other = tmp_path / "other"
    other.write_bytes(b'{"a":1}\n' * 2000)
    os.replace(other, path)  # a new inode under the old name
    assert same_file(old, file_identity(str(path))) == "replaced"


def test_same_file_for_a_small_growing_file(tmp_path: Path) -> None:
    path = tmp_path / "small.ndjson"
    path.write_bytes(b'{"a":1}\n')
    old = file_identity(str(path))
    with open(path, "ab") as f:
        f.write(b'{"a":2}\n')
    assert same_file(old, file_identity(str(path), head_len=old["head_len"])) == "grown"
    path.write_bytes(b'{"b":1}\n{"a":2}\n')
    assert same_file(old, file_identity(str(path), head_len=old["head_len"])) == "replaced"
    verdict, new = compare_identity(old, str(path))
    assert verdict == "replaced" and new == file_identity(str(path))


def test_total_bytes_is_known_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ndjson", b'{"a":1}\n')
    assert Reader(path).total_bytes == 8
    assert Reader(str(tmp_path / "missing")).total_bytes is None


# the JSONTestSuite corpus (not shipped with the project: skipped where it is missing)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="JSONTestSuite corpus not available")
def test_jsontestsuite_invalid_documents_as_ndjson_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = sorted(CORPUS.glob("n_*.json"))
    assert cases
    lines = [p.read_bytes().replace(b"\r", b" ").replace(b"\n", b" ") for p in cases]
    data = b"".join(
        b'{"before":%d}\n%s\n{"after":%d}\n' % (i, line, i) for i, line in enumerate(lines)
    )
    records = list(Reader(write(tmp_path, "corpus.ndjson", data), fmt="ndjson"))
    by_line = {r.line: r for r in records}
    not_errors = []
    for i, path in enumerate(cases):
        assert by_line[3 * i + 1].value == {"before": i}
        assert by_line[3 * i + 3].value == {"after": i}
        rec = by_line.get(3 * i + 2)
        if rec is None or rec.error is None:
            not_errors.append(f"{path.name}: {'skipped as blank' if rec is None else rec.value}")
    with capsys.disabled():
        print(f"\n{len(cases)} n_ cases; not an error record as NDJSON lines: {not_errors}")
    # Only an empty document may pass (a blank line); everything else must be reported.
    assert all("skipped as blank" in s for s in not_errors), not_errors


@pytest.mark.skipif(not CORPUS.is_dir(), reason="JSONTestSuite corpus not available")
def test_jsontestsuite_files_never_raise_anything_but_input_error() -> None:
    for path in sorted(CORPUS.glob("*.json")):
        for fmt in (None, "json", "ndjson"):
            try:
                for rec in Reader(str(path), fmt=fmt):
                    assert (rec.value is None) != (rec.error is None)
            except InputError as e:
                assert e.source == str(path) and "\n" not in e.message


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_depth_guard_tracks_strings_and_escapes_across_chunk_boundaries(step: int) -> None:
    from revbridge_cli.input.document import MAX_DEPTH, DepthGuard, TooDeep

    tricky = {"a\\": '\\"[{', "b": "\\\\", '"[': ["]]]", {"}": '\\\\\\"[[['}], "": ""}
    one = orjson.dumps(tricky)  # depth 3
    doc = b"[" + one + b"," + b"[" * (MAX_DEPTH - 4) + one + b"]" * (MAX_DEPTH - 4) + b"]"

    def read_all(data: bytes) -> DepthGuard:
        source = io.BytesIO(data)
        guard = DepthGuard(source)
        while guard.read(step):
            pass
        return guard

    assert read_all(doc)._depth == 0
    with pytest.raises(TooDeep):
        read_all(b"[" + doc + b"]")
