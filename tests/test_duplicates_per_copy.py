"""Possible duplicates are counted once per copy the server may hold, not once per batch.

A batch stored and then cut off twice (stored, reset, resent, stored, reset, resent, stored)
sits on the server three times: the run must report two copies' worth of possible duplicates,
in the summary, `--json`, the journal's run log and `state show` (issue 24). The sandbox's
`reset_requests` with `reset_after_store` makes the schedule exact, so this is deterministic.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from conftest import cli, cli_json, event, seqs, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e

FAST_RETRY = ("--retry-initial-delay", "0.01", "--retry-max-delay", "0.05")


@pytest.mark.parametrize("with_state", [False, True], ids=["no-state", "state"])
def test_a_batch_in_doubt_twice_counts_two_copies(
    sandbox: Sandbox, tmp_path: Path, with_state: bool
) -> None:
    sandbox.set_faults(reset_requests=(1, 2), reset_after_store=True)
    records = [event("u1", 1), event("u1", 2), event("u2", 3), event("u3", 4)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    state = tmp_path / "run.state"
    extra = ("--state", str(state)) if with_state else ()
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json(
        "send", str(path), *FAST_RETRY, *extra, "--rejected", str(rejected),
        sb=sandbox, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stored = seqs(sandbox)
    assert sorted(stored) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert [r["status"] for r in sandbox.requests()] == [0, 0, 202]
    sent = len(records)
    assert len(stored) - sent == summary["possible_duplicate_events"] == 8
    assert summary["unaccounted_events"] == 0, summary
    assert summary["events_accepted"] == sent and not rejected.exists()
    assert re.search(r"possible duplicate events\W+8\b", result.stderr), result.stderr
    if with_state:
        report = orjson.loads(cli("state", "show", "--json", str(state)).stdout)
        assert report["runs"][0]["counts"]["possible_duplicate_events"] == 8
        # The summary was printed: nothing is carried for a later run to count again.
        rerun, again = cli_json("send", str(path), *extra, sb=sandbox, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert again["possible_duplicate_events"] == 0 and again["unaccounted_events"] == 0
