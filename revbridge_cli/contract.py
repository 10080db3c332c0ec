"""The RevBridge Events API contract as plain data and pure functions.

Both sides use this module: the importer checks every user before sending it, and the sandbox
server answers with exactly these rules and messages. Keeping them in one place is what makes
"the sandbox accepted it" mean "production will accept it". The rules restate
docs/contract.md (and the vendor text it summarises); the decisions this project took where the
vendor is silent are listed there, under "Contract decisions".
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Final, TypeGuard

import orjson

PATH: Final = "/ingest/events"
PRODUCTION_URL: Final = "https://api.revbridge.ai"
DEVELOPMENT_URL: Final = "https://api-dev.revbridge.ai"

MAX_USERS: Final = 1000
MAX_BODY_BYTES: Final = 10_000_000
SERVER_TIMEOUT_SECONDS: Final = 10.0  # "requests that run past 10 seconds are cut off"

PRIMARY_IDENTIFIERS: Final = ("user_id", "email", "phone_number", "anon_id")

# Per-user messages, verbatim from the vendor where it gives them.
IDENTIFIERS_REQUIRED: Final = "identifiers is required"
IDENTIFIER_REQUIRED: Final = (
    "at least one identifier is required (user_id, email, phone_number, or anon_id)"
)
USER_PROPERTIES_OBJECT: Final = "user_properties must be an object"
EVENTS_REQUIRED: Final = "events is required"
USER_NOT_OBJECT: Final = IDENTIFIERS_REQUIRED  # a user that is not an object has no identifiers

# Request-level errors (400 bodies `{"error": ..., "trace_id": ...}`).
ERR_CONTENT_TYPE: Final = "content type must be application/json"
ERR_MALFORMED: Final = "malformed JSON"
ERR_BODY_NOT_OBJECT: Final = "request body must be a JSON object"
ERR_USERS_REQUIRED: Final = "users is required"
ERR_USERS_EMPTY: Final = "users must not be empty"
ERR_TOO_MANY_USERS: Final = f"too many users: at most {MAX_USERS} per request"
ERR_VALIDATION_FAILED: Final = "validation failed"
ERR_UNAUTHORIZED: Final = "unauthorized"
ERR_METHOD: Final = "method not allowed"
ERR_TOO_LARGE: Final = "payload too large"
ERR_UNAVAILABLE: Final = "service temporarily unavailable"
ERR_NOT_FOUND: Final = "not found"

_ISO_8601 = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?",
    re.ASCII,
)


def is_number(value: Any) -> TypeGuard[int | float]:
    """JSON number only: `True` is an int to Python but a boolean to the API."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_iso8601(value: Any) -> bool:
    """The one timestamp shape the API takes; impossible dates (Feb 30) are refused too.

    The regex checks every field's range; only a day past the 28th needs the calendar. This
    runs once per event, so the common case is one regex match in C.
    """
    if type(value) is not str or _ISO_8601.fullmatch(value) is None:
        return False
    if value[8] == "3" or (value[8] == "2" and value[9] == "9"):  # indexing: cheaper than a slice
        try:
            date(int(value[:4]), int(value[5:7]), int(value[8:10]))
        except ValueError:
            return False
    return True


def has_primary_identifier(identifiers: dict[str, Any]) -> bool:
    """Present and non-empty: a non-empty string or a number (booleans and null do not count)."""
    return any(counts_as_identifier(identifiers.get(name)) for name in PRIMARY_IDENTIFIERS)


def counts_as_identifier(value: Any) -> bool:
    """The contract's "present, non-empty": a non-empty string or a number."""
    return (isinstance(value, str) and value != "") or is_number(value)


def identity_key(identifiers: dict[str, Any]) -> bytes:
    """Who a user is, for the importer (grouping records into one user object) and the
    sandbox (one profile): the four primary identifiers in contract order, as JSON text, each
    one that does not count as an identifier (absent, empty, boolean, null, an object) as
    null. One rule on both sides, so `{"user_id": "u1", "email": ""}` and `{"user_id": "u1"}`
    are one user to both. `1`, `1.0` and `"1"` stay three users (docs/contract.md, "Contract
    decisions"). The common case (strings or nothing) skips the per-value check."""
    values = [identifiers.get(name) for name in PRIMARY_IDENTIFIERS]
    if "" in values or not all(value is None or type(value) is str for value in values):
        values = [value if counts_as_identifier(value) else None for value in values]
    return orjson.dumps(values)


def event_error(event: Any, index: int) -> str | None:
    """First fault of one event, in the contract's order, or None."""
    prefix = f"events[{index}]: "
    if not isinstance(event, dict):
        return prefix + "event_name is required"
    name = event.get("event_name")
    if not isinstance(name, str) or not name:
        return prefix + "event_name is required"
    if "timestamp" in event and not is_iso8601(event["timestamp"]):
        return prefix + "timestamp must be ISO 8601"
    if "revenue" in event and not is_number(event["revenue"]):
        return prefix + "revenue must be a number"
    if "event_value" in event and not is_number(event["event_value"]):
        return prefix + "event_value must be a number"
    return None


def user_error(user: Any) -> str | None:
    """First fault of one user object, in the contract's order, or None if the API takes it."""
    if not isinstance(user, dict):
        return USER_NOT_OBJECT
    identifiers = user.get("identifiers")
    if not isinstance(identifiers, dict):
        return IDENTIFIERS_REQUIRED
    if not has_primary_identifier(identifiers):
        return IDENTIFIER_REQUIRED
    if "user_properties" in user and not isinstance(user["user_properties"], dict):
        return USER_PROPERTIES_OBJECT
    events = user.get("events")
    if not isinstance(events, list) or not events:
        return EVENTS_REQUIRED
    for index, event in enumerate(events):
        error = event_error(event, index)
        if error is not None:
            return error
    return None


def request_error(body: Any) -> str | None:
    """Faults of the request as a whole (a 400 with `{"error": ...}`), before any user is read."""
    if not isinstance(body, dict):
        return ERR_BODY_NOT_OBJECT
    users = body.get("users")
    if not isinstance(users, list):
        return ERR_USERS_REQUIRED
    if not users:
        return ERR_USERS_EMPTY
    if len(users) > MAX_USERS:
        return ERR_TOO_MANY_USERS
    return None


def user_errors(users: list[Any]) -> list[dict[str, Any]]:
    """The `errors` array of a response: one entry per invalid user, in `userIndex` order."""
    errors = []
    for index, user in enumerate(users):
        message = user_error(user)
        if message is not None:
            errors.append({"userIndex": index, "message": message})
    return errors


def is_json_content_type(value: str | None) -> bool:
    """`application/json`, with or without parameters such as `; charset=utf-8`."""
    if not value:
        return False
    return value.split(";", 1)[0].strip().lower() == "application/json"
