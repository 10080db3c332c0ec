"""The run's outputs (rejected file, state, log file) and option bounds, through the real CLI.

Up front: a path the run could not write is exit 2 before the first request, naming the path
and the flag or profile key. Mid-run: a disk that refuses a row (a real OS limit, RLIMIT_FSIZE
or a small tmpfs) leaves only whole rows, as many as the summary says, and a clean stop.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli, event, limited_file_size, read_ndjson, seqs, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    path.chmod(0o600)
    return path


def data_file(tmp_path: Path, n: int = 5) -> Path:
    return write_ndjson(tmp_path / "events.ndjson", [event(f"u{i}", i) for i in range(n)])


# ---- option bounds: one table for flags, profiles and the packer ---------------------------


def test_a_profile_max_bytes_below_the_floor_is_exit_2_naming_the_key(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "[profiles.p]\nmax_bytes = 10\n")
    result = cli(
        "send", "--config", str(config), "--profile", "p", str(data_file(tmp_path)), sb=sandbox
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "max_bytes must be at least 1024 (got 10)" in result.stderr
    assert "profile p" in result.stderr
    assert sandbox.requests() == []


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("concurrency", "65", "concurrency must be at most 64"),
        ("timeout", "0.01", "timeout must be at least 0.1"),
        ("max_users", "0", "max_users must be at least 1"),
    ],
)
def test_profile_and_flag_share_one_range(
    sandbox: Sandbox, tmp_path: Path, key: str, value: str, says: str
) -> None:
    config = write_config(tmp_path, f"[profiles.p]\n{key} = {value}\n")
    data = str(data_file(tmp_path))
    by_profile = cli("send", "--config", str(config), "--profile", "p", data, sb=sandbox)
    assert by_profile.returncode == 2 and says in by_profile.stderr
    by_flag = cli("send", f"--{key.replace('_', '-')}", value, data, sb=sandbox)
    assert by_flag.returncode == 2 and "Traceback" not in by_flag.stderr
    assert sandbox.requests() == []


# ---- outputs checked up front ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "name"), [("--rejected", "r.ndjson"), ("--state", "s.state"), ("--log-file", "l.log")]
)
def test_an_output_in_a_missing_directory_is_exit_2_before_any_request(
    sandbox: Sandbox, tmp_path: Path, flag: str, name: str
) -> None:
    missing = tmp_path / "no" / "such"
    result = cli("send", str(data_file(tmp_path)), flag, str(missing / name), sb=sandbox)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"revbridge: error: {flag} {missing / name}: ")
    assert f"mkdir -p {missing}" in line
    assert sandbox.requests() == []


def test_the_documented_profile_paths_in_missing_directories_name_the_profile_key(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """docs/configuration.md's own example: `state = "state/production.json"` beside the file."""
    config = write_config(
        tmp_path,
        '[profiles.production]\nstate = "state/production.json"\n'
        'rejected = "out/rejected-production.ndjson"\n',
    )
    data = str(data_file(tmp_path))
    result = cli("send", "--config", str(config), "--profile", "production", data, sb=sandbox)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"rejected = '{tmp_path}/out/rejected-production.ndjson'" in line
    assert f"profile production ({config})" in line
    assert f"mkdir -p {tmp_path}/out" in line
    (tmp_path / "out").mkdir()
    result = cli("send", "--config", str(config), "--profile", "production", data, sb=sandbox)
    assert result.returncode == 2
    assert f"state = '{tmp_path}/state/production.json'" in result.stderr
    assert sandbox.requests() == []


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """A directory nobody may create files in: a read-only tmpfs as root, mode 0500 otherwise."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr!r}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_an_unwritable_directory_is_exit_2_naming_the_option(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with read_only_dir(tmp_path / "ro") as ro:
        result = cli(
            "send", str(data_file(tmp_path)), "--rejected", str(ro / "r.ndjson"), sb=sandbox
        )
    assert result.returncode == 2
    assert f"--rejected {ro}/r.ndjson: cannot create a file in {ro}" in result.stderr
    assert sandbox.requests() == []


def test_rejected_dev_null_is_a_valid_choice(sandbox: Sandbox, tmp_path: Path) -> None:
    records: list[Any] = [event("u1", 1), {"event_name": "no identifier"}, event("u2", 2)]
    data = write_ndjson(tmp_path / "mixed.ndjson", records)
    result = cli("send", str(data), "--rejected", "/dev/null", "--json", sb=sandbox)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["rejected_rows"] == 1 and summary["events_accepted"] == 2


# ---- the disk refuses rows mid-run ------------------------------------------------------------


def mixed(n: int) -> list[Any]:
    """Every third record has no identifier: it is set aside while the file is read."""
    return [
        {"event_name": "purchase", "seq": i, "pad": "x" * 200} if i % 3 == 0 else event(f"u{i}", i)
        for i in range(n)
    ]


def test_a_file_size_limit_leaves_whole_rows_as_many_as_the_summary_says(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "mixed.ndjson", mixed(3000))
    rejected = tmp_path / "rejected.ndjson"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "revbridge_cli",
            "send",
            str(data),
            "--rejected",
            str(rejected),
            "--json",
        ],
        env=base_env(sandbox),
        capture_output=True,
        timeout=60,
        preexec_fn=limited_file_size(50_000),
    )
    stderr = done.stderr.decode()
    assert done.returncode == 74, stderr
    assert "Traceback" not in stderr
    assert f"cannot write the rejected file {rejected}: File too large" in stderr
    body = rejected.read_bytes()
    assert 0 < len(body) <= 50_000 and body.endswith(b"\n")
    rows = read_ndjson(rejected)  # every line parses: none was cut in half
    summary = orjson.loads(done.stdout)
    assert summary["exit_code"] == 74
    assert summary["rejected_rows"] == len(rows) == summary["records_invalid"]
    assert f"holds {len(rows):,} complete rows" in stderr
    assert summary["unaccounted_events"] == 0  # the summary's own books balance


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr!r}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_a_full_disk_under_state_keeps_the_books_and_the_rerun_sends_the_rest(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """ENOSPC on the rejected file: exit 74, whole rows only, and every record is accepted, in a
    row, or left in the journal for the rerun, which takes each exactly once."""
    n = 3000
    data = write_ndjson(tmp_path / "mixed.ndjson", mixed(n))
    state = tmp_path / "run.state"
    args = ("send", str(data), "--state", str(state), "--json", "--max-users", "50")
    with small_tmpfs(tmp_path / "full", "64k") as full:
        rejected = full / "rejected.ndjson"
        first = cli(*args, "--rejected", str(rejected), sb=sandbox)
        assert first.returncode == 74, first.stderr
        assert "Traceback" not in first.stderr
        assert "No space left on device" in first.stderr
        body = rejected.read_bytes()
        rows1 = read_ndjson(rejected)
    assert body.endswith(b"\n")
    s1 = orjson.loads(first.stdout)
    assert s1["rejected_rows"] == len(rows1) == s1["records_invalid"]
    assert s1["unaccounted_events"] == 0

    rejected2 = tmp_path / "rejected2.ndjson"
    second = cli(*args, "--rejected", str(rejected2), sb=sandbox)
    assert second.returncode == 1, second.stderr
    s2 = orjson.loads(second.stdout)
    rows2 = read_ndjson(rejected2)
    # The books: every record of the file was accepted by run 1, is in run 1's rows, or was
    # left pending and read by run 2; and nothing is counted twice.
    assert n == s1["events_accepted"] + len(rows1) + s2["records_read"]
    set_aside = [e["seq"] for r in rows1 + rows2 for e in r["user"]["events"]]
    assert sorted(seqs(sandbox) + set_aside) == list(range(n))
