"""What the fuzz suite shares: its Hypothesis profiles, seed records, byte mutations, and the
pure harness that reads a file through the real reader and shaper and checks the books.

Profiles (`HYPOTHESIS_PROFILE`): `ci` (the default) runs a bounded, fixed set of examples so
the whole suite stays under a minute on two cores and a failure reproduces; `long` searches at
random for as long as it is given (docs/bad-input.md says how to run it), and keeps what it
finds in `.hypothesis/` so the next run tries those first.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from revbridge_cli.errors import RevbridgeError
from revbridge_cli.input.reader import Reader
from revbridge_cli.shape.parts import Invalid, ShapeOptions, UserPart, shape

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=_QUIET
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),  # per test
    deadline=None,
    suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ---- seeds: valid records, with the values exports hold at their edges ------------------------

EXTREME_NUMBERS = [
    0, -1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), 1e308, -1e308, 5e-324,
    253402300800, -62135596801, 253402300800000, 253402300800000000, 10**19,
]  # fmt: skip
EXTREME_TIMES = [
    "0000-01-01 00:00:00", "0001-01-01 00:00:00+01:00", "9999-12-31 23:59:59-01:00",
    "10000-01-01T00:00:00Z", "2026-02-30 10:00:00", "2026-01-15T14:30:00Z",
    "2025-01-01 00:17:35.174+00", "1768487400", "-1", "9" * 40, "1" + "0" * 5000,
    "2026-01-15 14:30:00+99:99", "0001-01-01T00:00:00Z", "NaN", "Infinity",
]  # fmt: skip
TEXT_EDGES = ["", " ", "\ufeff", "\x00", "\u2028", "é", "\ud7ff", "a,b", 'say "hi"', "x\ny", "\t"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EXTREME_NUMBERS),
    st.text(max_size=20),
    st.sampled_from(TEXT_EDGES + EXTREME_TIMES),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
identifier = st.one_of(st.text(max_size=12), st.integers(), st.none(), st.sampled_from(TEXT_EDGES))


@st.composite
def flat_events(draw: st.DrawFn) -> dict[str, Any]:
    """A flat event as an export writes it, some of its fields swapped for other types."""
    record: dict[str, Any] = {
        "user_id": draw(identifier),
        "event_name": draw(st.one_of(st.just("purchase"), st.text(max_size=10), scalars)),
        "timestamp": draw(st.one_of(st.sampled_from(EXTREME_TIMES), scalars)),
    }
    if draw(st.booleans()):
        record["revenue"] = draw(st.one_of(st.sampled_from(EXTREME_NUMBERS), scalars))
    if draw(st.booleans()):
        record["email"] = draw(identifier)
    if draw(st.booleans()):
        record["user_properties"] = draw(json_values)
    extra = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    return {**extra, **record}


# ---- mutations of bytes ------------------------------------------------------------------------

INSERTS = [
    b'"', b"\n", b"\r\n", b",", b"\t", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"{", b"[",
    b"]", b"}", b"\\", b'\\ud800', b"NaN", b"-Infinity", b"1e999", b"\x1f\x8b", b"PAR1",
    b"[" * 300, b'"' + b"x" * 70_000, b"\xed\xa0\x80",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` flipped, cut, with bytes inserted or a span repeated: a few edits at random."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        where = draw(st.integers(min_value=0, max_value=len(out)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "insert_random", "dup", "drop"]))
        if op == "flip" and out:
            i = min(where, len(out) - 1)
            out[i] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "cut":
            del out[where:]
        elif op == "insert":
            out[where:where] = draw(st.sampled_from(INSERTS))
        elif op == "insert_random":
            out[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            out[where:where] = out[where : where + draw(st.integers(1, 64))]
        elif op == "drop":
            del out[where : where + draw(st.integers(1, 16))]
    return bytes(out)


def maybe_gzip(data: bytes, gz: bool) -> bytes:
    return gzip.compress(data, mtime=0) if gz else data


# ---- the pure harness: the real reader and shaper, and the books ------------------------------


@dataclass
class Books:
    read: int = 0
    shaped: int = 0
    set_aside: int = 0
    stopped: str | None = None  # the one-line InputError that ended the file, if any
    messages: list[str] = field(default_factory=list)


def one_line(message: str) -> bool:
    return bool(message) and not any(ord(c) < 32 or c == "\x7f" for c in message)


def read_and_shape(
    path: Path,
    fmt: str | None = None,
    options: ShapeOptions | None = None,
    text: bytes | None = None,
) -> Books:
    """Every record of `path` through `Reader` and `shape`, as the feed does, and the checks
    the suite stands on: nothing raises outside the hierarchy; a file that stops does so with
    a one-line error naming it; every record is shaped or set aside, never both nor neither;
    every set-aside has a one-line reason and a line; what is shaped orjson can write."""
    options = options or ShapeOptions(keep_rows=True)
    books = Books()
    # With the file's (decompressed) bytes: a record's end_offset is the byte just past its
    # line, what --state resumes from.
    ends = [i + 1 for i, b in enumerate(text or b"") if b == 10] + [len(text or b"")]
    reader = Reader(str(path), fmt)
    try:
        for raw in reader:
            books.read += 1
            assert raw.source == reader.source
            assert raw.line >= 1, raw
            if text is not None:
                assert raw.end_offset == ends[raw.line - 1], (raw.line, raw.end_offset)
            if raw.error is not None:
                assert raw.value is None
                assert one_line(raw.error), raw.error
                books.set_aside += 1
                books.messages.append(raw.error)
                continue
            items = shape(raw.value, (0, raw.line, raw.end_offset), options)
            assert items, raw
            bad = [i for i in items if isinstance(i, Invalid)]
            for item in bad:
                assert one_line(item.message), item.message
                books.messages.append(item.message)
            for item in items:
                if isinstance(item, UserPart):
                    # What the packer writes: each event, the identifiers, the properties.
                    for piece in (*item.events, item.identifiers, item.user_properties):
                        orjson.dumps(piece)
                    for e in item.events:
                        stamp = e.get("timestamp")
                        assert stamp is None or isinstance(stamp, str), stamp
            if bad:
                books.set_aside += 1
            else:
                books.shaped += 1
    except RevbridgeError as e:
        assert one_line(str(e)), str(e)
        assert str(e).startswith(reader.source), str(e)
        books.stopped = str(e)
    assert books.read == books.shaped + books.set_aside
    return books


def finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def ndjson_bytes(records: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)
