"""Operator experience: what a person at a terminal, a cron job and a CI log each see.

Every run here is the real command in a child process: under a pseudo-terminal (pexpect) for
the live display, with pipes for cron and CI. The key never shows up anywhere it could stay.
"""

from __future__ import annotations

import io
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pexpect
import pytest
from conftest import API_KEY, CUSTOMER_ID, base_env, cli, event, write_ndjson
from typer.testing import CliRunner

from revbridge_cli import __version__
from revbridge_cli.cli.app import app
from revbridge_cli.cli.console import PlainReporter
from revbridge_cli.config.credentials import mask
from revbridge_cli.delivery.sender import Attempt
from revbridge_cli.report.summary import Summary
from revbridge_cli.sandbox import Faults, Sandbox

SECRET = API_KEY  # the suite's one test key: distinctive, easy to find if it leaks
WRONG = "rbk_live_WRONGwrongWRONG0000"
CUSTOMER = CUSTOMER_ID

pytestmark = [
    pytest.mark.e2e,  # every test here runs a sandbox or the real command
    pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal"),
]

# SGR parameters that choose a colour: 30-38/40-48 (with 38;5 / 38;2 forms), 90-97, 100-107.
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_COLOUR = re.compile(r"^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x1b]*\x1b\\")  # CSI, and OSC ... ST


def visible(text: str) -> str:
    """What a person reads: the text without escape sequences."""
    return _ESCAPES.sub("", text)


def colour_codes(text: str) -> list[str]:
    return [m for m in _SGR.findall(text) if any(_COLOUR.match(p) for p in m.split(";"))]


def many_users(tmp_path: Path, n: int = 200, name: str = "events.ndjson") -> Path:
    return write_ndjson(tmp_path / name, [event(f"u{i}", i) for i in range(n)])


def pty_run(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    typed: str | None = None,
    program: str | None = None,
) -> tuple[str, int]:
    """`revbridge ARGS` (or `program ARGS`) with stdin, stdout and stderr on one
    pseudo-terminal; `typed` is entered at the API key prompt."""
    child = pexpect.spawn(
        program or sys.executable,
        args if program else ["-m", "revbridge_cli", *args],
        env=env,
        cwd=str(cwd),
        dimensions=(40, 120),
        encoding="utf-8",
        codec_errors="replace",
        timeout=30,
    )
    before = ""
    if typed is not None:
        child.expect_exact("API key: ")
        before = child.before + child.after
        child.sendline(typed)
    output = before + child.read()
    child.close()
    assert child.exitstatus is not None, output
    return output, child.exitstatus


def tty_env(sb: Sandbox, **extra: str) -> dict[str, str]:
    return base_env(sb, TERM="xterm-256color", **extra)


SLOW_SEND = ["--max-users", "10", "--concurrency", "1", "--retry-initial-delay", "0.05"]


# ---- on a terminal ---------------------------------------------------------------------------


