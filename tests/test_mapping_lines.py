"""Mappings without ambiguity, and every mapping error at the right line.

Two rules that fill one destination (`"identifiers.user_id"` beside `user_id`, `x` beside
`"properties.x"`, two `--rename` pairs for one field) would send a user's events under
whichever value was read last: refused when the mapping is read, naming both. Each kind of
mapping error names the line at fault, found from the document's structure (not the first
line that happens to mention the key). Plain `parse` for the table of error kinds; the real
command for what a user sees (`revbridge send --map`, `--rename`, `revbridge mapping show`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import cli, event, write_ndjson

from revbridge_cli.errors import ConfigError
from revbridge_cli.shape.mapfile import PRESETS, parse, preset_text, renames
from revbridge_cli.shape.toml_lines import key_lines

# Each document has its fault on the line marked `# <-`; the lines before it mention the same
# key names (`from`, `type`, `missing`, ...) so a search by name would find the wrong line.
ERRORS = {
    "unknown section": """
        [fields]
        user_id = "uid"
        [extras]  # <-
        a = 1
    """,
    "unknown options key": """
        [options]
        unmapped = "keep"
        colour = "blue"  # <-
    """,
    "unmapped value": """
        [fields]
        unmapped = "x"
        [options]
        unmapped = "sometimes"  # <-
    """,
    "timestamps value": """
        [fields]
        timestamps = "t"
        [options]
        timestamps = "loose"  # <-
    """,
    "drop_nulls value": """
        [options]
        drop_nulls = "yes"  # <-
    """,
    "json list": """
        [fields]
        json = "j"
        [options]
        json = 5  # <-
    """,
    "bad target": """
        [fields]
        user_id = "uid"
        "identifiers" = "x"  # <-
    """,
    "value is not an object": """
        [fields]
        user_id = "uid"
        "revenue.amount" = "x"  # <-
    """,
    "from and value": """
        [fields]
        user_id = { from = "uid" }
        event_name = { from = "e", value = "x" }  # <-
    """,
    "unknown field key": """
        [fields]
        user_id = { from = "uid", type = "string" }
        event_name = { from = "e", colour = 1 }  # <-
    """,
    "type value": """
        [fields]
        user_id = { from = "uid", type = "string" }
        revenue = { from = "r", type = "money" }  # <-
    """,
    "type value in its own table": """
        [fields.user_id]
        from = "uid"
        type = "string"

        [fields.revenue]
        from = "r"
        type = "money"  # <-
    """,
    "unit value": """
        [fields]
        timestamp = { from = "t", unit = "ms" }
        "properties.at" = { from = "a", unit = "fortnights" }  # <-
    """,
    "format type": """
        [fields]
        timestamp = { from = "t", format = "%Y" }
        "properties.at" = { from = "a", format = 5 }  # <-
    """,
    "zone value": """
        [fields]
        timestamp = { from = "t", zone = "UTC" }
        "properties.at" = { from = "a", zone = "Mars/Olympus" }  # <-
    """,
    "unit with another type": """
        [fields]
        timestamp = { from = "t", unit = "s" }
        "properties.at" = { from = "a", unit = "s", type = "number" }  # <-
    """,
    "unless_prefix type": """
        [fields]
        user_id = { from = "uid", unless_prefix = "$" }
        email = { from = "e", unless_prefix = 5 }  # <-
    """,
    "source name": """
        [fields]
        user_id = "uid"
        email = ["mail", "bad name"]  # <-
    """,
    "product without product": """
        [fields]
        revenue = { from = [{ product = ["p", "q"] }] }
        event_value = { from = [{ missing = { q = 1 } }] }  # <-
    """,
    "product of one": """
        [fields]
        revenue = { from = [{ product = ["p", "q"] }] }
        event_value = { from = [{ product = ["p"] }] }  # <-
    """,
    "missing not a factor": """
        [fields]
        revenue = { from = [{ product = ["p", "q"], missing = { q = 1 } }] }
        event_value = { from = [{ product = ["p", "q"], missing = { z = 1 } }] }  # <-
    """,
    "product type": """
        [fields]
        revenue = { from = [{ product = ["p", "q"] }], type = "number" }
        event_value = { from = [{ product = ["p", "q"] }], type = "boolean" }  # <-
    """,
    "merge target": """
        [merge]
        properties = "props"
        identifiers = "ids"  # <-
    """,
    "merge without from": """
        [merge]
        properties = { from = "props" }
        user_properties = { exclude = ["a"] }  # <-
    """,
    "merge type": """
        [merge]
        properties = { from = "props", type = "json" }
        user_properties = { from = "up", type = "xml" }  # <-
    """,
    "set_aside without message": """
        [[set_aside]]
        field = "a"
        in = [1]
        message = "first"

        [[set_aside]]  # <-
        field = "b"
        in = [2]
    """,
    "set_aside without in": """
        [[set_aside]]
        field = "a"
        in = [1]
        message = "first"

        [[set_aside]]  # <-
        field = "b"
        message = "second"
    """,
    "set_aside in not a list": """
        [[set_aside]]
        field = "a"
        in = [1]
        message = "first"

        [[set_aside]]
        field = "b"
        message = "second"
        in = 2  # <-
    """,
    "not valid TOML": """
        [fields]
        user_id = "uid"
        event_name =  # <-
    """,
    "nothing mapped, the rest dropped": """
        [fields]

        [options]
        unmapped = "drop"  # <-
    """,
    "two sources, one identifier": """
        [fields]
        "identifiers.user_id" = "uid"
        event_name = "e"
        user_id = "alt"  # <-
    """,
    "two sources, one property": """
        [fields]
        x = "a"
        "properties.x" = { from = "b" }  # <-
    """,
}


def _marked(text: str) -> tuple[str, int]:
    doc = textwrap.dedent(text).lstrip("\n")
    (line,) = [n for n, t in enumerate(doc.splitlines(), 1) if t.rstrip().endswith("# <-")]
    return doc, line


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_every_mapping_error_names_its_line(kind: str) -> None:
    doc, line = _marked(ERRORS[kind])
    with pytest.raises(ConfigError) as info:
        parse(doc, "m.toml")
    assert str(info.value).startswith(f"mapping m.toml:{line}: "), (kind, str(info.value))


def test_two_sources_for_one_destination_name_both_lines() -> None:
    doc, _ = _marked(ERRORS["two sources, one identifier"])
    with pytest.raises(ConfigError) as info:
        parse(doc, "m.toml")
    assert str(info.value) == (
        "mapping m.toml:4: 'user_id' and 'identifiers.user_id' (line 2) both map to "
        "identifiers.user_id: keep one (a list in `from` tries several sources in order)"
    )


def test_key_lines_follow_tables_dotted_keys_inline_tables_and_multiline_strings() -> None:
    doc = textwrap.dedent('''
        [options]
        unmapped = "keep"
        note = """
        from = "not a key"
        """
        [fields]
        "identifiers.user_id" = { from = "uid", type = "string" }
        email.from = "mail"
        [[set_aside]]
        field = "a"
        [[set_aside]]
        field = "b"
    ''').lstrip("\n")
    lines = key_lines(doc)
    assert lines[("options", "unmapped")] == 2
    assert ("options", "from") not in lines and ("from",) not in lines
    assert lines[("fields", "identifiers.user_id", "type")] == 7
    assert lines[("fields", "email", "from")] == 8
    assert lines[("set_aside", "1", "field")] == 12


def test_renames_for_one_destination_are_refused_and_one_over_a_mapping_replaces_it() -> None:
    with pytest.raises(ConfigError, match=r"'a=x' and --rename 'b=properties\.x' both map to"):
        renames(["a=x", "b=properties.x"])
    base = parse('[fields]\n"properties.x" = "old"\nuser_id = "uid"\n', "m.toml")
    merged = renames(["new=x"], base)
    assert [(r.target, r.sources) for r in merged.fields] == [
        ("identifiers.user_id", ("uid",)),
        ("x", ("new",)),
    ]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_maps_each_destination_once(name: str) -> None:
    parse(preset_text(name), f"preset {name}")  # the check runs on the shipped files too


# ---- through the command ----------------------------------------------------------------------


@pytest.mark.e2e
def test_send_refuses_an_ambiguous_mapping_before_reading_naming_both_lines(
    tmp_path: Path,
) -> None:
    doc, _ = _marked(ERRORS["two sources, one property"])
    (tmp_path / "m.toml").write_text(doc + '\n[options]\nunmapped = "keep"\n')
    write_ndjson(tmp_path / "in.ndjson", [event("u1", 1, a=1, b=2)])
    result = cli("send", "--dry-run", "--map", "m.toml", "in.ndjson", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "revbridge: error: mapping m.toml:3: 'properties.x' and 'x' (line 2) both map to "
        "properties.x: keep one (a list in `from` tries several sources in order)\n"
    )
    assert result.stdout == "" and not list(tmp_path.glob("rejected-*"))


@pytest.mark.e2e
def test_a_shown_preset_with_a_second_source_for_its_identifier_is_refused_at_that_line(
    tmp_path: Path,
) -> None:
    shown = cli("mapping", "show", "segment")
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    first = lines.index('"identifiers.user_id" = "userId"') + 1
    lines.insert(first, 'user_id = "customer_ref"')  # just after the preset's own rule
    (tmp_path / "mine.toml").write_text("\n".join(lines) + "\n")
    write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    result = cli("send", "--dry-run", "--map", "mine.toml", "in.ndjson", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"revbridge: error: mapping mine.toml:{first + 1}: 'user_id' and "
        f"'identifiers.user_id' (line {first}) both map to identifiers.user_id: keep one "
        "(a list in `from` tries several sources in order)\n"
    )


@pytest.mark.e2e
def test_send_refuses_two_renames_for_one_field(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", [{"uid": "a", "alt": "b", "event_name": "e"}])
    args = ("--rename", "uid=user_id", "--rename", "alt=identifiers.user_id")
    result = cli("send", "--dry-run", *args, "in.ndjson", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "revbridge: error: --rename 'uid=user_id' and --rename 'alt=identifiers.user_id' both "
        "map to identifiers.user_id: keep one\n"
    )
