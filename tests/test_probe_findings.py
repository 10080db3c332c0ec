"""Regressions for what the hostile probes of issue 24 found (written without the other tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli, cli_json, event, read_ndjson, write_ndjson

from revbridge_cli import Connection, RunAborted, send_records
from revbridge_cli.sandbox.runner import Sandbox

pytestmark = pytest.mark.e2e

PROBE_KEY = "rbk_probe_SECRET_0123456789"


class _Teapot(BaseHTTPRequestHandler):
    """A wrong host: an undocumented status with a non-JSON page quoting the request."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        page = f"<x>{self.headers.get('authorization')}</x>".encode()
        self.send_response(418)
        self.send_header("content-type", "application/xml")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


@pytest.fixture
def teapot() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teapot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_undocumented_status_without_error_text_says_what_came_back(
    teapot: str, tmp_path: Path
) -> None:
    # Found: "unexpected answer HTTP 418: " with nothing after the colon.
    source = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1), event("u2", 2)])
    rejected = tmp_path / "rejected.ndjson"
    env = base_env(
        REVBRIDGE_BASE_URL=teapot, REVBRIDGE_API_KEY=PROBE_KEY, REVBRIDGE_CUSTOMER_ID="cust_p"
    )
    done, summary = cli_json(
        "send", "--max-retries", "0", "--rejected", str(rejected), str(source), env=env
    )
    assert done.returncode == 1
    assert summary["unaccounted_events"] == 0
    assert summary["events_undelivered"] == 2
    message = summary["examples"][0]
    assert "unexpected answer HTTP 418: its body starts '<x>Bearer [api key redacted]" in message
    for text in (done.stdout, done.stderr, rejected.read_text()):
        assert PROBE_KEY not in text
        assert "Traceback" not in text


def test_records_that_raise_quoting_the_key_leave_it_out_of_the_result() -> None:
    # Found: RunAborted's message masked the key, but result.as_dict()'s input_errors and
    # files[].error quoted the caller's exception with the key verbatim.
    def records() -> Iterator[dict[str, Any]]:
        yield from (event(f"u{i}", i) for i in range(5))
        raise RuntimeError(f"cursor closed (dsn had {PROBE_KEY})")

    with Sandbox(api_key=PROBE_KEY, customer_id="cust_p") as sb:
        conn = Connection(sb.url, api_key=PROBE_KEY, customer_id="cust_p")
        with pytest.raises(RunAborted) as caught:
            send_records(records(), connection=conn)
    result = caught.value.result
    summary = result.as_dict()
    assert summary["records_read"] == 5
    assert summary["events_accepted"] == 5
    assert summary["unaccounted_events"] == 0
    assert PROBE_KEY not in orjson.dumps(summary).decode()
    assert PROBE_KEY not in repr(result)
    assert PROBE_KEY not in str(caught.value)
    assert "[api key redacted]" in summary["input_errors"][0]


def test_a_file_name_with_a_newline_still_groups_its_reasons() -> None:
    """A path may hold a newline; the summary's reasons group by what follows `:LINE: `."""
    from revbridge_cli.report.summary import reason_of

    first = reason_of("ctl/nl\nx.ndjson:2: invalid JSON: unexpected character")
    second = reason_of("ctl/nl\nx.ndjson:3: invalid JSON: unexpected character")
    assert first == second == "invalid JSON: unexpected character"


def test_a_source_mapped_to_a_profile_field_is_not_named_as_a_missing_identifier() -> None:
    """`"identifiers.bogus" = "uid"` is a profile field riding along (the API allows it), not
    an identifier: the error must not say `uid` has no value when it has one."""
    from revbridge_cli.shape.mapfile import parse
    from revbridge_cli.shape.mapping import MappingError

    mapping = parse('[fields]\n"identifiers.bogus" = "uid"\nevent_name = "e"\n', "m.toml")
    with pytest.raises(MappingError) as caught:
        mapping.apply({"uid": "u1", "e": "opened"})
    message = str(caught.value)
    assert "none of uid has a value" not in message
    assert "m.toml maps no source to one of them" in message


