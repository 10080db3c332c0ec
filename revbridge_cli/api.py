"""The Python API: what `revbridge send` does, for a program (a notebook, an Airflow task, a
stream consumer, a Spark or Dask partition), the CLI's very run under it.

    from revbridge_cli import Connection, send_records
    conn = Connection("https://api.revbridge.ai", api_key=os.environ["REVBRIDGE_API_KEY"],
                      customer_id="cust_abc123")
    result = send_records(records, connection=conn, concurrency=8)
    result.accepted_events, result.rejected, result.rejected_rows, result.as_dict()

Options are keyword arguments named like the CLI's flags (`--max-users` is `max_users`);
`since`/`until` also take `date` and `datetime` objects (naive ones are UTC, as the CLI's
strings are), and `limit` reads the first N records (with `state=`, the next N).
Nothing process-global happens here: no signal handler, no GC tuning, no exit; it is safe in a
worker thread, and `send_records` works from inside a running event loop (a notebook) by
running in a thread of its own. A bad argument raises `errors.UsageError` (or `ConfigError`)
naming it (`arguments.py` checks each); a run that ends badly does not raise: its `Result`
says how (`exit_code`, `fatal`), as the CLI's exit code and summary do. Only records that
raise mid-run do: `errors.RunAborted`, with the partial `Result` as `.result`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from revbridge_cli import contract
from revbridge_cli.arguments import (
    FIELD_OF,
    check_arguments,
    check_paths,
    check_records,
    connection_parts,
)
from revbridge_cli.config.base_url import check_base_url
from revbridge_cli.config.credentials import Secret, check_header_value, mask
from revbridge_cli.config.outputs import check_outputs
from revbridge_cli.config.resolve import Connection as _Connection
from revbridge_cli.config.settings import SendSettings, build_settings
from revbridge_cli.errors import ConfigError, Exit, RevbridgeError, RunAborted, UsageError
from revbridge_cli.input.iterable import CallerRecords
from revbridge_cli.input.paths import any_tabular
from revbridge_cli.report.ledger import RejectedRows
from revbridge_cli.report.summary import Summary
from revbridge_cli.run import Run
from revbridge_cli.shape.mapfile import load_mapping
from revbridge_cli.shape.window import Window
from revbridge_cli.text import clean, clean_json

_MAPPING = ("map", "preset", "rename", "unmapped")  # --map FILE, --preset, --rename, --unmapped
_WINDOW = ("since", "until")  # --since, --until: one `window` setting
_Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class Connection:
    """Where to send and as whom. The key is held as a masked `Secret`: its repr, a log line
    or a traceback shows `rbk_…abcd`, never the key."""

    base_url: str
    api_key: Secret
    customer_id: str

    def __init__(self, base_url: str, *, api_key: str | Secret, customer_id: str) -> None:
        base_url, key, customer_id = connection_parts(base_url, api_key, customer_id)
        check_header_value(key.reveal(), "the API key")
        object.__setattr__(self, "base_url", check_base_url(base_url))
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "customer_id", check_header_value(customer_id, "customer id"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Connection:
        """From REVBRIDGE_BASE_URL (default production), REVBRIDGE_API_KEY and
        REVBRIDGE_CUSTOMER_ID: how a cluster's executors get the key without it ever being
        in the job's plan or arguments."""
        env = os.environ if env is None else env
        missing = [n for n in ("REVBRIDGE_API_KEY", "REVBRIDGE_CUSTOMER_ID") if not env.get(n)]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} not set in the environment")
        return cls(
            env.get("REVBRIDGE_BASE_URL") or contract.PRODUCTION_URL,
            api_key=env["REVBRIDGE_API_KEY"],
            customer_id=env["REVBRIDGE_CUSTOMER_ID"],
        )


@dataclass(frozen=True)
class Result:
    """What a run did: the summary's counts, and the rows it set aside."""

    summary: Summary
    rejected_rows: list[dict[str, Any]] | None  # kept in memory when no `rejected` path given

    @property
    def exit_code(self) -> int:
        """The code the CLI would exit with (README "Exit codes"): 0 when all was accepted."""
        return self.summary.exit_code

    @property
    def ok(self) -> bool:
        return self.summary.exit_code == Exit.OK

    @property
    def accepted_events(self) -> int:
        return self.summary.events_accepted

    @property
    def rejected(self) -> int:
        """Rows set aside (invalid, rejected by the server, undelivered): one per user."""
        return self.summary.rejected_rows

    @property
    def possible_duplicate_events(self) -> int:
        return self.summary.possible_duplicate_events

    @property
    def rejected_file(self) -> str | None:
        return self.summary.rejected_file

    @property
    def fatal(self) -> str | None:
        """Why the run stopped early (credentials, an unreachable server, a full disk)."""
        return self.summary.fatal

    def as_dict(self) -> dict[str, Any]:
        """The CLI's `--json` summary, key for key."""
        return self.summary.to_json()


def send_records(records: Iterable[Any], **options: Any) -> Result:
    """Send an iterable of records (dicts in any shape the CLI reads), streamed: a generator
    of a billion records runs in flat memory. See the module docstring for the options.

    If the iterable itself raises, reading ends there and the run ends as after a file's read
    error (what was read is sent or set aside, and counted); then `RunAborted` is raised,
    its `result` the run's `Result` and its `__cause__` the iterable's exception."""
    return _blocking(asend_records(records, **options))


def send_files(paths: _Paths, **options: Any) -> Result:
    """Send files, directories or globs, as `revbridge send PATHS...` (with `state=PATH`
    resumable, as `--state`)."""
    return _blocking(asend_files(paths, **options))


