"""Fuzz, bounded: mutated inputs of every format through the real `revbridge send` against the
sandbox. Whatever the input, the exit code is one the send command documents (errors.py's
table), no traceback reaches stderr, the key is in no output (stdout, stderr, the rejected
file, the log file), and the books balance.

Each example starts a child process, so the `ci` profile runs a handful; `long` runs more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import fuzz_helpers as fz
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import API_KEY, CUSTOMER_ID, cli
from hypothesis import given, settings
from hypothesis import strategies as st

from revbridge_cli.errors import COMMAND_EXITS
from revbridge_cli.sandbox import Faults, Sandbox

pytestmark = pytest.mark.e2e

LONG = os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci"
EXAMPLES = int(os.environ.get("FUZZ_CLI_EXAMPLES", "100")) if LONG else 10
SEND_EXITS = {int(code) for code in COMMAND_EXITS["send"]}

SEEDS = {
    "ndjson": (
        b'{"user_id":"u1","event_name":"a","timestamp":"2026-01-15T14:30:00Z","revenue":1}\n'
        b'{"identifiers":{"email":"x@y.z"},"events":[{"event_name":"b","timestamp":1768487400}]}\n'
        b'{"user_id":"u2","event_name":"c","timestamp":"0001-01-01 00:00:00+01:00"}\n'
    ),
    "json": b'{"users":[{"identifiers":{"user_id":"u1"},"events":[{"event_name":"a"}]}]}',
    "csv": (
        b"user_id,event_name,timestamp,revenue,note\n"
        b'u1,a,2026-01-15 14:30:00+00,1.5,"x, ""y"""\n'
        b'u2,b,9999-12-31 23:59:59-01:00,,"multi\nline"\n'
        b"u3,c,1768487400,abc,\n"
    ),
}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, faults=Faults(seed=1)) as sb:
        yield sb


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_cli")


def _parquet(path: Path, stamp: int) -> bytes:
    table = pa.table(
        {
            "user_id": ["u1", "u2", None],
            "event_name": ["a", "b", "c"],
            "timestamp": pa.array([0, stamp, 1_768_487_400_000_000], pa.int64()).view(
                pa.timestamp("us")
            ),
            "revenue": [1.0, float("nan"), None],
        }
    )
    pq.write_table(table, path)
    return path.read_bytes()


@settings(max_examples=EXAMPLES)
@given(
    kind=st.sampled_from(["ndjson", "json", "csv", "tsv", "parquet"]),
    gz=st.booleans(),
    stamp=st.sampled_from([0, 2**62, -(2**62)]),
    lenient=st.booleans(),
    dry=st.booleans(),
    data=st.data(),
)
def test_fuzz_send(
    box: Sandbox,
    where: Path,
    kind: str,
    gz: bool,
    stamp: int,
    lenient: bool,
    dry: bool,
    data: st.DataObject,
) -> None:
    path = where / f"in.{kind}"
    if kind == "parquet":
        raw = _parquet(path, stamp)
        gz = False
    elif kind == "tsv":
        raw = SEEDS["csv"].replace(b",", b"\t")
    else:
        raw = SEEDS[kind]
    path.write_bytes(fz.maybe_gzip(data.draw(fz.mutated(raw)), gz))
    rejected, log = where / "rejected.ndjson", where / "run.log"
    for stale in (rejected, log):
        stale.unlink(missing_ok=True)
    args = ["send", str(path), "--json", "--rejected", str(rejected), "--log-file", str(log)]
    args += ["--timestamps", "lenient"] if lenient else []
    args += ["--dry-run"] if dry else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVBRIDGE_")}
    env.update(
        REVBRIDGE_BASE_URL=box.url,
        REVBRIDGE_API_KEY=API_KEY,
        REVBRIDGE_CUSTOMER_ID=CUSTOMER_ID,
        XDG_CONFIG_HOME="/nonexistent-revbridge-test-config",
    )
    result = cli(*args, env=env, cwd=where)
    assert result.returncode in SEND_EXITS, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    outputs = [result.stdout, result.stderr]
    outputs += [p.read_text("utf-8", "replace") for p in (rejected, log) if p.exists()]
    assert not any(API_KEY in text for text in outputs)
    if result.stdout.strip():
        summary = orjson.loads(result.stdout)
        assert summary.get("unaccounted_events", 0) == 0, summary
