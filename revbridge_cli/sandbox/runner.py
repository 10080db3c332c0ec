"""The sandbox as a Python object: start, point a client at `url`, look at what arrived, stop.

Tests start one per test, so starting and stopping take milliseconds: the port is chosen by the
OS, the database is a fresh temporary file, and stop() interrupts injected sleeps instead of
waiting for them.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

from revbridge_cli.contract import PATH
from revbridge_cli.sandbox.faults import Faults
from revbridge_cli.sandbox.reads import (
    read_events,
    read_profiles,
    read_refused_links,
    read_requests,
)
from revbridge_cli.sandbox.server import SandboxHTTPServer
from revbridge_cli.sandbox.store import NullStore, SqliteStore

DEFAULT_CUSTOMER_ID = "cust_sandbox"


def make_api_key() -> str:
    return f"rbk_sandbox_{secrets.token_hex(12)}"


class Sandbox:
    """A local RevBridge Events API on a real socket; see docs/sandbox.md."""

    def __init__(
        self,
        api_key: str | None = None,
        customer_id: str | None = None,
        *,
        db: str | Path | None = None,
        store: bool = True,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log: TextIO | None = None,
    ) -> None:
        self.api_key = api_key or make_api_key()
        self.customer_id = customer_id or DEFAULT_CUSTOMER_ID
        self.host = host
        self.port = port
        self.store_enabled = store
        self._db = Path(db) if db is not None else None
        self._faults = faults or Faults()
        self._log = log
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: SqliteStore | NullStore | None = None
        self._tempdir: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None
        self._stopped_stats: dict[str, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._store = self._open_store()
        try:
            server = SandboxHTTPServer(
                (self.host, self.port),
                api_key=self.api_key,
                customer_id=self.customer_id,
                store=self._store,
                faults=self._faults,
                log=self._log,
            )
        except BaseException:
            self._close_store()
            raise
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.name = f"sandbox-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ends hung answers and idle keep-alive connections instead of waiting for them."""
        server = self._server
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        self._stopped_stats = server.counters.snapshot()
        self._server = None
        self._close_store()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _open_store(self) -> SqliteStore | NullStore:
        if not self.store_enabled:
            return NullStore()
        path = self._db
        if path is None:
            self._tempdir = Path(tempfile.mkdtemp(prefix="revbridge-sandbox-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._tempdir, True)
            path = self._tempdir / "sandbox.db"
        return SqliteStore(path)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._cleanup is not None:
            self._cleanup()  # the temporary database goes with the server

    # -- addresses and credentials ---------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL without the path, the way the importer's --base-url wants it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url + PATH

    @property
    def headers(self) -> dict[str, str]:
        """The three headers a valid request carries, for tests and examples."""
        return {
            "Authorization": f"Bearer {self.api_key}",
            "x-customer-id": self.customer_id,
            "Content-Type": "application/json",
        }

    @property
    def db_is_temporary(self) -> bool:
        return self.store_enabled and self._db is None

    @property
    def db_path(self) -> Path | None:
        if not self.store_enabled:
            return None
        if self._db is not None:
            return self._db
        return self._tempdir / "sandbox.db" if self._tempdir is not None else None

    # -- faults ----------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """Takes effect from the next request; request numbering carries on."""
        self._faults = faults
        if self._server is not None:
            self._server.faults = faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change some fault settings, keep the others: `sb.set_faults(fail_rate=0.5)`."""
        self.faults = dataclasses.replace(self._faults, **changes)
        return self._faults

    # -- what arrived ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """In-memory counters: available with store=False too, and after stop()."""
        if self._server is not None:
            return self._server.counters.snapshot()
        if self._stopped_stats is not None:
            return self._stopped_stats
        return {
            "requests": 0,
            "requests_by_status": {},
            "users_accepted": 0,
            "users_rejected": 0,
            "events_accepted": 0,
        }

    def events(self) -> list[dict[str, Any]]:
        path = self._readable_db()
        return read_events(path) if path is not None else []

    def profiles(self) -> dict[str, dict[str, Any]]:
        path = self._readable_db()
        return read_profiles(path) if path is not None else {}

    def requests(self) -> list[dict[str, Any]]:
        path = self._readable_db()
        return read_requests(path) if path is not None else []

    def refused_links(self) -> list[dict[str, Any]]:
        path = self._readable_db()
        return read_refused_links(path) if path is not None else []

    def _readable_db(self) -> Path | None:
        if not self.store_enabled:
            return None
        path = self.db_path
        if path is None or not path.exists():
            raise RuntimeError(
                "the sandbox's temporary database is gone once it stops: read it before "
                "stop(), or pass db=PATH to keep it"
            )
        if self._store is not None:
            self._store.flush()
        return path
