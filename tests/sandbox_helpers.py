"""Shared pieces of the sandbox tests: request bodies from the vendor's docs, and a poster."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from revbridge_cli.contract import PATH

# The suite's one test key (conftest and every sandbox use it): distinctive, so a leak is found.
API_KEY = "rbk_test_Zq9xW7vT3pL5mN8rK2jH"
CUSTOMER_ID = "cust_test"

# The request body of docs/contract.md ("Request body"), as the vendor documents it.
VENDOR_REQUEST: dict[str, Any] = {
    "users": [
        {
            "identifiers": {"user_id": "u1", "email": "a@example.com", "first_name": "Ada"},
            "user_properties": {"loyalty_tier": "gold"},
            "events": [
                {
                    "event_name": "purchase",
                    "timestamp": "2026-01-15T14:30:00Z",
                    "revenue": 49.99,
                    "event_value": 1,
                    "product_id": "sku-1",
                }
            ],
        }
    ]
}

# A request that earns the vendor's 202 example of limits-and-errors.txt: user 1 has no
# identifiers, user 2's first event has no event_name.
VENDOR_PARTIAL_REQUEST: dict[str, Any] = {
    "users": [
        VENDOR_REQUEST["users"][0],
        {"events": [{"event_name": "page_view"}]},
        {"identifiers": {"email": "b@example.com"}, "events": [{"revenue": 10}]},
    ]
}
VENDOR_PARTIAL_ERRORS = [
    {"userIndex": 1, "message": "identifiers is required"},
    {"userIndex": 2, "message": "events[0]: event_name is required"},
]


def valid_user(user_id: str = "u1", **extra: Any) -> dict[str, Any]:
    user: dict[str, Any] = {
        "identifiers": {"user_id": user_id},
        "events": [{"event_name": "purchase", "timestamp": "2026-01-15T14:30:00Z"}],
    }
    user.update(extra)
    return user


def auth_headers(
    api_key: str = API_KEY, customer_id: str = CUSTOMER_ID, content_type: str = "application/json"
) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "x-customer-id": customer_id,
        "Content-Type": content_type,
    }


def post(
    client: httpx.Client,
    body: Any,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Posts a Python value as JSON, or bytes as they are, with valid headers unless told."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(
        PATH, content=content, headers=auth_headers() if headers is None else headers, **kwargs
    )


def body_of_size(size: int) -> bytes:
    """A valid one-user body of exactly `size` bytes, padded in a custom event property."""
    template = {"users": [valid_user()]}
    template["users"][0]["events"][0]["pad"] = ""
    bare = len(orjson.dumps(template))
    template["users"][0]["events"][0]["pad"] = "x" * (size - bare)
    body = orjson.dumps(template)
    assert len(body) == size
    return body
