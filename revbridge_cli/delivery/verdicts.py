"""What a server's answer says about each user of the request it answers. Pure: no I/O.

The API names the users it rejects by `userIndex` in `errors`, and a 202 counts them in
`users_rejected`. An answer that cannot be mapped back to users (errors missing while
`users_rejected` > 0, `errors` not a list, items that are not objects, an index that is out of
range, negative, a string, a boolean or a float, one named twice, fewer named than counted, a
body that is not JSON at all) must never read as "all accepted": the users the server did not
name may be the ones it refused. So every user whose verdict cannot be known is kept as a
`rejected` row saying the answer could not be mapped, with the server's own words and the
trace_id, and the run exits 1 (docs/contract.md, "Contract decisions").

The server's words are repeated on one line (`text.clean`): its body is already scrubbed of
the key by the exchange, but a message with a newline would break the summary's lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from revbridge_cli.text import clean

_SAID_CHARS = 300  # how much of the server's answer a message quotes


@dataclass(slots=True)
class Verdict:
    """`rejected` maps userIndex to the message for its row; `undelivered` says why none of
    the users has a verdict (the request was refused whole). `unmapped` is why some users
    are in `rejected` without the server naming them."""

    rejected: dict[int, str] = field(default_factory=dict)
    undelivered: str | None = None
    unmapped: str | None = None


def parse(content: bytes | None) -> dict[str, Any] | None:
    """The answer's JSON object, or None when the body is not one (or could not be read)."""
    if content is None:
        return None
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _said(data: dict[str, Any] | None, content: bytes | None) -> str:
    """The server's words, short: its counts and errors, or the start of a body that is no
    JSON object."""
    if data is None:
        text = (content or b"").decode("utf-8", "replace")  # repr: one line, escaped
        return repr(text[:_SAID_CHARS]) if text else "an empty body"
    words: dict[str, Any] = {
        k: data[k] for k in ("error", "users_accepted", "users_rejected") if k in data
    }
    words["errors"] = data.get("errors")
    text = clean(orjson.dumps(words, default=str).decode())
    return text if len(text) <= _SAID_CHARS else text[:_SAID_CHARS] + "…"


def read_errors(data: dict[str, Any], n_users: int) -> tuple[dict[int, str], list[str]]:
    """The users `errors` names, and what in it cannot be mapped (empty when all is well)."""
    errors = data.get("errors")
    if errors is None:
        return {}, []
    if not isinstance(errors, list):
        return {}, [f"errors is {_kind(errors)}, not a list"]
    named: dict[int, str] = {}
    problems: list[str] = []
    for item in errors:
        if not isinstance(item, dict):
            problems.append(f"an errors item is {_kind(item)}, not an object")
            continue
        index = item.get("userIndex")
        if type(index) is not int:  # a boolean is an int to Python, not to the API
            problems.append(f"userIndex {_short(index)} is not a whole number")
        elif not 0 <= index < n_users:
            problems.append(f"userIndex {index} is outside 0..{n_users - 1}")
        elif index in named:
            problems.append(f"userIndex {index} is named twice")
        else:
            message = item.get("message")
            named[index] = clean(message) if isinstance(message, str) and message else "rejected"
    return named, problems


def accepted(
    data: dict[str, Any] | None, content: bytes | None, n_users: int, unreadable: str | None = None
) -> Verdict:
    """A 202: valid users were stored; the others are named in `errors`, if it can be read."""
    if data is None:
        why = unreadable or "the body is not a JSON object"
        return _unmapped({}, [why], None, content, n_users, True)
    named, problems = read_errors(data, n_users)
    count = data.get("users_rejected")
    if type(count) is int and count > len(named):
        problems.append(f"users_rejected is {count} but {len(named)} named in errors")
    taken = data.get("users_accepted")
    if type(taken) is int and taken + len(named) < n_users and not problems:
        problems.append(f"users_accepted is {taken} of {n_users} with {len(named)} named")
    if problems:
        return _unmapped(named, problems, data, content, n_users, True)
    return Verdict(rejected=named)


def refused(
    data: dict[str, Any] | None, content: bytes | None, n_users: int, unreadable: str | None = None
) -> Verdict:
    """A 400: nothing was stored. With `errors` every user was invalid and is named there;
    without, the request as a whole was refused (malformed, wrong type, too many users)."""
    if data is None:
        why = unreadable or f"an answer that is not a JSON object: {_said(None, content)}"
        return Verdict(undelivered=f"the server refused the request (400), {why}")
    why = clean(str(data.get("error") or "bad request"))
    if "errors" not in data:
        return Verdict(undelivered=f"the server refused the request (400: {why})")
    named, problems = read_errors(data, n_users)
    if problems:
        return _unmapped(named, problems, data, content, n_users, False)
    whole = f"400 {why}: request refused as a whole"
    return Verdict(rejected={i: named.get(i, whole) for i in range(n_users)})


def _unmapped(
    named: dict[int, str],
    problems: list[str],
    data: dict[str, Any] | None,
    content: bytes | None,
    n_users: int,
    maybe_stored: bool,
) -> Verdict:
    why = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    fate = (
        "this user may have been stored or rejected: check before resending"
        if maybe_stored
        else "nothing of the request was stored"
    )
    message = (
        f"the server's answer could not be mapped to users ({why}): {fate}; "
        f"the server said {_said(data, content)}"
    )
    rejected = {i: named.get(i, message) for i in range(n_users)}
    return Verdict(rejected=rejected, unmapped=why)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 40 else text[:40] + "…"
