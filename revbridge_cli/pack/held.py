"""What the packer holds while a user's object may still grow: the grouping buffer's parts.

Apart from the packer because they are plain holders with their own sizing rules, and the
packer's file is the tool's hot path, easier to keep fast where only its logic is in view.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable

from revbridge_cli.pack.batch import BODY_CLOSE, BODY_OPEN, Marks
from revbridge_cli.shape.parts import Origin

_IDS_OPEN = b'{"identifiers":'
_PROPS_OPEN = b',"user_properties":'
_EVENTS_OPEN = b',"events":['
_USER_CLOSE = b"]}"
BODY_FIXED = len(BODY_OPEN) + len(BODY_CLOSE)
_USER_FIXED = len(_IDS_OPEN) + len(_EVENTS_OPEN) + len(_USER_CLOSE)

# A right-sized copy of bytes. orjson's output keeps a 4 KiB buffer whatever its length: fine
# for bytes that die young, ruinous for the many thousands the grouping buffer holds.
# (`%` formatting copies in half the time of `memoryview(...).tobytes()`, and as a bound C
# method it costs no Python call.)
owned: Callable[[bytes], bytes] = b"%b".__mod__


def user_size(ids_len: int, props_bytes: bytes | None, events_size: int) -> int:
    """Bytes of one serialized user object; `events_size` is its events joined by commas."""
    props_part = 0 if props_bytes is None else len(_PROPS_OPEN) + len(props_bytes)
    return _USER_FIXED + ids_len + props_part + events_size


class OpenUser:
    """One user object still growing in its lane. Sizes are kept as it grows: this is the hot
    path, and thousands of these wait in the grouping buffer, so they are lean: identifiers
    and properties as their bytes only (decoded again on the rare merge), origins as the
    record's own (file, line, offset) tuple, and a flat array of triples once there are more.

    `events` holds the events' bytes joined by commas, in a bytearray that owns its memory
    (see `owned`); `size` is the whole user object's.
    """

    __slots__ = ("events", "ids_bytes", "key", "n_events", "origins", "props_bytes", "size")

    def __init__(
        self,
        key: bytes,
        ids_bytes: bytes,
        props_bytes: bytes | None,
        events: bytearray,
        n_events: int,
        origin: Origin,
        size: int,
    ) -> None:
        self.key = key
        self.ids_bytes = ids_bytes
        self.props_bytes = props_bytes
        self.events = events
        self.n_events = n_events
        self.origins: Marks = origin  # the part's own tuple: most users never get a second
        self.size = size

    def grew(self, origin: Origin) -> None:
        """A further record joined: from now on its origins are kept flat, in an array."""
        origins = self.origins
        if isinstance(origins, tuple):
            origins = self.origins = array("q", origins)
        origins.extend(origin)

    def write(self, parts: list[bytes | bytearray]) -> None:
        """Append this user object's pieces to a body being built (joined once, at close)."""
        parts += (_IDS_OPEN, self.ids_bytes)
        if self.props_bytes is not None:
            parts += (_PROPS_OPEN, self.props_bytes)
        parts += (_EVENTS_OPEN, self.events, _USER_CLOSE)


class Lane:
    """The users a lane holds back while more of their events may come: the grouping buffer.

    `queue` is the send order, oldest user object first; `users` points at each user's object
    that can still grow (a user too big for one request has older, sealed objects ahead of it
    in the queue). `held` is the estimated memory of it all.
    """

    __slots__ = ("held", "number", "queue", "users")

    def __init__(self, number: int) -> None:
        self.number = number
        self.users: dict[bytes, OpenUser] = {}
        self.queue: deque[OpenUser] = deque()
        self.held = 0