def test_a_rename_with_two_equals_signs_is_refused() -> None:
    from revbridge_cli.errors import ConfigError
    from revbridge_cli.shape.mapfile import renames

    with pytest.raises(ConfigError, match="expected SOURCE=TARGET"):
        renames(["a=b=c"])


@pytest.mark.parametrize(
    "text",
    [
        '[fields.identifiers]\nuser_id = "alt"\n',
        '[fields]\nidentifiers.user_id = "alt"\n',
        '[fields]\n"user_properties".vip = "v"\n',
    ],
)
def test_a_target_spelled_as_a_toml_table_is_refused_with_the_spelling_that_works(
    text: str,
) -> None:
    """TOML reads these as a table named after the target's head; the message says how the
    mapping format names a target, at the line of the key inside."""
    from revbridge_cli.errors import ConfigError
    from revbridge_cli.shape.mapfile import parse

    with pytest.raises(ConfigError) as caught:
        parse(text, "m.toml")
    message = str(caught.value)
    assert message.startswith("mapping m.toml:2: ")
    assert "name each target in one quoted key" in message


def test_a_user_too_large_for_any_request_is_named_as_the_large_part(tmp_path: Path) -> None:
    """A 3,000-character user_id under --max-bytes 2048: the user is what is too big, not its
    17-byte event."""
    data = write_ndjson(tmp_path / "in.ndjson", [{"user_id": "u" * 3000, "event_name": "e"}])
    result, summary = cli_json(
        "send", "--dry-run", "--max-bytes", "2048", "--rejected", "rej.ndjson", str(data),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert summary["unaccounted_events"] == 0 and summary["rejected_rows"] == 1
    (row,) = read_ndjson(tmp_path / "rej.ndjson")
    assert row["message"].startswith("its user's identifiers and properties are 3,0")
    assert row["message"].endswith("with any event the request would exceed the 2,048-byte limit")


@pytest.mark.parametrize("gz", [False, True], ids=["json", "json.gz"])
@pytest.mark.parametrize("where", [0, 1500], ids=["first", "middle"])
def test_a_number_no_float_holds_sets_aside_its_record_and_the_document_goes_on(
    sandbox: Sandbox, tmp_path: Path, gz: bool, where: int
) -> None:
    """`1e99999` in a JSON document: ijson stops there, so the file is read again with exact
    numbers; the records before and after it are all sent, it alone is set aside (probe J1)."""
    import gzip

    records = [event(f"u{i % 50}", i, pad="x" * 100) for i in range(3000)]
    records[where] = {**records[where], "revenue": "HUGE"}
    text = orjson.dumps(records).replace(b'"HUGE"', b"1e99999")
    path = tmp_path / ("doc.json.gz" if gz else "doc.json")
    path.write_bytes(gzip.compress(text) if gz else text)
    result, summary = cli_json(
        "send", "--rejected", "rej.ndjson", path.name, sb=sandbox, cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "stopped early" not in result.stderr
    assert summary["records_read"] == 3000 and summary["events_accepted"] == 2999
    assert summary["rejected_rows"] == 1 and summary["unaccounted_events"] == 0
    assert len(sandbox.events()) == 2999
    (row,) = read_ndjson(tmp_path / "rej.ndjson")
    assert row["message"].startswith(f"{path.name}:{where + 1}: a number out of range")
    assert '"seq":' + str(where) in row["raw"]


def test_on_stdin_a_number_no_float_holds_still_ends_the_document_where_it_stands(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """stdin cannot be read twice: the records before it are sent, and the stop says where."""
    records = [event(f"u{i}", i) for i in range(10)]
    records[5] = {**records[5], "revenue": "HUGE"}
    text = orjson.dumps(records).replace(b'"HUGE"', b"1e99999")
    result, summary = cli_json(
        "send", "--format", "json", "--rejected", "rej.ndjson", "-",
        sb=sandbox, cwd=tmp_path, input=text,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert summary["events_accepted"] == 5 and summary["unaccounted_events"] == 0
    assert "<stdin>:5: invalid JSON after record 5" in result.stderr


def test_an_integer_past_64_bits_from_a_mapping_sets_its_record_aside(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`type = "integer"` can make a number no JSON encoder of ours writes: the record is set
    aside with the reason, the next one is sent (probe round 2, F1: was a traceback)."""
    (tmp_path / "m.toml").write_text(
        '[fields]\nuser_id = "uid"\nevent_name = "ev"\n'
        'event_value = { from = "n", type = "integer" }\n'
    )
    rows = [
        {"uid": "u1", "ev": "a", "n": "99999999999999999999"},
        {"uid": "u2", "ev": "b", "n": "1"},
    ]
    data = write_ndjson(tmp_path / "n.ndjson", rows)
    result, summary = cli_json(
        "send", "--map", "m.toml", "--rejected", "rej.ndjson", data.name, sb=sandbox, cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert summary["events_accepted"] == 1 and summary["rejected_rows"] == 1
    assert summary["unaccounted_events"] == 0
    (row,) = read_ndjson(tmp_path / "rej.ndjson")
    assert "a value JSON cannot carry: Integer exceeds 64-bit range" in row["message"]
    assert "99999999999999999999" in row["raw"]
    assert [e["properties"].get("seq") for e in sandbox.events()] == [None]


def test_records_from_a_program_with_an_integer_past_64_bits(sandbox: Sandbox) -> None:
    records = [
        {"user_id": "u1", "event_name": "e", "big": 2**70},
        {"user_id": "u2", "event_name": "e"},
    ]
    result = send_records(
        records,
        connection=Connection(
            sandbox.url, api_key=sandbox.api_key, customer_id=sandbox.customer_id
        ),
    )
    assert result.accepted_events == 1 and result.exit_code == 1
    assert result.as_dict()["unaccounted_events"] == 0
    (row,) = result.rejected_rows
    assert "Integer exceeds 64-bit range" in row["message"]


@pytest.mark.parametrize("field", ["event_name", "revenue", "timestamp"])
def test_an_api_field_and_a_property_of_its_name_are_one_target(field: str) -> None:
    """An event's properties are keys of the event: `properties.revenue` beside `revenue`
    would overwrite it, so the mapping is refused naming both lines (round 2, F6 and F7)."""
    from revbridge_cli.errors import ConfigError
    from revbridge_cli.shape.mapfile import parse, renames

    text = f'[fields]\nuser_id = "uid"\n{field} = "a"\n"properties.{field}" = "b"\n'
    with pytest.raises(ConfigError, match=r"mapping m\.toml:4: .*\(line 3\)"):
        parse(text, "m.toml")
    with pytest.raises(ConfigError, match="both map to"):
        renames([f"a={field}", f"b=properties.{field}"])


@pytest.mark.parametrize("mark", ["pragma user_version = 7", "create view v as select 1"])
def test_an_sqlite_file_with_no_tables_but_another_programs_mark_is_refused(
    sandbox: Sandbox, tmp_path: Path, mark: str
) -> None:
    """No tables is a journal a killed run left only when nothing else marks the file: a
    user_version or a view is another program's (round 2, F8)."""
    import hashlib
    import sqlite3

    state = tmp_path / "app.db"
    with sqlite3.connect(state) as db:
        db.execute(mark)
    db.close()
    before = hashlib.sha256(state.read_bytes()).hexdigest()
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    result, summary = cli_json("send", "--state", str(state), str(data), sb=sandbox, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "another program's SQLite database" in result.stderr
    assert summary["exit_code"] == 2 and sandbox.requests() == []  # refused before reading
    assert hashlib.sha256(state.read_bytes()).hexdigest() == before


def test_a_key_given_as_the_key_file_is_not_repeated(tmp_path: Path) -> None:
    """`--api-key-file rbk_...` (a key where its file's path goes): the message masks it and
    names the flag to use (round 2, F4)."""
    key = "rbk_probe2_SECRET_0123456789"
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    env = base_env(REVBRIDGE_CUSTOMER_ID="c", REVBRIDGE_BASE_URL="http://127.0.0.1:9")
    for command in (["send", str(data)], ["check"]):
        done = cli(*command, "--api-key-file", key, env=env, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert key not in done.stdout + done.stderr
        assert "rbk_…6789" in done.stderr and "--api-key or REVBRIDGE_API_KEY" in done.stderr
