"""`text`: the two rules for text the tool repeats from elsewhere (no key, one line). Pure."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from revbridge_cli.config.credentials import Secret
from revbridge_cli.text import (
    MIN_SECRET_CHARS,
    REDACTED,
    clean,
    clean_json,
    one_line,
    scrub,
    scrub_bytes,
)

KEY = "rbk_live_text_0123456789abcdef"
KEY_CHARS = string.ascii_letters + string.digits + string.punctuation  # a header's, no space


def test_one_line_escapes_newlines_and_control_bytes() -> None:
    assert one_line("a\nb\r\tc\x1b[2J\x00\x7f\u2028\u00a0é…") == (
        "a\\nb\\r\\tc\\x1b[2J\\x00\\x7f\\u2028\\xa0é…"
    )
    assert one_line("plain words: kept as they are") == "plain words: kept as they are"


@given(st.text())
def test_one_line_is_always_one_printable_line(text: str) -> None:
    out = one_line(text)
    assert out.isprintable()
    assert len(out.splitlines()) <= 1


def test_scrub_removes_the_key_and_the_bearer_header_form() -> None:
    said = f"got authorization: Bearer {KEY} and x-api-key={KEY}"
    assert scrub(said, [KEY]) == f"got authorization: Bearer {REDACTED} and x-api-key={REDACTED}"


def test_scrub_removes_the_forms_an_echo_gives_the_key() -> None:
    key = 'rbk_"odd\\key/+&='
    for form in ('rbk_\\"odd\\\\key/+&=', "rbk_%22odd%5Ckey%2F%2B%26%3D", key):
        assert key not in scrub(f"x{form}y", [key])
        assert scrub(f"x{form}y", [key]) == f"x{REDACTED}y"
    assert scrub_bytes(b'{"error": "rbk_\\"odd\\\\key/+&="}', [key]) == (
        b'{"error": "' + REDACTED.encode() + b'"}'
    )


def test_a_value_shorter_than_a_key_is_left_alone() -> None:
    short = "a" * (MIN_SECRET_CHARS - 1)
    assert scrub(f"banana {short}", [short]) == f"banana {short}"


@given(st.text(KEY_CHARS, min_size=MIN_SECRET_CHARS, max_size=40), st.text(), st.text())
def test_scrub_never_leaves_the_key(key: str, before: str, after: str) -> None:
    for text in (before + key + after, key + before + key, before + key[:3] + key + after):
        assert key not in scrub(text, [key])
        assert key.encode() not in scrub_bytes(text.encode("utf-8", "surrogatepass"), [key])


@given(st.text(KEY_CHARS, min_size=MIN_SECRET_CHARS, max_size=12))
def test_a_key_like_the_marker_is_not_formed_again(tail: str) -> None:
    key = "redacted]" + tail  # shares characters with the marker itself
    text = key + tail + key + tail
    assert key not in scrub(text, [key])


def test_a_secret_read_by_the_tool_is_scrubbed_everywhere_after() -> None:
    Secret("rbk_registered_by_reading_0042")
    assert "rbk_registered_by_reading_0042" not in clean("Bearer rbk_registered_by_reading_0042")


def test_clean_json_cleans_every_string_and_only_scrubs_paths() -> None:
    Secret(KEY)
    data = {
        "error": f"line\nwith {KEY}",
        "reasons": {f"because {KEY}\x1b": 2},
        "examples": [f"e.ndjson:1: {KEY}"],
        "rejected_file": "/tmp/odd\nname.ndjson",
        "count": 3,
    }
    assert clean_json(data) == {
        "error": f"line\\nwith {REDACTED}",
        "reasons": {f"because {REDACTED}\\x1b": 2},
        "examples": [f"e.ndjson:1: {REDACTED}"],
        "rejected_file": "/tmp/odd\nname.ndjson",
        "count": 3,
    }
