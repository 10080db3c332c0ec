"""Presets, mapping files and --rename, end to end: vendors' documented export shapes
(tests/data/presets/) through the real CLI to the sandbox, and what is set aside, and why."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import cli, cli_json, read_ndjson, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs the real command

DATA = Path(__file__).resolve().parent / "data" / "presets"


def send(sb: Sandbox, tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any], list]:
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json("send", *args, "--rejected", str(rejected), sb=sb, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    rows = read_ndjson(rejected) if rejected.exists() else []
    # the books balance: every record read was accepted, carried on one that was (a profile
    # update), or is a row of the rejected file
    carried = summary["profile_updates_carried"]
    assert summary["records_read"] == summary["events_accepted"] + carried + len(rows), summary
    assert summary["unaccounted_profile_updates"] == 0, summary
    return result, summary, rows


def stored(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {e["event_name"]: e for e in sb.events()}


def profile(sb: Sandbox, *key: str | None) -> dict[str, Any]:
    return sb.profiles()[orjson.dumps(list(key)).decode()]["user_properties"]  # type: ignore[no-any-return]


def test_preset_segment(sandbox: Sandbox, tmp_path: Path) -> None:
    result, _summary, rows = send(
        sandbox, tmp_path, "--preset", "segment", str(DATA / "segment.ndjson")
    )
    assert result.returncode == 1, result.stderr
    events = stored(sandbox)
    clicked = events["Course Clicked"]
    assert clicked["identifiers"] == {"user_id": "u1", "anon_id": "a1", "email": "u1@example.com"}
    assert clicked["timestamp"] == "2015-12-12T19:11:01.249Z" and clicked["revenue"] == 9.99
    assert clicked["properties"] == {"title": "Intro", "currency": "USD", "message_id": "m1"}
    order = events["Order Completed"]  # null userId, epoch ms, "49.99" revenue
    assert order["identifiers"] == {"anon_id": "a2"}
    assert order["timestamp"] == "2015-12-13T09:46:40Z" and order["revenue"] == 49.99
    page = events["page"]
    assert page["timestamp"] == "2015-12-12T18:12:00Z"
    assert page["properties"]["page_name"] == "Home" and page["properties"]["url"]
    assert events["screen"]["timestamp"] == "2015-12-12T19:13:00.5Z"
    signup = events["Newsletter Signup"]  # the spec's reserved "value" is the event's value
    assert signup["event_value"] == 5 and signup["properties"] == {
        "list": "weekly",
        "message_id": "m7",
    }
    # traits are the profile; the email is the identifier, not repeated as a property
    assert profile(sandbox, "u1", "u1@example.com", None, "a1") == {"plan": "pro"}
    # the identify call (line 5) is a profile update, carried on u1's events
    assert _summary["profile_updates_carried"] == 1 and _summary["profile_updates_held"] == 0
    assert [(r["source"].rsplit(":", 1)[1], r["user"]) for r in rows] == [("6", None)]
    assert rows[0]["message"].startswith("at least one identifier is required")
    assert "none of userId, anonymousId" in rows[0]["message"]


def test_preset_amplitude_reads_its_gzipped_export(sandbox: Sandbox, tmp_path: Path) -> None:
    path = str(DATA / "amplitude.json.gz")
    result, _summary, rows = send(sandbox, tmp_path, "--preset", "amplitude", path)
    assert result.returncode == 1, result.stderr
    events = stored(sandbox)
    purchase = events["Purchase"]
    assert purchase["identifiers"] == {"user_id": "u1", "anon_id": "D1"}
    assert purchase["timestamp"] == "2023-10-15T14:30:00.123456Z"
    assert purchase["revenue"] == 49.99
    assert purchase["properties"] == {
        "sku": "sku-1",
        "insert_id": "ins-1",
        "amplitude_id": 123,
        "platform": "Web",
        "country": "France",
    }
    assert events["Viewed Home"]["identifiers"] == {"anon_id": "D2"}
    assert events["Refund"]["revenue"] == -10  # the top-level revenue when $revenue is absent
    assert profile(sandbox, "u1", None, None, "D1") == {"plan": "basic"}  # last write wins
    (row,) = rows
    assert row["message"].startswith(
        "events[0]: timestamp '15/10/2023' is not a time we can read (not a date and time;"
    )


def test_preset_amplitude_revenue_from_price_and_quantity(sandbox: Sandbox, tmp_path: Path) -> None:
    """Amplitude computes revenue as $price x $quantity when $revenue is absent, a missing
    $quantity counting as 1 (amplitude.com/docs/data/sources/instrument-track-revenue)."""
    path = str(DATA / "amplitude-revenue.json.gz")
    result, summary, rows = send(sandbox, tmp_path, "--preset", "amplitude", path)
    assert result.returncode == 1, result.stderr
    assert summary["unaccounted_events"] == 0
    events = stored(sandbox)
    three = events["Bought Three"]  # 9.99 x 3, in decimal: not 29.970000000000002
    assert three["revenue"] == 29.97
    assert three["properties"] == {
        "$price": 9.99,
        "$quantity": 3,
        "$productId": "sku-9",
        "insert_id": "ins-10",
        "amplitude_id": 200,
    }
    assert events["Bought One"]["revenue"] == 4.5  # "4.50" with no $quantity: 1
    assert events["Bundle"]["revenue"] == 50  # $revenue wins over $price x $quantity
    assert events["Bundle"]["timestamp"] == "2023-10-16T09:02:00.250000Z"  # ISO 8601 with a T
    assert events["Refunded Two"]["revenue"] == -10  # negative prices are valid
    assert events["No Price"]["revenue"] is None  # a $quantity alone is no revenue
    assert events["No Price"]["properties"]["$quantity"] == 4
    (row,) = rows
    assert row["source"].endswith("amplitude-revenue.json.gz:5") and row["user"] is None
    assert (
        row["message"] == "events[0]: revenue 'free' is not a number (from event_properties.$price)"
    )
    assert row["row"]["event_properties"] == {"$price": "free", "$quantity": 1}
    assert "Traceback" not in result.stderr


def test_preset_mixpanel(sandbox: Sandbox, tmp_path: Path) -> None:
    result, _, rows = send(sandbox, tmp_path, "--preset", "mixpanel", str(DATA / "mixpanel.ndjson"))
    assert result.returncode == 1, result.stderr
    events = stored(sandbox)
    signed = events["Signed Up"]
    assert signed["identifiers"] == {"user_id": "u1"}
    assert signed["timestamp"] == "2020-10-13T17:48:31Z"
    # mp_*, $mp_*, $import and $insert_id gone; the country (from the IP) is the user's
    assert signed["properties"] == {"plan": "pro", "$os": "Mac OS X", "mp_country_code": "US"}
    viewed = events["Viewed Page"]  # a $device: distinct_id is no user id
    assert viewed["identifiers"] == {"anon_id": "d-42"}
    assert viewed["timestamp"] == "2020-10-13T17:50:00.123Z"  # milliseconds
    assert viewed["properties"] == {"page": "/pricing"}
    assert events["Purchased"]["identifiers"] == {"user_id": "u1", "anon_id": "d-42"}
    assert events["Before Login"]["identifiers"] == {"anon_id": "anon-88"}
    assert events["Before Login"]["properties"] == {}
    (row,) = rows
    assert row["message"].startswith("at least one identifier is required")


def test_preset_mixpanel_copied_with_the_project_time_zone(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Mixpanel's older raw exports wrote epoch seconds in the project's time zone: the preset,
    copied with `zone` on its timestamp, sends the UTC moment."""
    shown = cli("mapping", "show", "mixpanel").stdout
    line = 'timestamp = "properties.time"\n'
    assert line in shown
    zoned = 'timestamp = { from = "properties.time", zone = "America/Los_Angeles" }\n'
    (tmp_path / "mine.toml").write_text(shown.replace(line, zoned))
    result, summary, _rows = send(
        sandbox, tmp_path, "--map", "mine.toml", str(DATA / "mixpanel.ndjson")
    )
    assert result.returncode == 1, result.stderr  # the Orphan, as with the preset
    assert summary["unaccounted_events"] == 0
    events = stored(sandbox)
    assert events["Signed Up"]["timestamp"] == "2020-10-14T00:48:31Z"  # 17:48:31 PDT
    assert events["Viewed Page"]["timestamp"] == "2020-10-14T00:50:00.123Z"


