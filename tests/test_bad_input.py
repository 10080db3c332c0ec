"""Messy real-world input through the real `revbridge send` against a real sandbox (issue 6).

Every unparseable line is one `invalid` row of the rejected file (userIndex null, the message
naming FILE:LINE, the line itself in `raw`) and every good line around it arrives exactly once;
input that cannot be read at all stops the run before anything is sent (exit 2); input that
breaks mid-stream keeps what came before and the summary says where it stopped (exit 1).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import cli, cli_json, event, read_ndjson, seqs, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command

# ---- the malformed-JSON corpus ---------------------------------------------------------------
#
# Our own cases, one NDJSON line each, in the categories public JSON parser test suites
# catalogue (nst/JSONTestSuite's n_ files were the checklist; none is copied). Most are event
# records with one defect, as an export gone wrong produces them. Each pairs the line with the
# start of the reason the rejected row must give. No case may hold a newline, start with a BOM
# or end with a CR: those are line framing, tested on their own below.

BAD_JSON = "invalid JSON ("
BAD_UTF8 = "invalid UTF-8 (byte 0x"
NAN = "NaN/Infinity is not JSON (at column "
TOO_DEEP = "nesting too deep (more than 254 levels)"
E = b'{"user_id":"u1","event_name":"purchase","v":'  # an event up to a value, for brevity


def not_object(kind: str) -> str:
    return f"not a JSON object (got {kind})"


MALFORMED: list[tuple[bytes, str]] = [
    # unclosed structures
    (b'{"user_id":"u1","event_name":"purchase"', BAD_JSON),
    (E + b"[1,2}", BAD_JSON),
    (E + b'{"a":1}', BAD_JSON),
    (b"{", BAD_JSON),
    (b"[", BAD_JSON),
    (b'{"user_id":"u1', BAD_JSON),
    (E + b'"abc}', BAD_JSON),
    (b'"', BAD_JSON),
    # structure: extra or missing punctuation, stray closers, garbage after the value
    (E + b"1}}", BAD_JSON),
    (E + b"1}]", BAD_JSON),
    (b"}", BAD_JSON),
    (b"]", BAD_JSON),
    (b",", BAD_JSON),
    (b":", BAD_JSON),
    (b"*", BAD_JSON),
    (b'{"user_id":"u1" "event_name":"x"}', BAD_JSON),
    (b'{"user_id""u1"}', BAD_JSON),
    (b'{"user_id"::"u1"}', BAD_JSON),
    (b'{"user_id":}', BAD_JSON),
    (b'{:"u1"}', BAD_JSON),
    (b'{"user_id":"u1";"event_name":"x"}', BAD_JSON),
    (E + b"[1 2]}", BAD_JSON),
    (E + b"[1:2]}", BAD_JSON),
    (b'{"user_id":"u1"}{"user_id":"u2"}', BAD_JSON),
    (b'{"user_id":"u1"} trailing', BAD_JSON),
    (b'{"user_id":"u1"}\x00', BAD_JSON),
    (b'{"user_id":"u1"}\x0c', BAD_JSON),  # form feed is not JSON whitespace
    (b"\x0b", BAD_JSON),  # nor is a vertical tab, alone on a line
    (b'{"user_id":"u1"}\xef\xbb\xbf', BAD_JSON),  # a BOM that is not at the line's start
    # trailing and doubled commas
    (b'{"user_id":"u1","event_name":"purchase",}', BAD_JSON),
    (E + b"[1,2,]}", BAD_JSON),
    (E + b"[1,,2]}", BAD_JSON),
    (E + b"[,1]}", BAD_JSON),
    (b'{"user_id":"u1",,"event_name":"x"}', BAD_JSON),
    (b'{,"user_id":"u1"}', BAD_JSON),
    # keys that are not JSON strings, single quotes, comments: JavaScript, not JSON
    (b'{user_id:"u1"}', BAD_JSON),
    (b"{'user_id':'u1'}", BAD_JSON),
    (b"{\"user_id\":'u1'}", BAD_JSON),
    (b'{1:"u1"}', BAD_JSON),
    (b'{null:"u1"}', BAD_JSON),
    (b'{"user_id":"u1"} // from the nightly export', BAD_JSON),
    (b'{"user_id":"u1" /* retry */}', BAD_JSON),
    (b'{"user_id":"u1"} # note', BAD_JSON),
    # literals that are not JSON's
    (E + b"True}", BAD_JSON),
    (E + b"tru}", BAD_JSON),
    (E + b"nul}", BAD_JSON),
    (E + b"None}", BAD_JSON),
    (E + b"undefined}", BAD_JSON),
    # bad escapes
    (E + b'"\\x41"}', BAD_JSON),
    (E + b'"\\a"}', BAD_JSON),
    (E + b'"\\\'"}', BAD_JSON),
    (E + b'"\\u00G0"}', BAD_JSON),
    (E + b'"\\u12"}', BAD_JSON),
    (E + b'"\\U0041"}', BAD_JSON),
    (E + b'"\\\t"}', BAD_JSON),  # an escaped raw tab
    (E + b'"abc\\', BAD_JSON),
    # control characters inside strings (must be escaped)
    (E + b'"a\x01b"}', BAD_JSON),
    (E + b'"a\tb"}', BAD_JSON),
    (E + b'"a\rb"}', BAD_JSON),
    (E + b'"\x00"}', BAD_JSON),
    (E + b'"\x1f"}', BAD_JSON),
    # lone or broken surrogate escapes
    (E + b'"\\ud800"}', BAD_JSON),
    (E + b'"\\udc00"}', BAD_JSON),
    (E + b'"\\ud800\\u0041"}', BAD_JSON),
    (E + b'"\\ud800x"}', BAD_JSON),
    (E + b'"\\uD834\\uDd"}', BAD_JSON),
    # bad numbers
    (E + b"01}", BAD_JSON),
    (E + b"-01}", BAD_JSON),
    (E + b"1.}", BAD_JSON),
    (E + b".5}", BAD_JSON),
    (E + b"-.5}", BAD_JSON),
    (E + b"+1}", BAD_JSON),
    (E + b"1e}", BAD_JSON),
    (E + b"1e+}", BAD_JSON),
    (E + b"2.e3}", BAD_JSON),
    (E + b"1eE2}", BAD_JSON),
    (E + b"1.2.3}", BAD_JSON),
    (E + b"0x1F}", BAD_JSON),
    (E + b"1_000}", BAD_JSON),
    (E + b"-}", BAD_JSON),
    (E + b"--1}", BAD_JSON),
    (E + b"- 1}", BAD_JSON),
    (E + b"1e400}", BAD_JSON),  # valid grammar, but no double holds it
    (E + "\uff11}".encode(), BAD_JSON),  # a fullwidth digit one
    (E + b"Inf}", BAD_JSON),
    (E + b"nan}", BAD_JSON),
    # NaN and Infinity: what Python's json module writes, and JSON does not allow
    (E + b"NaN}", NAN),
    (E + b"Infinity}", NAN),
    (E + b"-Infinity}", NAN),
    (E + b"-NaN}", NAN),
    (b"[NaN]", NAN),
    # stray bytes: not UTF-8
    (E + b'"caf\xe9"}', BAD_UTF8),  # latin-1
    (E + b'"\xff\xfe"}', BAD_UTF8),
    (E + b'"\x80"}', BAD_UTF8),  # a lone continuation byte
    (E + b'"\xc0\xaf"}', BAD_UTF8),  # overlong
    (E + b'"\xe2\x82"}', BAD_UTF8),  # cut short
    (E + b'"\xed\xa0\x80"}', BAD_UTF8),  # an encoded surrogate
    (E + b'"\xf5\x80\x80\x80"}', BAD_UTF8),  # beyond U+10FFFF
    (b'{"user_id":"u1","\xffkey":1}', BAD_UTF8),
    (b"\xfe\xff{}", BAD_UTF8),  # a UTF-16 BOM
    # not JSON at all: log lines, CSV, HTML
    (b"2026-01-15 14:30:00 INFO export started", BAD_JSON),
    (b"user_id,event_name,timestamp", BAD_JSON),
    (b"u1,purchase,2026-01-15T14:30:00Z", BAD_JSON),
    (b"<html><body>502 Bad Gateway</body></html>", BAD_JSON),
    (b"user_id=u1 event_name=purchase", BAD_JSON),
    # JSON, but not an object
    (b"[1,2]", not_object("array")),
    (b'[{"user_id":"u1","event_name":"purchase"}]', not_object("array")),
    (b"[]", not_object("array")),
    (b"42", not_object("number")),
    (b"-1.5e3", not_object("number")),
    (b'"user_id=u1"', not_object("string")),
    (b'""', not_object("string")),
    (b"true", not_object("boolean")),
    (b"false", not_object("boolean")),
    (b"null", not_object("null")),
    # nesting: readable up to 1024 levels, but a request can only carry 254
    (b"[" * 5000 + b"]" * 5000, TOO_DEEP),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, TOO_DEEP),
    (b"[" * 5000, TOO_DEEP),  # deep and never closed
    (E + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}", TOO_DEEP),
]


def messy(path: Path, bad: list[bytes], first_seq: int = 0) -> dict[int, bytes]:
    """Write good events with one bad line after each; return {line number: bad line}.

    The good events are seq first_seq .. first_seq + len(bad), over a few users.
    """
    lines: list[bytes] = []
    where: dict[int, bytes] = {}
    for i, line in enumerate([None, *bad]):
        if line is not None:
            lines.append(line)
            where[len(lines)] = line
        lines.append(orjson.dumps(event(f"u{i % 7}", first_seq + i)))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return where


def send(sb: Sandbox, tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any], list[dict]]:
    """`revbridge send ARGS --json` from tmp_path; the summary and the rejected rows."""
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json("send", *args, "--rejected", str(rejected), sb=sb, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    return result, summary, read_ndjson(rejected) if rejected.exists() else []


def check_unreadable_rows(rows: list[dict], name: str, bad: dict[int, bytes]) -> None:
    """One `invalid` row per bad line, in order, naming FILE:LINE, with the line as `raw`."""
    assert [r["source"] for r in rows] == [f"{name}:{n}" for n in bad]
    for r, (n, line) in zip(rows, bad.items(), strict=True):
        assert r["userIndex"] is None and r["kind"] == "invalid" and r["user"] is None
        assert r["message"].startswith(f"{name}:{n}: "), r["message"]
        assert r["raw"] == line.decode("utf-8", "replace"), n


def test_corpus_has_every_category() -> None:
    reasons = {reason for _, reason in MALFORMED}
    assert len(MALFORMED) >= 60
    assert {BAD_JSON, BAD_UTF8, NAN, TOO_DEEP} <= reasons
    assert {not_object(k) for k in ("array", "number", "string", "boolean", "null")} <= reasons
    assert len({line for line, _ in MALFORMED}) == len(MALFORMED)  # no case twice
    for line, _ in MALFORMED:
        assert b"\n" not in line and not line.endswith(b"\r") and not line.startswith(b"\xef")


def test_malformed_lines_are_set_aside_one_by_one_and_the_good_ones_all_go(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    bad = messy(tmp_path / "messy.ndjson", [line for line, _ in MALFORMED])
    result, summary, rows = send(sandbox, tmp_path, "messy.ndjson")
    assert result.returncode == 1, result.stderr
    assert seqs(sandbox) == list(range(len(MALFORMED) + 1))
    assert summary["records_read"] == 2 * len(MALFORMED) + 1
    assert summary["records_invalid"] == summary["rejected_rows"] == len(MALFORMED)
    assert summary["input_errors"] == []
    check_unreadable_rows(rows, "messy.ndjson", bad)
    for r, (n, (_, reason)) in zip(rows, zip(bad, MALFORMED, strict=True), strict=True):
        assert r["message"].startswith(f"messy.ndjson:{n}: {reason}"), r["message"]


def test_each_kind_of_unreadable_line_has_its_message(sandbox: Sandbox, tmp_path: Path) -> None:
    bad = messy(
        tmp_path / "kinds.ndjson",
        [b'{"a":NaN}', b'{"a":-Infinity}', b"[1]", b"null", b'{"a":"\xff"}', b"[" * 5000],
    )
    result, _, rows = send(sandbox, tmp_path, "kinds.ndjson")
    assert result.returncode == 1
    assert seqs(sandbox) == list(range(7))
    check_unreadable_rows(rows, "kinds.ndjson", bad)
    assert [r["message"] for r in rows] == [
        "kinds.ndjson:2: NaN/Infinity is not JSON (at column 6)",
        "kinds.ndjson:4: NaN/Infinity is not JSON (at column 6)",
        "kinds.ndjson:6: not a JSON object (got array)",
        "kinds.ndjson:8: not a JSON object (got null)",
        "kinds.ndjson:10: invalid UTF-8 (byte 0xff at byte 7)",
        "kinds.ndjson:12: nesting too deep (more than 254 levels)",
    ]
    assert "RecursionError" not in result.stderr


def test_line_larger_than_a_request_is_set_aside_with_a_prefix(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    huge = orjson.dumps(event("u1", 99, pad="x" * 10_500_000))
    lines = [orjson.dumps(event("u1", 0)), huge, orjson.dumps(event("u2", 1))]
    (tmp_path / "big.ndjson").write_bytes(b"\r\n".join(lines) + b"\r\n")
    result, summary, rows = send(sandbox, tmp_path, "big.ndjson")
    assert result.returncode == 1, result.stderr
    assert seqs(sandbox) == [0, 1]
    (r,) = rows
    assert r["message"] == (
        f"big.ndjson:2: line too large: {len(huge):,} bytes, a request may be at most "
        "10,000,000 bytes"
    )
    assert r["source"] == "big.ndjson:2" and r["userIndex"] is None and r["kind"] == "invalid"
    assert r["raw"] == huge[:1000].decode() + "…"
    reason = "line too large: N bytes, a request may be at most 10,000,000 bytes"
    assert summary["reasons"] == {reason: 1}


def test_blank_lines_crlf_and_bom_are_normal_input(sandbox: Sandbox, tmp_path: Path) -> None:
    lines = [orjson.dumps(event(f"u{n % 2}", n)) for n in range(4)]
    data = b"\xef\xbb\xbf" + lines[0] + b"\r\n\r\n  \t \n" + lines[1] + b"\r\n\n"
    data += b"\xef\xbb\xbf" + lines[2] + b"\n" + lines[3]  # `cat` of two files; no last newline
    (tmp_path / "crlf.ndjson").write_bytes(data)
    result, summary, rows = send(sandbox, tmp_path, "crlf.ndjson")
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2, 3]
    assert rows == [] and not list(tmp_path.glob("rejected*"))
    assert summary["records_read"] == 4 and summary["records_invalid"] == 0


# ---- input that breaks mid-stream -----------------------------------------------------------


def test_truncated_gzip_keeps_the_records_before_and_says_where_it_stopped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [event(f"u{n % 5}", n, pad=os.urandom(8).hex()) for n in range(3000)]
    whole = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records))
    (tmp_path / "cut.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    write_ndjson(tmp_path / "after.ndjson", [event("u9", 5000)])
    result, summary, rows = send(sandbox, tmp_path, "cut.ndjson.gz", "after.ndjson")
    assert result.returncode == 1, result.stderr
    (error,) = summary["input_errors"]
    match = re.fullmatch(
        r"cut\.ndjson\.gz:(\d+): gzip stream is truncated or corrupt after line \1", error
    )
    assert match, error
    stopped = int(match[1])
    assert 0 < stopped < 3000
    assert seqs(sandbox) == [*range(stopped), 5000]  # the next file is still read
    assert rows == []
    assert f"input stopped early: {error}" in result.stderr


@pytest.mark.parametrize("pad", [0, 2_000], ids=["small", "over-the-sniff-window"])
def test_truncated_json_array_sends_the_items_before_and_reports_the_stop(
    sandbox: Sandbox, tmp_path: Path, pad: int
) -> None:
    items = [orjson.dumps(event(f"u{n % 3}", n, pad="p" * pad)) for n in range(1000)]
    doc = b"[\n" + b",\n".join(items) + b',\n{"user_id": "u1", "event_na'
    (tmp_path / "doc.json").write_bytes(doc)
    result, summary, rows = send(sandbox, tmp_path, "doc.json")
    assert result.returncode == 1, result.stderr
    assert seqs(sandbox) == list(range(1000))
    (error,) = summary["input_errors"]
    assert error.startswith("doc.json:1000: invalid JSON after record 1000: "), error
    assert rows == []
    assert "input stopped early: doc.json:1000" in result.stderr


# ---- input refused before anything is sent ---------------------------------------------------


def make_bad_input(tmp_path: Path, kind: str) -> tuple[str, str]:
    """Create one unreadable input; return its argument and the error message expected."""
    if kind == "corrupt gzip":
        (tmp_path / "bad.ndjson.gz").write_bytes(b"\x1f\x8b\x07" + b"garbage" * 10)
        return "bad.ndjson.gz", "bad.ndjson.gz: bad gzip header or data: "
    if kind == "not gzip":
        write_ndjson(tmp_path / "plain.ndjson.gz", [event("u1", 100)])
        return "plain.ndjson.gz", (
            "plain.ndjson.gz: not a gzip file (named .gz but no gzip magic 1f 8b)"
        )
    if kind == "empty file":
        (tmp_path / "empty.ndjson").write_bytes(b"")
        return "empty.ndjson", "empty.ndjson: empty file: no records to read"
    if kind == "empty gzip":
        (tmp_path / "empty.ndjson.gz").write_bytes(gzip.compress(b""))
        return "empty.ndjson.gz", "empty.ndjson.gz: empty file: no records to read"
    if kind == "blank lines only":
        (tmp_path / "blank.ndjson").write_bytes(b"\n\n")
        return "blank.ndjson", "blank.ndjson: empty file: no records to read"
    if kind == "empty JSON array":
        (tmp_path / "rows.json").write_bytes(b"[]\n")
        return "rows.json", "rows.json: empty file: no records to read"
    if kind == "missing file":
        return "missing.ndjson", "missing.ndjson: no such file"
    if kind == "pattern matching nothing":
        return "exports/*.ndjson", "exports/*.ndjson: no such file (the pattern matched nothing)"
    if kind == "directory without inputs":
        (tmp_path / "logs").mkdir()
        (tmp_path / "logs" / "notes.txt").write_text("not an input\n")
        names = ".ndjson, .jsonl, .json, .csv, .tsv, .parquet, or those .gz"
        return "logs", f"logs: no input files in directory ({names})"
    if kind == "unreadable file":
        write_ndjson(tmp_path / "secret.ndjson", [event("u1", 100)])
        os.chmod(tmp_path / "secret.ndjson", 0)
        return "secret.ndjson", "secret.ndjson: permission denied"
    raise AssertionError(kind)


UNREADABLE = [
    "corrupt gzip",
    "not gzip",
    "empty file",
    "empty gzip",
    "blank lines only",
    "empty JSON array",
    "missing file",
    "pattern matching nothing",
    "directory without inputs",
    pytest.param(
        "unreadable file",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file"),
    ),
]


@pytest.mark.parametrize("kind", UNREADABLE)
def test_unreadable_input_stops_the_run_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path, kind: str
) -> None:
    write_ndjson(tmp_path / "good.ndjson", [event("u1", 1), event("u2", 2)])
    arg, message = make_bad_input(tmp_path, kind)
    result = cli("send", "good.ndjson", arg, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"revbridge: error: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.requests() == []
    assert not list(tmp_path.glob("rejected*"))


# ---- wrong types and timestamps --------------------------------------------------------------

WRONG_TYPES: list[tuple[dict[str, Any], str]] = [
    (event("u1", 101, revenue="49.99"), "events[0]: revenue must be a number"),
    (event("u1", 102, event_value="1"), "events[0]: event_value must be a number"),
    (event("u1", 103, timestamp=1768487400), "events[0]: timestamp must be ISO 8601"),
    (event("u1", 104, timestamp="2026-02-30T10:00:00Z"), "events[0]: timestamp must be ISO 8601"),
    (event("u1", 105, timestamp="15/01/2026 14:30"), "events[0]: timestamp must be ISO 8601"),
    (event("u1", 106, timestamp=None), "events[0]: timestamp must be ISO 8601"),
    (event("u1", 107, event_name=42), "events[0]: event_name is required"),
    (event("u1", 108, user_properties="gold"), "user_properties must be an object"),
    (
        {"event_name": "purchase", "seq": 109},
        "at least one identifier is required (user_id, email, phone_number, or anon_id)",
    ),
    (
        event("", 110),
        "at least one identifier is required (user_id, email, phone_number, or anon_id)",
    ),
    ({"identifiers": "u1", "event_name": "purchase", "seq": 111}, "identifiers is required"),
    ({"identifiers": {"user_id": "u1"}, "events": []}, "events is required"),
]


def test_wrong_types_are_set_aside_with_the_contract_message(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records: list[Any] = []
    for n, (record, _) in enumerate(WRONG_TYPES):
        records += [event(f"u{n % 3}", n), record]
    records.append(event("u0", len(WRONG_TYPES)))
    write_ndjson(tmp_path / "types.ndjson", records)
    result, summary, rows = send(sandbox, tmp_path, "types.ndjson")
    assert result.returncode == 1, result.stderr
    assert seqs(sandbox) == list(range(len(WRONG_TYPES) + 1))
    assert [(r["source"], r["message"]) for r in rows] == [
        (f"types.ndjson:{2 * n + 2}", message) for n, (_, message) in enumerate(WRONG_TYPES)
    ]
    for r in rows:
        assert r["userIndex"] is None and r["kind"] == "invalid" and "raw" not in r
        assert isinstance(r["user"], dict)  # what would have been sent, ready to fix
    assert rows[0]["user"] == {
        "identifiers": {"user_id": "u1"},
        "events": [
            {
                "event_name": "purchase",
                "timestamp": "2026-01-15T14:30:00Z",
                "seq": 101,
                "revenue": "49.99",
            }
        ],
    }
    assert summary["reasons"]["events[i]: timestamp must be ISO 8601"] == 4


def test_a_request_body_with_no_users_is_set_aside_not_skipped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`{"users": []}` stands for nothing the API would take (it answers 400): a row says so,
    rather than the record counting as read and vanishing."""
    body = {
        "users": [{"identifiers": {"user_id": "u1"}, "events": [{"event_name": "a", "seq": 1}]}]
    }
    write_ndjson(tmp_path / "bodies.ndjson", [{"users": []}, body])
    result, summary, rows = send(sandbox, tmp_path, "bodies.ndjson")
    assert result.returncode == 1, result.stderr
    assert summary["records_invalid"] == 1 and summary["events_accepted"] == 1
    assert [(r["source"], r["message"], r["raw"]) for r in rows] == [
        ("bodies.ndjson:1", "users must not be empty", '{"users":[]}')
    ]


