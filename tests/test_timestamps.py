"""Lenient timestamps and --drop-nulls: the pure conversion, then through the CLI and sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli_json, read_ndjson, write_ndjson

from revbridge_cli import contract
from revbridge_cli.sandbox import Sandbox
from revbridge_cli.shape.timestamps import normalize


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-15T14:30:00Z", "2026-01-15T14:30:00Z"),
        ("2026-01-15T14:30:00", "2026-01-15T14:30:00Z"),
        ("2025-01-01 00:17:35.174+00", "2025-01-01T00:17:35.174Z"),
        ("2023-10-15 14:30:00.123456", "2023-10-15T14:30:00.123456Z"),
        ("2026-01-15 14:30:00+0000", "2026-01-15T14:30:00Z"),
        ("2026-01-15T16:30:00+02:00", "2026-01-15T14:30:00Z"),
        ("2026-01-15 09:30:00-05", "2026-01-15T14:30:00Z"),
        ("2026-01-15 14:30:00 UTC", "2026-01-15T14:30:00Z"),
        ("2026-01-16T00:30:00.5+10:00", "2026-01-15T14:30:00.5Z"),
        (1768487400, "2026-01-15T14:30:00Z"),
        (1768487400.25, "2026-01-15T14:30:00.250Z"),
        (1768487400123, "2026-01-15T14:30:00.123Z"),
        (1768487400123456, "2026-01-15T14:30:00.123456Z"),
        ("1768487400", "2026-01-15T14:30:00Z"),
        ("1704103200123456", "2024-01-01T10:00:00.123456Z"),
    ],
)
def test_lenient_reads_what_exports_write(value: object, expected: str) -> None:
    assert normalize(value) == expected
    assert contract.is_iso8601(expected)


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-02-30 10:00:00", "2026-01-15", True, None, 1e300, "12:00"]
)
def test_lenient_refuses_what_is_no_time(value: object) -> None:
    with pytest.raises(ValueError):
        normalize(value)


@pytest.mark.parametrize(
    ("value", "kw"),
    [
        ("0001-01-01 00:00:00+01:00", {}),
        ("9999-12-31 23:59:59-01:00", {}),
        ("9999-12-31 23:59:59", {"zone": "America/Los_Angeles"}),
        ("0001-01-01 00:00 +0100", {"pattern": "%Y-%m-%d %H:%M %z"}),
        (2**62, {"unit": "us"}),
        (float("nan"), {}),
        ("1" + "0" * 5000, {}),
    ],
)
def test_a_time_pushed_out_of_the_calendar_is_a_value_error_not_an_overflow(
    value: object, kw: dict[str, str]
) -> None:
    """datetime raises OverflowError past year 1 or 9999; the shaper only catches ValueError."""
    with pytest.raises(ValueError, match="out of range"):
        normalize(value, **kw)


def test_a_year_below_1000_keeps_four_digits() -> None:
    assert normalize("0001-01-01 00:00:00") == "0001-01-01T00:00:00Z"
    assert normalize("0999-05-01T02:00:00+02:00") == "0999-05-01T00:00:00Z"
    assert normalize(-62135596800) == "0001-01-01T00:00:00Z"


def test_a_fixed_unit_and_a_pattern() -> None:
    assert normalize(1768487400, unit="ms") == "1970-01-21T11:14:47.400Z"
    assert normalize("15/01/2026 14:30", pattern="%d/%m/%Y %H:%M") == "2026-01-15T14:30:00Z"


def test_send_lenient_timestamps_and_drop_nulls(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [
        {"user_id": "u1", "event_name": "a", "timestamp": "2025-01-01 00:17:35.174+00"},
        {"user_id": "u1", "event_name": "b", "timestamp": 1735690655174, "revenue": None},
        {"user_id": "u2", "event_name": "c", "timestamp": None, "user_properties": None},
        {"user_id": "u3", "event_name": "d", "timestamp": "last tuesday"},
    ]
    write_ndjson(tmp_path / "dump.ndjson", records)
    rejected = tmp_path / "rejected.ndjson"
    args = ("send", "dump.ndjson", "--timestamps", "lenient", "--drop-nulls")
    result, summary = cli_json(*args, "--rejected", str(rejected), sb=sandbox, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    stored = {e["event_name"]: e for e in sandbox.events()}
    assert stored["a"]["timestamp"] == "2025-01-01T00:17:35.174Z"
    assert stored["b"]["timestamp"] == "2025-01-01T00:17:35.174Z"
    assert stored["b"]["revenue"] is None and "revenue" not in stored["b"]["properties"]
    assert "c" in stored  # null timestamp and user_properties left out: the server stamps it
    (row,) = read_ndjson(rejected)
    assert row["source"] == "dump.ndjson:4"
    assert row["message"].startswith(
        "events[0]: timestamp 'last tuesday' is not a time we can read (not a date and time;"
    )
    assert summary["records_read"] == summary["events_accepted"] + summary["rejected_rows"]


def test_without_the_options_nulls_and_export_times_are_set_aside(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [
        {"user_id": "u1", "event_name": "a", "timestamp": "2025-01-01 00:17:35.174+00"},
        {"user_id": "u1", "event_name": "b", "revenue": None},
    ]
    write_ndjson(tmp_path / "dump.ndjson", records)
    rejected = tmp_path / "rejected.ndjson"
    result, _ = cli_json(
        "send", "dump.ndjson", "--rejected", str(rejected), sb=sandbox, cwd=tmp_path
    )
    assert result.returncode == 1
    messages = [r["message"] for r in read_ndjson(rejected)]
    assert messages == [
        "events[0]: timestamp must be ISO 8601",
        "events[0]: revenue must be a number",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1602611311, "2020-10-14T00:48:31Z"),  # Mixpanel's project-time seconds, PDT (UTC-7)
        (1579082400, "2020-01-15T18:00:00Z"),  # in winter, PST (UTC-8)
        (1602611311123, "2020-10-14T00:48:31.123Z"),  # milliseconds too
        ("2020-01-15 10:00:00.25", "2020-01-15T18:00:00.25Z"),  # text without an offset
        ("2020-01-15 10:00:00+01:00", "2020-01-15T09:00:00Z"),  # an offset wins over the zone
        ("2020-01-15T10:00:00Z", "2020-01-15T10:00:00Z"),
    ],
)
def test_a_zone_is_the_wall_clock_of_times_written_without_one(
    value: object, expected: str
) -> None:
    assert normalize(value, zone="America/Los_Angeles") == expected


def test_a_zone_with_a_pattern() -> None:
    text = normalize("15/01/2020 10:00", pattern="%d/%m/%Y %H:%M", zone="Europe/Paris")
    assert text == "2020-01-15T09:00:00Z"
