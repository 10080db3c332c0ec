"""`revbridge check` and `send --check-only`: prove the key, the customer id and the server
before a long run, with one request that stores nothing.

The request is `POST {base}/ingest/events` with send's own headers and the body
`{"users": []}`. The API checks the credentials first (401 for a wrong key, a missing or wrong
customer id, a key of another customer), then the body, which it refuses with a 400 in its
error shape, `{"error": ..., "trace_id": ...}`: so that 400 proves the key and the customer id
are good and that the URL is the API's, and nothing reaches the customer's data (no user, no
event, no profile; only the server's request log has it, under the `trace_id` printed). The
reference gives no exact words for that 400 (the sandbox says "users must not be empty", a
server was seen saying "users must hold 1 to 1000 users"): any wording passes, and the check
prints what the server said.

Verdicts: 0 the credentials work; 3 the server refused them; 2 the server cannot be reached,
or what answers is not the Events API (a 404, a 405, an answer that is not the API's JSON). A
503 (or 429, 502, 504) is retried with send's own policy, since it says nothing about the
key; a refused connection or a timeout is not: a check is for a quick answer, and
`--timeout` bounds each attempt.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import httpx
import orjson

from revbridge_cli import __version__, contract
from revbridge_cli.config.credentials import Secret
from revbridge_cli.config.retry import RetryPolicy
from revbridge_cli.delivery.permanent import permanent_failure
from revbridge_cli.errors import Exit
from revbridge_cli.text import clean, clean_json

BODY = b'{"users":[]}'
SCHEMA_VERSION = 1  # of the --json verdict


@dataclass(frozen=True)
class Verdict:
    """What the check found; `to_json` is the `--json` form."""

    exit_code: Exit
    message: str
    url: str
    status: int | None = None
    trace_id: str | None = None
    requests: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code is Exit.OK

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        data["exit_code"] = int(self.exit_code)
        data["ok"] = self.ok
        if not self.ok:
            data["error"] = self.message
        return data


def probe(
    base_url: str,
    api_key: Secret,
    customer_id: str,
    *,
    timeout: float,
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> Verdict:
    """One harmless request (retried only on the API's temporary answers) and its verdict."""
    url = base_url.rstrip("/") + contract.PATH
    headers = {
        "authorization": f"Bearer {api_key.reveal()}",
        "x-customer-id": customer_id,
        "user-agent": f"revbridge-cli/{__version__}",
        "content-type": "application/json",
    }
    requests = 0
    with httpx.Client(timeout=httpx.Timeout(timeout), transport=transport) as client:
        while True:
            requests += 1
            try:
                response = client.post(url, content=BODY, headers=headers)
            except httpx.TimeoutException:
                why = f"no answer from {url} within {timeout:g} s (--timeout)"
                return Verdict(Exit.USAGE, why, url, requests=requests)
            except httpx.HTTPError as exc:
                why = (
                    permanent_failure(exc, url)
                    or f"cannot reach {url}: {exc or type(exc).__name__}"
                )
                return Verdict(Exit.USAGE, why, url, requests=requests)
            status = response.status_code
            if retry.is_retryable(status) and retry.may_retry(requests - 1):
                sleep(
                    retry.delay(requests - 1, response.headers.get("retry-after"), random.random())
                )
                continue
            return _verdict(url, status, response.content, requests)


def _verdict(url: str, status: int, content: bytes, requests: int) -> Verdict:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    trace = body.get("trace_id") if isinstance(body, dict) else None
    trace_id = trace if isinstance(trace, str) else None
    if status in (401, 403):
        why = (
            f"the server refused the credentials ({status} {error or 'unauthorized'}): check "
            "the API key and the customer id (`revbridge config` shows where each comes from)"
        )
        return Verdict(Exit.AUTH, why, url, status, trace_id, requests)
    if status == 400 and isinstance(error, str) and error and trace_id is not None:
        why = (
            f"key, customer id and server are good: {url} checked them and answered the empty "
            f"request with 400 {error!r} (nothing stored; trace_id {trace_id})"
        )
        return Verdict(Exit.OK, why, url, status, trace_id, requests)
    if status in (429, 502, 503, 504):
        why = (
            f"{url} is unavailable: it answered {status} {error or ''} to {requests} requests "
            "(retried as send would); try again later"
        )
        return Verdict(Exit.USAGE, why.replace("  ", " "), url, status, trace_id, requests)
    if status in (404, 405) or error is None:
        why = (
            f"{url} answered {status}, not as the RevBridge Events API does: check --base-url "
            "(the base only, such as https://api.revbridge.ai, no path)"
        )
        return Verdict(Exit.USAGE, why, url, status, trace_id, requests)
    why = (
        f"{url} answered {status} {error!r} to the empty request, not a 400 in the API's error "
        'shape ({"error": ..., "trace_id": ...})'
    )
    return Verdict(Exit.USAGE, why, url, status, trace_id, requests)


def report(verdict: Verdict, *, json_out: bool, quiet: bool) -> Exit:
    """Print the verdict: JSON on stdout with --json; a failure as one `revbridge: error:`
    line on stderr (always); a success as one line on stdout unless --quiet or --json."""
    if json_out:
        print(orjson.dumps(clean_json(verdict.to_json())).decode(), flush=True)
    if not verdict.ok:
        print(f"revbridge: error: {clean(verdict.message)}", file=sys.stderr, flush=True)
    elif not (quiet or json_out):
        print(f"revbridge: {clean(verdict.message)}", flush=True)
    return verdict.exit_code