async def asend_records(records: Iterable[Any], **options: Any) -> Result:
    """`send_records` for a program that already runs an event loop."""
    caller = CallerRecords(check_records(records))
    result = await _execute(_settings([], options), records=caller)
    if caller.error is not None:
        line = next(iter(result.summary.input_errors), "the records raised")
        raise _without_key(RunAborted(line, result), options) from caller.error
    return result


async def asend_files(paths: _Paths, **options: Any) -> Result:
    """`send_files` for a program that already runs an event loop."""
    return await _execute(_settings(check_paths(paths), options), records=None)


def check_options(options: Mapping[str, Any]) -> None:
    """Raise `UsageError` for any option `send_records` would refuse, sending nothing and
    needing no connection: an engine checks its options on the driver before a task starts."""
    _settings([], {**options, "dry_run": True})


# ---- the machinery ----------------------------------------------------------------------------


async def _execute(settings: SendSettings, records: Iterable[Any] | None) -> Result:
    sink = RejectedRows() if settings.rejected is None else None
    paths = {
        "rejected": settings.rejected or os.devnull,  # in memory
        "state": settings.state,
        "log_file": settings.log_file,
    }
    check_outputs(paths, {k: "argument" for k in paths}, state_used=not settings.dry_run)
    run = Run(settings, records=records, rejected_sink=sink)
    run.prepare()  # UsageError, LockedError: raised to the caller, nothing was sent
    summary = await run.execute()
    tally = settings.shape.near_miss  # identifier-like keys left unused: the CLI's warning too
    if tally is not None and (warning := tally.warning()) is not None:
        summary.notices.append(warning)
    # The caller's own exceptions (a records generator that raised) are quoted in these, and
    # the CLI's --json cleans them on the way out; the Result is the API's --json, so the same.
    summary.input_errors = [clean(text) for text in summary.input_errors]
    summary.notices = [clean(text) for text in summary.notices]
    summary.examples = [clean(text) for text in summary.examples]
    if summary.fatal is not None:
        summary.fatal = clean(summary.fatal)
    summary.files = clean_json(summary.files)
    return Result(summary, sink.kept if sink is not None else None)


def _blocking(coro: Any) -> Result:
    """Run the coroutine to its end; inside a running loop (a notebook), in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[no-any-return]
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="revbridge") as pool:
        result: Result = pool.submit(asyncio.run, coro).result()
        return result


def _settings(inputs: list[str], options: dict[str, Any]) -> SendSettings:
    """Keyword arguments -> the CLI's settings object: each checked by its entry in
    `arguments.ARGUMENTS`, then as the CLI's flags are. A refusal that quotes a value never
    quotes the key, even one passed by mistake as another argument (`map=key`)."""
    try:
        return _checked_settings(inputs, options)
    except RevbridgeError as exc:
        raise _without_key(exc, options) from exc.__cause__


def _without_key(exc: RevbridgeError, options: Mapping[str, Any]) -> RevbridgeError:
    """The message as the caller may show it: the key masked, on one line (a path given
    with a newline in it is quoted with the newline escaped)."""
    conn, key = options.get("connection"), options.get("api_key")
    secret = conn.api_key if isinstance(conn, Connection) else key
    key_text = secret.reveal() if isinstance(secret, Secret) else secret
    text = told = str(exc)
    if isinstance(key_text, str) and key_text and key_text in told:
        told = told.replace(key_text, mask(key_text))
    told = "".join(c if c.isprintable() else repr(c)[1:-1] for c in told)
    if told != text:
        exc.args = (told,)
    return exc


def _checked_settings(inputs: list[str], options: dict[str, Any]) -> SendSettings:
    given = check_arguments(options)
    parts = {k: given.pop(k, None) for k in ("connection", "base_url", "api_key", "customer_id")}
    mapping = _mapping(*(given.pop(k, None) for k in _MAPPING))
    window = Window.of(given.pop("since", None), given.pop("until", None), names=_WINDOW)
    given = {FIELD_OF.get(name, name): value for name, value in given.items()}
    given["window"] = window
    connection = _connection(parts, given)
    keep_rows = bool(inputs) and any_tabular(inputs, given.get("fmt"))
    try:
        return build_settings(inputs, connection, given, mapping=mapping, keep_rows=keep_rows)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _mapping(
    map_file: str | None, preset: str | None, rename: list[str] | None, unmapped: str | None
) -> Any:
    """The CLI's mapping options: `map=` a TOML file, `preset=`, `rename=` a dict of source to
    target (or the CLI's "SRC=DST" strings), `unmapped="keep"|"drop"`."""
    return load_mapping(map_file, preset, rename or None, unmapped)


def _connection(given: dict[str, Any], options: dict[str, Any]) -> _Connection | None:
    conn = given.pop("connection", None)
    parts = {k: v for k, v in given.items() if v is not None}
    if conn is not None and parts:
        raise UsageError("give either connection= or base_url/api_key/customer_id, not both")
    if conn is None and parts:
        if "api_key" not in parts or "customer_id" not in parts:
            raise UsageError("api_key and customer_id are required (or connection=)")
        conn = Connection(
            parts.get("base_url", contract.PRODUCTION_URL),
            api_key=parts["api_key"],
            customer_id=parts["customer_id"],
        )
    if conn is None:
        if options.get("dry_run"):
            return None
        raise UsageError("no connection: pass connection=Connection(...) or api_key/customer_id")
    if not isinstance(conn, Connection):
        raise UsageError("connection must be a revbridge_cli.Connection")
    return _Connection(conn.base_url, conn.api_key, conn.customer_id)