def test_terminal_shows_live_progress_then_a_summary_table(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.faults = Faults(latency=0.03, fail_requests=(2,))
    data = many_users(tmp_path)
    # a retry wait long enough for the display (refreshed every 0.1 s) to show it, even on a
    # loaded machine
    args = ["send", str(data), "--max-users", "10", "--concurrency", "1"]
    output, code = pty_run([*args, "--retry-initial-delay", "0.8"], tty_env(sandbox), tmp_path)
    assert code == 0, output
    assert "\x1b[" in output and colour_codes(output)  # a live display, drawn in colour
    text = visible(output)
    for piece in ("sending", "kB read", "events/s", "ETA", "records", "accepted", "rejected"):
        assert piece in text, piece
    assert re.search(r"retries 1 \(HTTP 503: 1\), next in [\d.]+ s", text)
    assert "retrying 1" in text  # the counter while batch 2 waits
    # the summary table, drawn with box characters, after the display is gone
    table = text[text.rindex("revbridge send") :]
    assert "│" in table and "records read" in table and "200 / 200" in table
    assert "\x1b[?25h" in output  # the cursor is given back


def test_terminal_with_no_color_has_no_colour_codes(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults = Faults(latency=0.03)
    records = [event(f"u{i}", i) for i in range(200)]
    records.append({"identifiers": {"user_id": "v"}, "events": [{"name": "no event_name"}]})
    data = write_ndjson(tmp_path / "events.ndjson", records)
    env = tty_env(sandbox, NO_COLOR="1")
    # the file by its name in the run's folder: a long temporary path would wrap the table's lines
    output, code = pty_run(["send", data.name, *SLOW_SEND], env, tmp_path)
    assert code == 1, output  # one record set aside
    assert colour_codes(output) == []
    assert _SGR.findall(output) == []  # no bold, no dim, no reset: no styling at all
    text = visible(output)
    assert "events/s" in text and "ETA" in text  # still the live display
    table = text[text.rindex("revbridge send") :]
    assert "│ records read" in table and "invalid records (not sent)" in table
    # the table shows reasons as text, not as rich markup ("[i]" would turn italic)
    assert "events[i]: event_name is required" in table
    assert "events.ndjson:201: events[0]: event_name is required" in table


def test_a_503_storm_is_one_updating_line_and_the_log_keeps_every_retry(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    storm = tuple(range(2, 12))  # batch 2 is refused ten times, then goes in
    sandbox.faults = Faults(latency=0.02, fail_requests=storm)
    data = many_users(tmp_path, n=40)
    log = tmp_path / "run.log"
    args = ["send", str(data), "--max-users", "10", "--concurrency", "1", "--max-retries", "12"]
    args += ["--retry-initial-delay", "0.2", "--retry-max-delay", "0.2", "--log-file", str(log)]
    output, code = pty_run(args, tty_env(sandbox), tmp_path)
    assert code == 0, output
    text = visible(output)
    assert "retrying batch" not in text  # no line per retry
    assert re.search(r"retries \d+ \(HTTP 503: \d+\), next in 0\.\d s", text)
    assert "retries 10 (HTTP 503: 10)" in text
    # the screen's lines: a retry line is redrawn in place, never stacked in the scrollback
    assert text.count("retries 10 (HTTP 503: 10)") <= text.count("ETA") + 1
    refused = [r["trace_id"] for r in sandbox.requests() if r["status"] == 503]
    assert len(refused) == 10
    logged = [line for line in log.read_text().splitlines() if "HTTP 503" in line]
    assert len(logged) == 10
    for trace_id, line in zip(refused, logged, strict=True):
        assert f"trace_id {trace_id}" in line and "retry in" in line


def test_quiet_on_a_terminal_prints_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    output, code = pty_run(
        ["send", "-q", str(many_users(tmp_path, 20))], tty_env(sandbox), tmp_path
    )
    assert (code, output) == (0, "")
    assert len(sandbox.events()) == 20


def test_json_to_a_pipe_while_the_display_is_on_the_terminal(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`revbridge send --json ... | jq`: the display must not swallow stdout into stderr."""
    sandbox.faults = Faults(latency=0.02)
    data = many_users(tmp_path, 50)
    command = f"{sys.executable} -m revbridge_cli send --json --max-users 5 {data} > out.json"
    output, code = pty_run(["-c", command], tty_env(sandbox), tmp_path, program="/bin/sh")
    assert code == 0, output
    assert "events/s" in output and "records_read" not in output
    summary = (tmp_path / "out.json").read_text()
    assert summary.startswith('{"schema_version":1,"records_read":50,') and summary.count("\n") == 1


# ---- off a terminal (cron, pipes, CI) --------------------------------------------------------


def test_pipes_get_no_escape_codes_and_a_plain_summary(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults = Faults(fail_requests=(1,))
    data = many_users(tmp_path, 50)
    # a CI job that sets FORCE_COLOR for some other tool still gets a plain log
    env = base_env(sandbox, TERM="xterm-256color", FORCE_COLOR="1")
    result = cli("send", str(data), "--retry-initial-delay", "0.05", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    assert "━" not in result.stderr and "│" not in result.stderr
    assert re.search(r"^accepted user objects / events +50 / 50$", result.stderr, re.M)
    assert re.search(r"^requests \(retries\) +\d+ \(1\)$", result.stderr, re.M)
    assert result.stdout == ""


def test_quiet_in_a_pipe_prints_nothing_but_the_exit_code(sandbox: Sandbox, tmp_path: Path) -> None:
    result = cli("send", "--quiet", str(many_users(tmp_path, 20)), sb=sandbox, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_json_goes_to_stdout_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    result = cli("send", "--json", str(many_users(tmp_path, 20)), sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.count("\n") == 1 and '"events_accepted":20' in result.stdout
    assert "records read" in result.stderr


def test_plain_lines_are_throttled_and_say_where_the_run_is() -> None:
    summary = Summary(records_read=120, events_sent=100, events_accepted=98, users_rejected=2)
    retry = Attempt(7, 503, "trace-xyz", 0.1, None, 1.5, 10, 1000)

    quiet_for_an_hour = io.StringIO()
    reporter = PlainReporter(quiet_for_an_hour, interval=3600)
    for _ in range(100):
        reporter.progress(summary, 500, 1000)
        reporter.attempt(retry)
    assert quiet_for_an_hour.getvalue() == ""
    reporter.notice("interrupted (Ctrl-C)")  # a notice is not progress: it goes out at once
    assert quiet_for_an_hour.getvalue().endswith(" interrupted (Ctrl-C)\n")

    every_call = io.StringIO()
    reporter = PlainReporter(every_call, interval=0)
    reporter.attempt(retry)
    reporter.progress(summary, 500, 1000)
    line = every_call.getvalue().splitlines()[-1]
    assert "500 bytes of 1.0 kB read" in line and "records 120" in line
    assert "accepted 98 events" in line and "rejected 2 users" in line and "retrying 1" in line
    assert "events/s" in line
    assert "1 retries since the last line (last: HTTP 503, trace_id trace-xyz)" in line
    assert "\x1b" not in every_call.getvalue()


# ---- the log file ----------------------------------------------------------------------------


def test_log_file_keeps_the_trace_id_of_every_request_not_a_plain_202(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # one 503, and one user the server refuses although the client's checks pass it
    sandbox.faults = Faults(fail_requests=(1,), reject_user_ids=("blocked",))
    records = [event(f"u{i}", i) for i in range(30)]
    records.insert(15, event("blocked", 99))
    data = write_ndjson(tmp_path / "events.ndjson", records)
    log = tmp_path / "run.log"
    result = cli(
        "send", str(data), "--log-file", str(log), "--max-users", "5",
        "--retry-initial-delay", "0.05", sb=sandbox, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # one user rejected

    text = log.read_text()
    requests = sandbox.requests()
    failed = [r["trace_id"] for r in requests if r["status"] == 503]
    partial = [r["trace_id"] for r in requests if r["status"] == 202 and r["users_rejected"]]
    plain = [r["trace_id"] for r in requests if r["status"] == 202 and not r["users_rejected"]]
    assert len(failed) == 1 and len(partial) == 1 and len(plain) >= 5
    assert all(trace and trace in text for trace in failed + partial)
    assert not any(trace in text for trace in plain)
    assert re.search(rf"HTTP 503 \(trace_id {failed[0]}, [\d.]+ s\); retry in", text)
    # lanes spread users by hash, so the batch of "blocked" holds up to 5 users
    assert re.search(rf"with 1 of [1-5] users rejected \(trace_id {partial[0]}", text)
    assert "run finished" in text and re.search(r"rejected user objects / events +1 / 1", text)
    assert "\x1b" not in text


def test_log_file_that_cannot_be_opened_is_a_usage_error(sandbox: Sandbox, tmp_path: Path) -> None:
    data = many_users(tmp_path, 5)
    result = cli("send", str(data), "--log-file", str(tmp_path / "no" / "run.log"), sb=sandbox)
    assert result.returncode == 2
    assert result.stderr.startswith(f"revbridge: error: --log-file {tmp_path}/no/run.log: ")
    assert f"mkdir -p {tmp_path}/no" in result.stderr  # checked up front (config/outputs.py)
    assert "Traceback" not in result.stderr


# ---- the key never shows ---------------------------------------------------------------------


def _assert_nowhere(key: str, result: subprocess.CompletedProcess[str], folder: Path) -> None:
    assert key not in result.stdout and key not in result.stderr
    for path in folder.iterdir():  # log, rejected file, state file and its -wal / -journal
        assert key.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize(
    "how", ["env", "flag", "file", "wrong key (401)"], ids=lambda how: how.split()[0]
)
def test_the_key_appears_in_no_output_log_rejected_or_state_file(
    sandbox: Sandbox, tmp_path: Path, how: str
) -> None:
    records = [event(f"u{i}", i) for i in range(20)] + [{"user_id": "x"}]  # one invalid
    data = write_ndjson(tmp_path / "events.ndjson", records)
    out = tmp_path / "out"
    out.mkdir()
    args = ["send", str(data), "--log-file", str(out / "run.log"), "--state", str(out / "s.db")]
    args += ["--rejected", str(out / "rejected.ndjson")]
    env = base_env(sandbox)
    key = SECRET
    if how == "flag":
        del env["REVBRIDGE_API_KEY"]
        args += ["--api-key", SECRET]
    elif how == "file":
        del env["REVBRIDGE_API_KEY"]
        (tmp_path / "key").write_text(SECRET + "\n")
        (tmp_path / "key").chmod(0o600)
        args += ["--api-key-file", str(tmp_path / "key")]
    elif how.startswith("wrong"):
        env["REVBRIDGE_API_KEY"] = key = WRONG
    result = cli(*args, env=env, cwd=tmp_path)
    assert result.returncode == (3 if key == WRONG else 1), result.stderr
    assert (out / "s.db").exists() and (out / "run.log").exists()
    assert (out / "rejected.ndjson").exists()
    if how == "file":
        assert "warning" not in result.stderr  # a 0600 key file is fine
    if key == WRONG:
        assert "authentication refused (401)" in result.stderr
        assert "(trace_id" in (out / "run.log").read_text()
    _assert_nowhere(key, result, out)
    _assert_nowhere(SECRET, result, out)


def test_a_key_typed_at_a_terminal_is_not_echoed(sandbox: Sandbox, tmp_path: Path) -> None:
    env = base_env(sandbox, TERM="xterm-256color")
    del env["REVBRIDGE_API_KEY"]
    data = many_users(tmp_path, 20)
    output, code = pty_run(["send", "--api-key-file", "-", str(data)], env, tmp_path, SECRET)
    assert code == 0, output
    assert output.startswith("API key: ")
    assert SECRET not in output and "records read" in visible(output)
    assert len(sandbox.events()) == 20


# ---- where the key and the settings come from ------------------------------------------------


def test_api_key_file_from_stdin(sandbox: Sandbox, tmp_path: Path) -> None:
    env = base_env(sandbox)
    del env["REVBRIDGE_API_KEY"]
    data = many_users(tmp_path, 10)
    from_stdin = cli("send", "--api-key-file", "-", str(data), env=env, input=SECRET.encode())
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert "warning" not in from_stdin.stderr
    assert len(sandbox.events()) == 10
    both = cli("send", "--api-key-file", "-", "-", env=env, input=SECRET.encode())
    assert both.returncode == 2 and "cannot both read standard input" in both.stderr


def write_config(tmp_path: Path, sb: Sandbox, mode: int = 0o600) -> Path:
    key = tmp_path / "sandbox.key"
    key.write_text(SECRET + "\n")
    key.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        "[profiles.sandbox]\n"
        f'base_url = "{sb.url}"\n'
        f'customer_id = "{sb.customer_id}"\n'
        'api_key_file = "sandbox.key"\n'  # relative to the config file's folder
        "\n[profiles.production]\n"
        'base_url = "production"\n'
    )
    config.chmod(mode)
    return config


@pytest.mark.parametrize("select", ["flags", "environment"])
def test_a_profile_drives_a_run(sandbox: Sandbox, tmp_path: Path, select: str) -> None:
    config = write_config(tmp_path, sandbox)
    data = many_users(tmp_path, 10)
    work = tmp_path / "elsewhere"
    work.mkdir()
    if select == "flags":
        result = cli("send", "--config", str(config), "--profile", "sandbox", str(data),
                     env=base_env(), cwd=work)  # fmt: skip
    else:
        env = base_env(REVBRIDGE_CONFIG=str(config), REVBRIDGE_PROFILE="sandbox")
        result = cli("send", str(data), env=env, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert len(sandbox.events()) == 10


def test_config_shows_masked_key_and_sources(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox)
    result = cli("config", "--config", str(config), "--profile", "sandbox", env=base_env())
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert mask(SECRET) in rows["api_key"] and SECRET[-4:] in rows["api_key"]
    assert "profile sandbox (" in rows["api_key"] and "sandbox.key" in rows["api_key"]
    assert sandbox.url in rows["base_url"] and "profile sandbox" in rows["base_url"]
    assert rows["profile"].split()[1:] == ["sandbox", "flag", "--profile"]
    assert "flag --config" in rows["config"]

    env = base_env(sandbox, REVBRIDGE_CONFIG=str(config))
    result = cli("config", env=env)
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "env REVBRIDGE_API_KEY" in rows["api_key"] and mask(SECRET) in rows["api_key"]
    assert "env REVBRIDGE_BASE_URL" in rows["base_url"]
    assert "env REVBRIDGE_CONFIG" in rows["config"]

    on_the_line = cli("config", "--api-key", SECRET, env=base_env())
    assert on_the_line.returncode == 0 and SECRET not in on_the_line.stdout + on_the_line.stderr
    assert "flag --api-key" in on_the_line.stdout and "shell history" in on_the_line.stdout


def test_a_config_file_others_can_read_draws_a_warning(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox, mode=0o644)
    shown = cli("config", "--config", str(config), "--profile", "sandbox", env=base_env())
    assert shown.returncode == 0
    assert f"warning: config file {config} can be read by group or others (mode 0644)" in (
        shown.stdout
    )
    assert f"chmod 600 {config}" in shown.stdout
    data = many_users(tmp_path, 5)
    sent = cli("send", "--config", str(config), "--profile", "sandbox", str(data), env=base_env())
    assert sent.returncode == 0
    assert "revbridge: warning: config file" in sent.stderr and "(mode 0644)" in sent.stderr


@pytest.mark.parametrize("command", ["send", "config"])
def test_plain_http_to_another_host_is_refused(tmp_path: Path, command: str) -> None:
    data = many_users(tmp_path, 1)
    args = [command, "--base-url", "http://example.com", "--api-key-file", "-"]
    result = cli(*args, *([str(data)] if command == "send" else []), env=base_env(),
                 input=SECRET.encode())  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("revbridge: error: base URL 'http://example.com' uses http://")
    assert "use https://" in result.stderr and "in clear" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_tls_certificates_are_verified(tmp_path: Path) -> None:
    """A server with a self-signed certificate never gets to read a request (nor the key)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    got: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    got.append(tls.recv(65536))
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        env = base_env(
            REVBRIDGE_BASE_URL=f"https://127.0.0.1:{port}",
            REVBRIDGE_API_KEY=SECRET,
            REVBRIDGE_CUSTOMER_ID=CUSTOMER,
        )
        env.pop("SSL_CERT_FILE", None)  # only the system's authorities
        data = many_users(tmp_path, 1)
        result = cli("send", str(data), "--max-retries", "0", "--rejected",
                     str(tmp_path / "rejected.ndjson"), env=env)  # fmt: skip
    finally:
        done.set()
        thread.join(5)
        listener.close()
    # No retry mends a certificate: the first answer stops the run with the fix (issue 24).
    assert result.returncode == 2, result.stderr
    assert "could not be verified" in result.stderr and "SSL_CERT_FILE" in result.stderr
    assert got == []
    assert "CERTIFICATE_VERIFY_FAILED" in (tmp_path / "rejected.ndjson").read_text()


# ---- help, version, completion ---------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [[], ["send"], ["validate"], ["config"], ["sandbox"], ["sandbox", "stats"]]
)
def test_every_command_help_shows_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert f"revbridge {' '.join(command)}" in result.output.split("Example", 1)[1]


def test_root_help_offers_shell_completion_and_version() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.output and "--show-completion" in result.output
    version = cli("--version", env=base_env())  # the real entry point, as a user runs it
    assert (version.returncode, version.stdout) == (0, f"revbridge {__version__}\n")


def test_a_dumb_terminal_gets_plain_output(sandbox: Sandbox, tmp_path: Path) -> None:
    """TERM=dumb (Emacs shell, some CI runners) cannot redraw a line: plain output."""
    env = base_env(sandbox, TERM="dumb")
    output, code = pty_run(["send", str(many_users(tmp_path, 10))], env, tmp_path)
    assert code == 0, output
    assert "\x1b" not in output and "records read" in output
