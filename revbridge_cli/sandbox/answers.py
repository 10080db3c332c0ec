"""What the sandbox answers to a request body it has read: the contract's verdict, pure.

Apart from the HTTP handler, which only decides when this runs and injects the faults that
are about timing and the wire; everything here is a function of the body and the policy.
"""

from __future__ import annotations

from typing import Any

import orjson

from revbridge_cli.contract import (
    ERR_CONTENT_TYPE,
    ERR_MALFORMED,
    ERR_VALIDATION_FAILED,
    is_json_content_type,
    request_error,
    user_errors,
)
from revbridge_cli.sandbox.faults import REJECTED_USER_MESSAGE, Faults
from revbridge_cli.sandbox.store import Batch, RequestRecord, build_batch


def judge(
    body: bytes,
    content_type: str | None,
    trace_id: str,
    faults: Faults,
    received_at: str | None,
) -> tuple[int, dict[str, Any], RequestRecord, Batch | None]:
    """Content type, JSON, request shape, then users: the contract's order of 400s. With
    `received_at` (storing), a 202 comes with the rows to store."""
    record = RequestRecord(trace_id, 400, len(body), 0.0, "")
    if not is_json_content_type(content_type):
        return 400, {"error": ERR_CONTENT_TYPE, "trace_id": trace_id}, record, None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 400, {"error": ERR_MALFORMED, "trace_id": trace_id}, record, None
    error = request_error(document)
    if error is not None:
        return 400, {"error": error, "trace_id": trace_id}, record, None
    users: list[Any] = document["users"]
    errors = user_errors(users)
    if faults.reject_user_ids:
        errors = _reject_listed(users, errors, faults.reject_user_ids)
    record.users_rejected = len(errors)
    if len(errors) == len(users):
        payload: dict[str, Any] = {
            "error": ERR_VALIDATION_FAILED,
            "trace_id": trace_id,
            "errors": errors,
        }
        return 400, payload, record, None
    rejected = {error["userIndex"] for error in errors}
    valid = [user for index, user in enumerate(users) if index not in rejected]
    record.status = 202
    record.users_accepted = len(valid)
    record.events_accepted = sum(len(user["events"]) for user in valid)
    batch = build_batch(valid, trace_id, received_at) if received_at is not None else None
    payload = {
        "trace_id": trace_id,
        "users_accepted": len(valid),
        "users_rejected": len(errors),
        "errors": errors,
    }
    return 202, payload, record, batch


def _reject_listed(
    users: list[Any], errors: list[dict[str, Any]], user_ids: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The `reject_user_ids` fault: those users get a rejection the contract does not give."""
    by_index = {error["userIndex"]: error for error in errors}
    for index, user in enumerate(users):
        identifiers = user.get("identifiers") if isinstance(user, dict) else None
        if isinstance(identifiers, dict) and identifiers.get("user_id") in user_ids:
            by_index.setdefault(index, {"userIndex": index, "message": REJECTED_USER_MESSAGE})
    return [by_index[index] for index in sorted(by_index)]