def untimed(n: int, user: str = "u1") -> dict[str, Any]:
    record = event(user, n)
    del record["timestamp"]
    return record


def test_events_without_timestamp_are_sent_with_a_warning(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "t.ndjson", [event("u1", 0), untimed(1), untimed(2, "u2")])
    result, summary, rows = send(sandbox, tmp_path, "t.ndjson")
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2] and rows == []
    assert summary["events_without_timestamp"] == 2
    assert "warning: 2 events have no timestamp" in result.stderr


def test_require_timestamp_sets_untimed_events_aside(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "t.ndjson", [event("u1", 0), untimed(1), untimed(2, "u2")])
    result, summary, rows = send(sandbox, tmp_path, "t.ndjson", "--require-timestamp")
    assert result.returncode == 1, result.stderr
    assert seqs(sandbox) == [0]
    assert [(r["source"], r["message"]) for r in rows] == [
        ("t.ndjson:2", "events[0]: timestamp is missing (--require-timestamp)"),
        ("t.ndjson:3", "events[0]: timestamp is missing (--require-timestamp)"),
    ]
    assert [r["user"]["events"][0]["seq"] for r in rows] == [1, 2]
    assert summary["events_without_timestamp"] == 0
    assert "have no timestamp" not in result.stderr


def test_epoch_timestamps_are_converted_to_iso_utc(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [
        event("u1", 0, timestamp=1768487400),  # seconds
        event("u1", 1, timestamp=1768487400123),  # milliseconds
        event("u2", 2, timestamp=1768487400.5),  # fractional seconds
        event("u2", 3),  # already ISO: untouched
        event("u3", 4, timestamp=1e300),  # no calendar holds it
    ]
    write_ndjson(tmp_path / "epoch.ndjson", records)
    result, summary, rows = send(sandbox, tmp_path, "epoch.ndjson", "--epoch-timestamps")
    assert result.returncode == 1, result.stderr
    stored = {e["properties"]["seq"]: e["timestamp"] for e in sandbox.events()}
    assert stored == {
        0: "2026-01-15T14:30:00Z",
        1: "2026-01-15T14:30:00.123Z",
        2: "2026-01-15T14:30:00.500Z",
        3: "2026-01-15T14:30:00Z",
    }
    (r,) = rows
    assert r["source"] == "epoch.ndjson:5"
    assert r["message"] == "events[0]: timestamp 1e+300 is not a usable epoch time"
    assert summary["events_without_timestamp"] == 0
