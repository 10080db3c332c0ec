"""`revbridge validate` and `send --dry-run` on messy files: the whole read, shape and check
pipeline without sending; counts per reason, first examples with FILE:LINE, the rejected file."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli, cli_json, event, read_ndjson, write_ndjson
from test_bad_input import MALFORMED, WRONG_TYPES, messy

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command

CONTRACT_REASONS = {
    "events[i]: revenue must be a number": 1,
    "events[i]: event_value must be a number": 1,
    "events[i]: timestamp must be ISO 8601": 4,
    "events[i]: event_name is required": 1,
    "user_properties must be an object": 1,
    "at least one identifier is required": 2,
    "identifiers is required": 1,
    "events is required": 1,
}


def messy_inputs(tmp_path: Path) -> int:
    """messy.ndjson (the malformed corpus among good lines) and types.ndjson (wrong types
    among good records); return how many good records they hold."""
    messy(tmp_path / "messy.ndjson", [line for line, _ in MALFORMED])
    records: list[Any] = []
    for n, (record, _) in enumerate(WRONG_TYPES):
        records += [event("u1", 1000 + n), record]
    write_ndjson(tmp_path / "types.ndjson", records)
    return len(MALFORMED) + 1 + len(WRONG_TYPES)


def expected_reasons() -> dict[str, int]:
    parse = Counter(reason.split(" (", 1)[0] for _, reason in MALFORMED)
    return {**parse, **CONTRACT_REASONS}


def validate(tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result, summary = cli_json("validate", *args, env=base_env(), cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    return result, summary


def test_validate_counts_every_reason_and_writes_the_rejected_file(tmp_path: Path) -> None:
    good = messy_inputs(tmp_path)
    result, summary = validate(tmp_path, "messy.ndjson", "types.ndjson")
    assert result.returncode == 1, result.stderr
    assert summary["exit_code"] == 1 and summary["sent"] is False
    assert summary["reasons"] == expected_reasons()
    invalid = len(MALFORMED) + len(WRONG_TYPES)
    assert summary["records_read"] == good + invalid
    assert summary["records_invalid"] == summary["rejected_rows"] == invalid
    assert summary["requests"] == 0 and summary["input_errors"] == []
    # the default rejected file, in the working directory, one row per bad record
    (rejected,) = tmp_path.glob("rejected-*.ndjson")
    assert summary["rejected_file"] == rejected.name
    rows = read_ndjson(rejected)
    assert len(rows) == invalid and {r["kind"] for r in rows} == {"invalid"}
    assert all(r["userIndex"] is None for r in rows)
    by_source = {r["source"]: r for r in rows}
    assert by_source["messy.ndjson:2"]["raw"] == MALFORMED[0][0].decode()
    assert by_source["types.ndjson:2"]["message"] == "events[0]: revenue must be a number"
    # the text summary (stderr): the counts by reason, then the first examples with FILE:LINE
    text = result.stderr
    assert "set aside, by reason:" in text
    for reason, n in expected_reasons().items():
        if n > 1:  # ten reasons at most are listed: the frequent ones
            assert f"{n:>9,}  {reason}\n" in text, reason
    assert len(summary["examples"]) == 5
    for i, example in enumerate(summary["examples"]):
        assert example.startswith(f"messy.ndjson:{2 * i + 2}: {MALFORMED[i][1]}"), example
    assert "first examples:\n  messy.ndjson:2: invalid JSON (" in text


def test_validate_examples_name_file_and_line_for_contract_errors(tmp_path: Path) -> None:
    messy_inputs(tmp_path)
    result, summary = validate(tmp_path, "types.ndjson", "--rejected", "out.ndjson")
    assert result.returncode == 1
    assert summary["examples"] == [
        f"types.ndjson:{2 * n + 2}: {message}" for n, (_, message) in enumerate(WRONG_TYPES[:5])
    ]
    assert summary["reasons"] == CONTRACT_REASONS
    assert "types.ndjson:2: events[0]: revenue must be a number" in result.stderr
    assert len(read_ndjson(tmp_path / "out.ndjson")) == len(WRONG_TYPES)


def test_validate_clean_file_exits_0_and_writes_nothing(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "ok.ndjson", [event(f"u{n % 3}", n) for n in range(50)])
    result, summary = validate(tmp_path, "ok.ndjson")
    assert result.returncode == 0, result.stderr
    assert summary["records_read"] == 50 and summary["records_invalid"] == 0
    assert summary["reasons"] == {} and summary["rejected_file"] is None
    assert not list(tmp_path.glob("rejected*"))


def test_validate_applies_the_timestamp_options(tmp_path: Path) -> None:
    untimed = event("u1", 1)
    del untimed["timestamp"]
    records = [event("u1", 0, timestamp=1768487400123), untimed, event("u2", 2)]
    write_ndjson(tmp_path / "t.ndjson", records)
    result, summary = validate(tmp_path, "t.ndjson")
    assert result.returncode == 1
    assert summary["reasons"] == {"events[i]: timestamp must be ISO 8601": 1}
    assert summary["events_without_timestamp"] == 1
    assert "warning: 1 events have no timestamp" in result.stderr
    result, summary = validate(tmp_path, "t.ndjson", "--epoch-timestamps", "--require-timestamp")
    assert result.returncode == 1
    assert summary["reasons"] == {"events[i]: timestamp is missing": 1}
    result, summary = validate(tmp_path, "t.ndjson", "--epoch-timestamps")
    assert result.returncode == 0, result.stderr


def test_validate_reports_where_a_truncated_gzip_stopped(tmp_path: Path) -> None:
    data = b"".join(orjson.dumps(event("u1", n, pad=f"{n:x}" * 9)) + b"\n" for n in range(3000))
    whole = gzip.compress(data)
    (tmp_path / "cut.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    result, summary = validate(tmp_path, "cut.ndjson.gz")
    assert result.returncode == 1
    (error,) = summary["input_errors"]
    line = summary["records_read"]
    assert 0 < line < 3000
    assert error == f"cut.ndjson.gz:{line}: gzip stream is truncated or corrupt after line {line}"
    assert f"warning: input stopped early: {error}" in result.stderr


def test_validate_refuses_unreadable_input_with_exit_2(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "ok.ndjson", [event("u1", 0)])
    (tmp_path / "bad.ndjson.gz").write_bytes(b"\x1f\x8b\x07garbage")
    for arg, message in [
        ("missing.ndjson", "missing.ndjson: no such file"),
        ("bad.ndjson.gz", "bad.ndjson.gz: bad gzip header or data: "),
    ]:
        result = cli("validate", "ok.ndjson", arg, env=base_env(), cwd=tmp_path)
        assert result.returncode == 2
        assert f"revbridge: error: {message}" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_dry_run_packs_reports_requests_and_bytes_and_sends_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    good = messy_inputs(tmp_path)
    args = ("messy.ndjson", "types.ndjson", "--max-bytes", "2000", "--concurrency", "1")
    result, dry = cli_json(
        "send", "--dry-run", *args, "--rejected", "dry.ndjson", sb=sandbox, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.requests() == []
    assert dry["dry_run"] is True and dry["requests"] == 0
    assert dry["events_sent"] == good and dry["batches"] >= 2 and dry["bytes_would_send"] > 0
    assert dry["reasons"] == expected_reasons()
    assert len(read_ndjson(tmp_path / "dry.ndjson")) == len(MALFORMED) + len(WRONG_TYPES)
    figures = f"{dry['batches']:,} / {dry['bytes_would_send']:,}"
    assert re.search(rf"^would send requests / bytes +{figures}$", result.stderr, re.M)
    # the very same packing, sent for real: the dry run's figures were the truth
    result, real = cli_json("send", *args, "--rejected", "real.ndjson", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    requests = sandbox.requests()
    assert len(requests) == dry["batches"]
    assert sum(r["bytes"] for r in requests) == dry["bytes_would_send"] == real["bytes_sent"]
    assert real["events_accepted"] == good


# ---- the Troubleshooting table (docs/troubleshooting.md) cannot drift from the messages -------

TROUBLESHOOTING = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"
# Placeholders of the table, as they read once `re.escape`d, and what they stand for.
_LITERAL = [
    ("…", ".*"),
    ("FILE", r"\S+"),
    ("DIR", r"\S+"),
    ("LINE", r"\d+"),
    (r"\[i\]", r"\[\d+\]"),
]
_WORDS = [(r"\bN\b", r"[\d,]+"), (r"\b[BC]\b", r"\d+"), (r"\b0xXX\b", "0x[0-9a-f]{2}")]


def troubleshooting_patterns() -> list[re.Pattern[str]]:
    """The first column's `code` spans as regexes: FILE, LINE, N, … are placeholders."""
    text = TROUBLESHOOTING.read_text()
    section = text.split("# Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    patterns = []
    for row in section.splitlines():
        if not row.startswith("| ") or row.startswith("| message"):
            continue
        for span in re.findall(r"`` (.+?) ``|`([^`]+)`", row.split(" | ", 1)[0]):
            pattern = re.escape(span[0] or span[1])
            for literal, regex in _LITERAL:
                pattern = pattern.replace(literal, regex)
            for word, regex in _WORDS:
                pattern = re.sub(word, regex.replace("\\", "\\\\"), pattern)
            patterns.append(re.compile(pattern))
    return patterns


def test_every_message_a_user_meets_is_in_the_troubleshooting_table(tmp_path: Path) -> None:
    messy_inputs(tmp_path)
    write_ndjson(tmp_path / "times.ndjson", [{"user_id": "u1", "event_name": "x"}])
    write_ndjson(tmp_path / "epoch.ndjson", [event("u1", 0, timestamp=1e300)])
    (tmp_path / "doc.json").write_bytes(b'[{"user_id": "u1", "event_name": "x"}, {"user_')
    whole = gzip.compress(b"".join(orjson.dumps(event("u1", n)) + b"\n" for n in range(2000)))
    (tmp_path / "cut.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    messages: list[str] = []
    for args in [
        ("messy.ndjson", "types.ndjson", "doc.json", "cut.ndjson.gz"),
        ("times.ndjson", "--require-timestamp"),
        ("epoch.ndjson", "--epoch-timestamps"),
    ]:
        result, _ = validate(tmp_path, *args, "--rejected", "rows.ndjson")
        messages += [w for w in result.stderr.splitlines() if w.startswith("warning: ")]
    messages += [r["message"] for r in read_ndjson(tmp_path / "rows.ndjson")]
    (tmp_path / "plain.ndjson.gz").write_bytes(b"{}\n")
    (tmp_path / "bad.ndjson.gz").write_bytes(b"\x1f\x8b\x07garbage")
    (tmp_path / "empty.ndjson").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    for arg in [
        "missing.ndjson",
        "x*.ndjson",
        "plain.ndjson.gz",
        "bad.ndjson.gz",
        "empty.ndjson",
        "dir",
        "/dev/null",
    ]:
        result = cli("validate", arg, env=base_env(), cwd=tmp_path)
        assert result.returncode == 2
        messages.append(result.stderr.strip().removeprefix("revbridge: error: "))
    patterns = troubleshooting_patterns()
    missing = sorted({m for m in messages if not any(p.match(m) for p in patterns)})
    assert missing == [], "these messages have no row in the Troubleshooting table"
