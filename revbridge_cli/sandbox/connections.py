"""The connections the sandbox holds, and shedding the ones that only hold it up.

One thread per connection is simple and fast for a local server, but a thread waits as long
as its client does: 10,000 clients that connect and then trickle a byte a second, or just sit
idle, held 10,000 threads; the accept queue filled, a real client got no answer, and a
process with that many threads barely got to run its SIGTERM handler. So each connection is
in one of three phases, and nothing waits on a client for long:

- idle (between requests): closed after `idle_timeout` (the socket timeout does it too);
- reading (a request has begun): it must arrive whole within `read_deadline` from its first
  byte, however slowly it trickles (the contract's server cuts requests off at 10 s);
- busy (being answered, fault delays included): never shed.

And at `max_connections` a new connection sheds the one that has waited longest on its
client, idle or reading; when every connection is busy, the new one is closed instead. A
reaper thread enforces the deadlines a few times a second.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

IDLE, READING, BUSY = 0, 1, 2


def _hang_up(sock: socket.socket) -> None:
    """Wake the handler thread blocked on it: its read returns at once and it closes."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Connections:
    def __init__(
        self,
        max_connections: int,
        idle_timeout: float,
        read_deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.read_deadline = read_deadline
        self.shed = 0  # connections closed to make room or past a deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._live: dict[socket.socket, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, sock: object) -> bool:
        return sock in self._live

    def add(self, sock: socket.socket) -> bool:
        """Room for a new connection, shedding the longest-waiting one when full; False when
        every connection is busy being answered (the caller closes the new one)."""
        with self._lock:
            live = self._live
            if len(live) >= self.max_connections:
                waiting = [(since, s) for s, (phase, since) in live.items() if phase != BUSY]
                if not waiting:
                    return False
                _, victim = min(waiting, key=lambda item: item[0])
                del live[victim]
                self.shed += 1
                _hang_up(victim)
            live[sock] = (IDLE, self._clock())
            return True

    def phase(self, sock: socket.socket, phase: int) -> None:
        with self._lock:
            if sock in self._live:  # not if it was shed meanwhile
                self._live[sock] = (phase, self._clock())

    def remove(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.pop(sock, None)

    def reap(self) -> None:
        """Close every connection past its deadline."""
        now = self._clock()
        with self._lock:
            late = [
                s
                for s, (phase, since) in self._live.items()
                if (phase == IDLE and now - since > self.idle_timeout)
                or (phase == READING and now - since > self.read_deadline)
            ]
            for sock in late:
                del self._live[sock]
                _hang_up(sock)
            self.shed += len(late)

    def close_all(self) -> None:
        """Wake every handler thread so that nothing outlives stop()."""
        with self._lock:
            connections = list(self._live)
            self._live.clear()
        for sock in connections:
            _hang_up(sock)
