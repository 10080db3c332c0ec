"""`revbridge config` takes every flag `revbridge send` takes, and shows what send would use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import base_env, cli
from typer.main import get_command
from typer.testing import CliRunner

from revbridge_cli.cli.app import app

SEND = get_command(app).commands["send"]  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_config_parses_send_flags_and_shows_them() -> None:
    args = ["--concurrency", "8", "--max-retries", "2", "--since", "2026-01-01", "--dry-run"]
    done = cli("config", *args, "--state", "events.state", "exports/", env=base_env())
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "8" in rows["concurrency"] and "flag --concurrency" in rows["concurrency"]
    assert "flag --since" in rows["since"] and "flag --state" in rows["state"]
    assert "flag --dry-run" in rows["dry_run"]


@pytest.mark.e2e
def test_config_refuses_what_send_refuses() -> None:
    for args in (["--concurrency", "0"], ["--no-such-flag"]):
        done = cli("config", *args, env=base_env())
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "revbridge config" in done.stderr


def test_every_send_option_is_accepted_by_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of send's value options with a harmless value, each flag alone: none refused.

    In process (Typer's runner over the real command tree): the child-process tests above
    prove the entry point; this one walks every option, and a process each cost 40 starts."""
    config = tmp_path / "config.toml"
    config.write_text("[profiles.p]\nconcurrency = 2\n")
    samples = {
        "--format": "ndjson",
        "--since": "2026-01-01",
        "--until": "2026-02-01",
        "--base-url": "http://127.0.0.1:9",
        "--config": str(config),
        "--profile": "p",
        "--max-bytes": "100000",
    }
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    for name in [k for k in os.environ if k.startswith("REVBRIDGE_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()
    for param in SEND.params:
        if param.param_type_name != "option" or param.opts[0] in ("--api-key-file", "--sandbox"):
            continue
        if getattr(param, "is_flag", False):
            args = [param.opts[0]]
        else:
            args = [param.opts[0], samples.get(param.opts[0], "5")]
        if param.opts[0] == "--profile":
            args += ["--config", str(config)]
        done = runner.invoke(app, ["config", *args])
        assert done.exit_code == 0, (args, done.output)
