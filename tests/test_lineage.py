"""A rejected file sent back keeps its lineage: `origin` is the very first input's file and
line through every fix round, beside `source` (where this round read it); a parse error reads
the same in every round. Through the real command and the real sandbox, over two rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import cli_json, event, read_ndjson, seqs

from revbridge_cli.sandbox import Sandbox


def send(sb: Sandbox, tmp: Path, data: Path, rejected: str) -> tuple[dict[str, Any], list[Any]]:
    done, summary = cli_json("send", str(data), "--rejected", str(tmp / rejected), sb=sb)
    assert done.returncode == 1, done.stderr
    rows = read_ndjson(tmp / rejected)
    # the books: every record read is accepted or a row
    assert summary["events_accepted"] + len(rows) == summary["records_read"], summary
    return summary, rows


def by_origin(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["origin"]: row for row in rows}


def test_origin_survives_two_fix_rounds_and_the_parse_error_keeps_its_words(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(reject_user_ids=("server-says-no",))
    original = tmp_path / "orig.ndjson"
    lines = [
        event("ok1", 1),
        event("bad-revenue", 2, revenue="12.50"),  # ours: revenue must be a number
        '{"user_id": "broken", "event_name": "x",, "seq": 3}',  # a syntax error
        event("server-says-no", 4),  # the server's verdict
        event("ok5", 5),
    ]
    original.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    _, first = send(sandbox, tmp_path, original, "round1.ndjson")
    origins = {f"{original}:{n}" for n in (2, 3, 4)}
    assert {row["origin"] for row in first} == origins
    assert all(row["source"] == row["origin"] for row in first)  # round 1: the same
    where, parse_error = by_origin(first)[f"{original}:3"]["message"].split(": ", 1)
    assert where == f"{original}:3"  # where the reader met it; the row's `raw` has the text
    assert parse_error.startswith("invalid JSON (") and "at column" in parse_error

    # Round 2: the file sent back as it is (nothing fixed yet): same origins, same words.
    _, second = send(sandbox, tmp_path, tmp_path / "round1.ndjson", "round2.ndjson")
    assert {row["origin"] for row in second} == origins
    assert {row["source"].split(":")[0] for row in second} == {str(tmp_path / "round1.ndjson")}
    assert by_origin(second)[f"{original}:3"]["message"] == parse_error

    # Round 3: a fix that fixes one row and botches another; the others are sent back again.
    rows = read_ndjson(tmp_path / "round2.ndjson")
    for row in rows:
        if row["origin"].endswith(":2"):
            row["user"]["events"][0]["revenue"] = 12.5  # fixed
    fixed = tmp_path / "fixed.ndjson"
    fixed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    _, third = send(sandbox, tmp_path, fixed, "round3.ndjson")
    assert {row["origin"] for row in third} == {f"{original}:3", f"{original}:4"}
    assert by_origin(third)[f"{original}:3"]["message"] == parse_error
    assert by_origin(third)[f"{original}:4"]["kind"] == "rejected"  # the server's, again
    assert sorted(seqs(sandbox)) == [1, 2, 5]  # ok1 and ok5 once, the fixed row once
