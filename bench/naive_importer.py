"""The importer a competent user writes from the vendor's documentation: the baseline to beat.

It follows the vendor's examples and nothing more: stdlib `json`, each flat record becomes one
user object with one event (the docs' "simple event" shape), 1,000 users per request (the
documented maximum), one request after the other over a keep-alive `httpx.Client`, and the
vendor's retry loop (503 and network errors, 1 s doubling to 60 s, five attempts). It is not
made slow on purpose; it simply does not group by user, pipeline, or send concurrently.

Usage: python bench/naive_importer.py FILE --base-url URL --api-key KEY --customer-id ID
       [--limit N]   (read only the first N events: the latency case extrapolates from it)
Prints one JSON line: {"events": ..., "users_accepted": ..., "requests": ..., "seconds": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

PRIMARY_IDENTIFIERS = ("user_id", "email", "phone_number", "anon_id")
BATCH_USERS = 1000
MAX_RETRIES = 5


def to_user(record: dict[str, Any]) -> dict[str, Any]:
    """A flat record as the API's user object: identifiers out, the rest is the event."""
    identifiers = {k: record[k] for k in PRIMARY_IDENTIFIERS if k in record}
    event = {k: v for k, v in record.items() if k not in PRIMARY_IDENTIFIERS}
    user: dict[str, Any] = {"identifiers": identifiers}
    if "user_properties" in event:
        user["user_properties"] = event.pop("user_properties")
    user["events"] = [event]
    return user


def send_with_retry(client: httpx.Client, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The vendor's `sendWithRetry`, line for line in Python."""
    for attempt in range(MAX_RETRIES):
        try:
            response = client.post(url, content=json.dumps(payload))
            if response.status_code == 503:
                time.sleep(min(2**attempt, 60))
                continue
            return response.json()
        except httpx.TransportError:
            if attempt == MAX_RETRIES - 1:
                raise
            time.sleep(min(2**attempt, 60))
    raise RuntimeError("gave up after 503s")


def main() -> None:
    parser = argparse.ArgumentParser(description="naive importer (benchmark baseline)")
    parser.add_argument("file")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--customer-id", required=True)
    parser.add_argument("--limit", type=int, default=None, help="stop after N events")
    args = parser.parse_args()

    url = args.base_url.rstrip("/") + "/ingest/events"
    headers = {
        "Authorization": f"Bearer {args.api_key}",
        "x-customer-id": args.customer_id,
        "Content-Type": "application/json",
    }
    started = time.monotonic()
    events = accepted = requests = 0
    batch: list[dict[str, Any]] = []
    with httpx.Client(headers=headers, timeout=30.0) as client, open(args.file) as f:

        def flush() -> None:
            nonlocal accepted, requests
            result = send_with_retry(client, url, {"users": batch})
            accepted += result.get("users_accepted", 0)
            requests += 1
            batch.clear()

        for line in f:
            if args.limit is not None and events >= args.limit:
                break
            if not line.strip():
                continue
            batch.append(to_user(json.loads(line)))
            events += 1
            if len(batch) == BATCH_USERS:
                flush()
        if batch:
            flush()
    seconds = time.monotonic() - started
    summary = {"events": events, "users_accepted": accepted, "requests": requests}
    sys.stdout.write(json.dumps({**summary, "seconds": round(seconds, 3)}) + "\n")


if __name__ == "__main__":
    main()