def _posthog_parquet(path: Path) -> Path:
    """PostHog's Parquet batch export: `properties` as JSON text, `timestamp` a µs TIMESTAMP."""
    schema = pa.schema(
        [
            ("uuid", pa.string()),
            ("event", pa.string()),
            ("distinct_id", pa.string()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("properties", pa.string()),
        ]
    )
    rows = [
        {
            "uuid": "0189-p",
            "event": "clicked",
            "distinct_id": "u3",
            "timestamp": dt.datetime(2024, 1, 2, 8, 0, 0, 5, tzinfo=dt.UTC),
            "properties": '{"$set": {"plan": "team"}, "button": "buy"}',
        }
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_preset_posthog_json_lines_and_parquet(sandbox: Sandbox, tmp_path: Path) -> None:
    parquet = str(_posthog_parquet(tmp_path / "posthog.parquet"))
    args = ("--preset", "posthog", str(DATA / "posthog.ndjson"), parquet)
    result, _, rows = send(sandbox, tmp_path, *args)
    assert result.returncode == 1, result.stderr
    events = stored(sandbox)
    view = events["$pageview"]
    assert view["identifiers"] == {"user_id": "u1", "anon_id": "d1"}
    assert view["timestamp"] == "2024-01-01T12:00:00Z"
    assert view["properties"] == {"$current_url": "https://example.com/", "uuid": "0188-a"}
    # $set_once is kept too, below any other value of its key (docs/profiles.md)
    assert profile(sandbox, "u1", None, None, "d1") == {"plan": "pro", "first_seen": "2024-01-01"}
    signed = events["signed_up"]  # properties as JSON text
    assert signed["identifiers"] == {"user_id": "u2", "anon_id": "d2"}
    assert signed["timestamp"] == "2024-01-01T12:05:00.250Z"
    assert events["clicked"]["timestamp"] == "2024-01-02T08:00:00.000005Z"
    assert events["clicked"]["properties"] == {"button": "buy", "uuid": "0189-p"}
    assert profile(sandbox, "u3", None, None, None) == {"plan": "team"}
    (row,) = rows
    assert row["source"].endswith("posthog.ndjson:3")


def test_preset_ga4_flattens_params(sandbox: Sandbox, tmp_path: Path) -> None:
    result, _, rows = send(sandbox, tmp_path, "--preset", "ga4", str(DATA / "ga4.ndjson"))
    assert result.returncode == 1, result.stderr
    events = stored(sandbox)
    purchase = events["purchase"]
    assert purchase["identifiers"] == {"user_id": "u1", "anon_id": "p1"}
    assert purchase["timestamp"] == "2024-01-01T10:00:00.123456Z"
    assert purchase["revenue"] == 49.99  # purchase_revenue_in_usd: every revenue in USD
    assert purchase["properties"] == {
        "page_location": "/checkout",
        "value": 49.99,
        "items": 3,
        "currency": "EUR",
        "purchase_revenue": 45.5,  # in the event's currency
        "platform": "WEB",
        "country": "FR",
        "device_category": "desktop",
    }
    assert profile(sandbox, "u1", None, None, "p1") == {"plan": "pro"}
    view = events["page_view"]  # event_timestamp as BigQuery's JSON writes INT64: text
    assert view["timestamp"] == "2024-01-01T10:01:00Z"
    assert view["properties"]["engagement_time_msec"] == 1200
    assert view["revenue"] == 1.5  # no ecommerce: event_value_in_usd
    (row,) = rows
    assert "none of user_id, user_pseudo_id has a value (preset ga4)" in row["message"]


@pytest.mark.parametrize("name", ["segment", "amplitude", "mixpanel", "posthog", "ga4"])
def test_mapping_show_prints_a_preset_that_map_reads_back(
    sandbox: Sandbox, tmp_path: Path, name: str
) -> None:
    shown = cli("mapping", "show", name)
    assert shown.returncode == 0 and shown.stdout.startswith("# ")
    (tmp_path / "mine.toml").write_text(shown.stdout)
    data = str(next(DATA.glob(f"{name}.*")))
    _, by_preset = cli_json("send", "--dry-run", "--preset", name, data, cwd=tmp_path, sb=sandbox)
    _, by_file = cli_json("send", "--dry-run", "--map", "mine.toml", data, cwd=tmp_path, sb=sandbox)
    assert by_preset["events_sent"] == by_file["events_sent"] > 0  # bytes: split by lanes
    assert by_preset["reasons"] == by_file["reasons"]


def test_mapping_show_an_unknown_preset() -> None:
    result = cli("mapping", "show", "heap")
    assert result.returncode == 2
    assert result.stderr == (
        "revbridge: error: no preset 'heap': the presets are segment, amplitude, mixpanel, "
        "posthog, ga4\n"
    )


MAPPING = """\
# a warehouse table of orders
[options]
unmapped = "drop"
timestamps = "lenient"

[fields]
"identifiers.user_id" = "customer_ref"
"identifiers.email" = "contact.email"
"identifiers.first_name" = "contact.first"
event_name = { value = "order_placed" }
timestamp = { from = "placed", format = "%d/%m/%Y %H:%M" }
revenue = "total"
"user_properties.vip" = { from = "vip", type = "boolean" }
"properties.zip" = { from = "zip", type = "string" }
"properties.items" = { from = "items", type = "json" }
"properties.qty" = { from = "qty", type = "integer" }
"""


def test_a_mapping_file_types_and_places_every_field(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "orders.toml").write_text(MAPPING)
    (tmp_path / "orders.csv").write_text(
        "customer_ref,contact.email,contact.first,placed,total,vip,zip,items,qty,internal\n"
        'c1,ada@example.com,Ada,15/01/2026 14:30,49.99,yes,02134,"[1, 2]",2,x\n'
        "c2,,,16/01/2026 09:00,abc,no,75001,[],1,y\n"
    )
    result, _summary, rows = send(sandbox, tmp_path, "--map", "orders.toml", "orders.csv")
    assert result.returncode == 1, result.stderr
    (order,) = sandbox.events()
    assert order["identifiers"] == {
        "user_id": "c1",
        "email": "ada@example.com",
        "first_name": "Ada",
    }
    assert order["event_name"] == "order_placed" and order["revenue"] == 49.99
    assert order["timestamp"] == "2026-01-15T14:30:00Z"
    assert order["properties"] == {"zip": "02134", "items": [1, 2], "qty": 2}  # internal: dropped
    assert profile(sandbox, "c1", "ada@example.com", None, None) == {"vip": True}
    (row,) = rows
    assert row["source"] == "orders.csv:3" and row["user"] is None
    assert row["message"] == "events[0]: revenue 'abc' is not a number"
    assert row["row"]["customer_ref"] == "c2"  # the CSV row as an object


def test_a_mapping_computes_a_product(sandbox: Sandbox, tmp_path: Path) -> None:
    """A user's own mapping can use `product` as a preset does: for revenue or any number."""
    (tmp_path / "lines.toml").write_text(
        '[options]\nunmapped = "drop"\n[fields]\n"identifiers.user_id" = "customer"\n'
        'event_name = { value = "order_line" }\n'
        'revenue = { from = ["total", { product = ["unit_price", "qty"] }] }\n'
        '"properties.weight" = { from = [{ product = ["unit_kg", "qty"], '
        'missing = { unit_kg = 0 } }], type = "integer" }\n'
    )
    (tmp_path / "lines.csv").write_text(
        "customer,total,unit_price,qty,unit_kg\n"
        "c1,,2.10,3,2\n"  # 2.10 x 3 (text cells are read as numbers)
        "c2,12,5,3,\n"  # total wins; no unit_kg: weight 0 x 3
        "c3,,,3,1\n"  # no unit_price: no revenue (qty has no `missing`)
        "c4,,2.5,x,1\n"  # a factor that is not a number: set aside
    )
    result, summary, rows = send(sandbox, tmp_path, "--map", "lines.toml", "lines.csv")
    assert result.returncode == 1, result.stderr
    assert summary["unaccounted_events"] == 0
    by_user = {e["identifiers"]["user_id"]: e for e in sandbox.events()}
    assert by_user["c1"]["revenue"] == 6.3 and by_user["c1"]["properties"] == {"weight": 6}
    assert by_user["c2"]["revenue"] == 12 and by_user["c2"]["properties"] == {"weight": 0}
    assert by_user["c3"]["revenue"] is None and by_user["c3"]["properties"] == {"weight": 3}
    (row,) = rows
    assert row["source"] == "lines.csv:5"
    assert row["message"] == "events[0]: revenue 'x' is not a number (from qty)"


BAD_MAPPINGS = [
    (
        '[fields]\nevent_name = "event"\n"identifiers.user_id" = { frm = "u" }\n',
        3,
        "unknown key 'frm'",
    ),
    ('[fields]\nrevenue = { from = "x", type = "money" }\n', 2, "type must be one of"),
    (
        '[options]\nunmapped = "keep"\ntimestamps = "loose"\n',
        3,
        "timestamps must be strict or lenient",
    ),
    ("[fields]\nevent_name = \n", 2, "not valid TOML: Invalid value (column 14)"),
    ('[field]\nevent_name = "e"\n', 1, "unknown section 'field'"),
    ('[fields]\n"user_properties" = "traits"\n', 2, "needs a field name after it"),
    ('[merge]\nevents = "x"\n', 2, "only properties and user_properties take objects"),
    ('[fields]\nevent_name = "e"\nrevenue = { from = [{ product = ["p"] }] }\n', 3,
     "a product needs at least two fields"),
    ('[fields]\nevent_name = "e"\n'
     'revenue = { from = [{ product = ["p", "q"], missing = { r = 1 } }] }\n',
     3, "missing names 'r', not a factor"),
    ('[fields]\nevent_name = "e"\n'
     '"properties.x" = { from = [{ product = ["p", "q"] }], type = "boolean" }\n',
     3, "a product is a number"),
    ('[fields]\nevent_name = "e"\nrevenue = { from = [{ times = ["p", "q"] }] }\n', 3,
     "unknown key 'times'"),
    ('[fields]\nevent_name = "e"\ntimestamp = { from = "t", zone = "Mars/Olympus" }\n', 3,
     "zone must be an IANA time zone such as 'America/Los_Angeles', not 'Mars/Olympus'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "message"), BAD_MAPPINGS)
def test_a_bad_mapping_file_is_exit_2_with_the_line_at_fault(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    (tmp_path / "m.toml").write_text(text)
    write_ndjson(tmp_path / "in.ndjson", [{"u": "1", "event": "e"}])
    result = cli("validate", "--map", "m.toml", "in.ndjson", cwd=tmp_path)
    assert result.returncode == 2
    where = f"m.toml:{line}" if line else "m.toml"
    assert result.stderr.startswith(f"revbridge: error: mapping {where}: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_rename_uses_source_fields_and_keeps_the_rest(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [
        {"userId": "u1", "event": "signup", "timestamp": "2026-01-15T14:30:00Z", "plan": "pro"},
        {"userId": "u2", "email": "b@example.com", "event": "login", "amount": "12.5"},
    ]
    write_ndjson(tmp_path / "in.ndjson", records)
    args = (
        "--rename",
        "userId=user_id",
        "--rename",
        "event=event_name",
        "--rename",
        "amount=revenue",
    )
    result, summary, _rows = send(sandbox, tmp_path, *args, "in.ndjson")
    assert result.returncode == 0, result.stderr
    events = stored(sandbox)
    assert events["signup"]["identifiers"] == {"user_id": "u1"}
    assert events["signup"]["properties"] == {"plan": "pro"}  # unmapped: kept
    assert events["login"]["identifiers"] == {"user_id": "u2", "email": "b@example.com"}
    assert events["login"]["revenue"] == 12.5
    assert summary["notices"] == []  # userId is used: no near-miss warning


def test_rename_with_unmapped_drop(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", [{"uid": "u1", "event_name": "a", "junk": 1}])
    args = ("--rename", "uid=user_id", "--rename", "event_name=event_name", "--unmapped", "drop")
    result, _, _ = send(sandbox, tmp_path, *args, "in.ndjson")
    assert result.returncode == 0, result.stderr
    assert stored(sandbox)["a"]["properties"] == {}


def test_bad_rename_and_conflicting_options_are_exit_2(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", [{"u": 1}])
    for args, message in [
        (("--rename", "userId"), "--rename 'userId': expected SOURCE=TARGET"),
        (("--preset", "segment", "--map", "x.toml"), "--map and --preset cannot be combined"),
        (("--preset", "heap"), "no preset 'heap'"),
        (("--map", "missing.toml"), "--map missing.toml: cannot read: No such file"),
        (("--unmapped", "drop"), "--unmapped needs a mapping"),
    ]:
        result = cli("validate", *args, "in.ndjson", cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"revbridge: error: {message}"), result.stderr


def test_the_fix_loop_goes_through_the_same_mapping(sandbox: Sandbox, tmp_path: Path) -> None:
    shutil.copy(DATA / "mixpanel.ndjson", tmp_path / "mp.ndjson")
    result, _, rows = send(sandbox, tmp_path, "--preset", "mixpanel", "mp.ndjson")
    assert result.returncode == 1
    (row,) = rows
    assert row["source"] == "mp.ndjson:4" and row["row"]["event"] == "Orphan"
    row["row"]["properties"]["$device_id"] = "d-77"  # the fix, in the source's own shape
    write_ndjson(tmp_path / "fixed.ndjson", [row])
    fixed_rejected = tmp_path / "again.ndjson"
    args = ("send", "--preset", "mixpanel", "fixed.ndjson", "--rejected", str(fixed_rejected))
    again, summary = cli_json(*args, sb=sandbox, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert summary["events_accepted"] == 1 and not fixed_rejected.exists()
    orphan = stored(sandbox)["Orphan"]
    assert orphan["identifiers"] == {"anon_id": "d-77"}
    assert orphan["timestamp"] == "2020-10-13T17:53:20Z"


def test_validate_show_prints_records_as_they_would_be_sent(tmp_path: Path) -> None:
    data = str(DATA / "segment.ndjson")
    args = ("validate", "--preset", "segment", "--show", "2", "--drop-nulls", data)
    result = cli(*args, "--rejected", str(tmp_path / "r.ndjson"), cwd=tmp_path)
    assert result.returncode == 1  # the identify call and the anonymous track are invalid
    first, second = (orjson.loads(line) for line in result.stdout.splitlines())
    assert first["source"] == f"{data}:1"
    assert first["user"]["identifiers"] == {
        "user_id": "u1",
        "anon_id": "a1",
        "email": "u1@example.com",
    }
    assert second["user"]["events"][0]["timestamp"] == "2015-12-13T09:46:40Z"
    assert second["user"]["events"][0]["revenue"] == 49.99
    shown = cli("validate", "--show", "1", "--preset", "segment", data, "-q", "--rejected",
                str(tmp_path / "r2.ndjson"), cwd=tmp_path)  # fmt: skip
    assert len(shown.stdout.splitlines()) == 1
    last = cli("validate", "--show", "9", "--preset", "segment", data, "-q", "--rejected",
               str(tmp_path / "r3.ndjson"), cwd=tmp_path)  # fmt: skip
    lines = [orjson.loads(line) for line in last.stdout.splitlines()]
    assert len(lines) == 7 and lines[4]["profile_update"]["user_properties"] == {"plan": "pro"}


def test_the_fix_loop_for_csv_and_parquet_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("uid,what,amount\nu1,buy,12\nu2,buy,twelve\n")
    table = pa.table({"uid": ["u3", None], "what": ["view", "view"], "amount": [1.0, 2.0]})
    pq.write_table(table, tmp_path / "b.parquet")
    renames = (
        "--rename",
        "uid=user_id",
        "--rename",
        "what=event_name",
        "--rename",
        "amount=revenue",
    )
    result, _, rows = send(sandbox, tmp_path, *renames, "a.csv", "b.parquet")
    assert result.returncode == 1
    assert [(r["source"], r["user"], r["row"]) for r in rows] == [
        ("a.csv:3", None, {"uid": "u2", "what": "buy", "amount": "twelve"}),
        ("b.parquet:2", None, {"what": "view", "amount": 2.0}),  # the null uid is absent
    ]
    rows[0]["row"]["amount"] = "12.5"
    rows[1]["row"]["uid"] = "u4"
    write_ndjson(tmp_path / "fixed.ndjson", rows)
    again = tmp_path / "again.ndjson"
    args = ("send", *renames, "fixed.ndjson", "--rejected", str(again))
    result, summary = cli_json(*args, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 2 and not again.exists()
    revenue = {e["identifiers"]["user_id"]: e["revenue"] for e in sandbox.events()}
    assert revenue == {"u1": 12, "u3": 1.0, "u2": 12.5, "u4": 2.0}
