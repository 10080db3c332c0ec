"""Near misses: identifier-like keys the tool does not use, counted and named in one warning.

Without a mapping, a record's identifiers are `user_id`, `email`, `phone_number` and `anon_id`;
a Segment export's `userId` is just another event property, and a record that also carries an
email is then keyed by the email alone: accepted, and attributed to a different profile than
the user meant. That is the silent failure this module exists to make loud: each record with
such a key is counted, and the summary warns once, naming the preset or `--rename` that would
use it. Pure counting; the warning's text is built at the end of the run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# key -> (API identifier it probably means, preset that reads it, if one does)
_KEYS: dict[str, tuple[str, str | None]] = {
    "userId": ("user_id", "segment"),
    "anonymousId": ("anon_id", "segment"),
    "distinct_id": ("user_id", "mixpanel or --preset posthog"),
    "device_id": ("anon_id", "amplitude"),
    "user_pseudo_id": ("anon_id", "ga4"),
    "user-id": ("user_id", None),
    "userid": ("user_id", None),
    "UserId": ("user_id", None),
    "UserID": ("user_id", None),
    "userID": ("user_id", None),
    "user_ID": ("user_id", None),
    "uid": ("user_id", None),
    "customer_id": ("user_id", None),
    "customerId": ("user_id", None),
    "anonymous_id": ("anon_id", None),
    "anonymous-id": ("anon_id", None),
    "anonId": ("anon_id", None),
    "anon-id": ("anon_id", None),
    "deviceId": ("anon_id", None),
    "device-id": ("anon_id", None),
    "Email": ("email", None),
    "e-mail": ("email", None),
    "email_address": ("email", None),
    "emailAddress": ("email", None),
    "phone": ("phone_number", None),
    "phoneNumber": ("phone_number", None),
    "phone-number": ("phone_number", None),
    "mobile": ("phone_number", None),
}
KEYS = frozenset(_KEYS)


class Tally:
    """How many records carried each unused identifier-like key (with a value)."""

    def __init__(self) -> None:
        self.records = 0
        self.keys: Counter[str] = Counter()

    def note(self, record: dict[str, Any]) -> None:
        """Count `record` if it has such a key with a value (call only when it may)."""
        found = [k for k in KEYS.intersection(record) if record[k] not in (None, "")]
        if found:
            self.records += 1
            self.keys.update(found)

    def warning(self) -> str | None:
        """The one summary warning, or None if no record had such a key."""
        if not self.records:
            return None
        named = ", ".join(f"{k} ({n:,})" for k, n in self.keys.most_common())
        fixes = []
        for key, _ in self.keys.most_common(3):
            target, preset = _KEYS[key]
            rename = f"--rename {key}={target}"
            fixes.append(f"--preset {preset} or {rename}" if preset else rename)
        many = self.records != 1
        return (
            f"{self.records:,} {'records carry' if many else 'record carries'} identifier-like "
            "keys that are not identifiers "
            f"without a mapping: {named}; they go as event properties, and users are keyed "
            f"by their other identifiers only. To use them: {'; '.join(fixes)}"
        )
