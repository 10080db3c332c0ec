"""How a run shows itself: a live display on a terminal, sparse plain lines anywhere else.

Cron mails whatever a job prints, and CI logs keep it forever, so off a terminal there is no
progress bar, no escape code, and at most one line every few seconds. Whether stderr is a
terminal is decided here, from the stream itself: FORCE_COLOR or TTY_* variables set for some
other tool in a CI job do not turn a log into a screen. The figures shown come from progress.py;
this module only decides where and how they are drawn.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import IO

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
)
from rich.table import Table
from rich.text import Text

from revbridge_cli.cli.progress import Meter, counters, sending, unit
from revbridge_cli.delivery.sender import Attempt
from revbridge_cli.errors import OutputError
from revbridge_cli.report.summary import Summary, render_plain
from revbridge_cli.text import clean, scrub

PLAIN_INTERVAL_SECONDS = 5.0
LOG_FILE_INTERVAL_SECONDS = 60.0
RICH_INTERVAL_SECONDS = 0.1


def _what(attempt: Attempt) -> str:
    return attempt.error or f"HTTP {attempt.status}"


class PlainReporter:
    """For pipes, cron and CI: timestamped lines, at most one progress line per interval.

    Retries are not a line each (a burst of 503s would flood a cron mail): they are counted
    and told in the next progress line. Notices (a signal, a file skipped) go out at once.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        quiet: bool = False,
        interval: float = PLAIN_INTERVAL_SECONDS,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self.meter = Meter()
        self._last = self.meter.started
        self._retries = 0
        self._last_retry = ""

    def _line(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {clean(text)}\n")
            self.stream.flush()

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        self.meter.update(summary, bytes_read, total_bytes)
        self._maybe_line()

    def attempt(self, attempt: Attempt) -> None:
        self.meter.attempt(attempt)
        if attempt.retry_in is not None:
            self._retries += 1
            trace = f", trace_id {attempt.trace_id}" if attempt.trace_id else ""
            self._last_retry = f"{_what(attempt)}{trace}"
            self._maybe_line()

    def _maybe_line(self) -> None:
        now = time.monotonic()
        if now - self._last < self.interval or self.meter.summary is None:
            return
        self._last = now
        self._line(self.progress_line())

    def progress_line(self) -> str:
        m = self.meter
        summary = m.summary or Summary()
        parts = [m.bytes_text() + " of input"]
        if m.fraction() is not None:
            parts[0] = f"{m.share_text()}, {parts[0]}"
        parts += [f"{label} {value}" for label, value in counters(summary, len(m.retrying))]
        parts.append(f"{m.rate():,.0f} {unit(summary)}")
        if m.eta() is not None:
            parts.append(m.eta_text())
        text = "progress: " + ", ".join(parts)
        if self._retries:
            text += f"; {self._retries:,} retries since the last line (last: {self._last_retry})"
            self._retries = 0
        return text

    def notice(self, message: str) -> None:
        self._line(message)

    def warning(self, message: str) -> None:
        self.stream.write(f"revbridge: warning: {message}\n")  # --quiet too: see Reporter
        self.stream.flush()

    def summary(self, summary: Summary) -> None:
        self.stream.write(scrub(render_plain(summary)) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class _Display(Progress):
    """The progress bar with a line of counters under it, and one of retries once any."""

    counters: RenderableType = ""
    retries: RenderableType | None = None

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self.counters
        if self.retries is not None:
            yield self.retries


class RichReporter:
    """For a person at a terminal: input bytes read of total, rate and ETA on one line; the
    records, accepted, rejected and retrying counters under it; a table at the end.

    Retries are one line that updates in place (how many, by status, and the next wait), not
    a line each: a 503 storm would scroll the progress away. The log file keeps every one,
    with its trace_id."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.meter = Meter()
        self._display = _Display(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[share]}"),
            TextColumn("{task.fields[bytes]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}", style="progress.remaining"),
            console=console,
            transient=True,
            redirect_stdout=False,  # stdout may be a pipe for --json: never draw into it
        )
        self._task: TaskID | None = None
        self._last = 0.0
        self._retries: Counter[str] = Counter()
        self._next_wait: float | None = None

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        self.meter.update(summary, bytes_read, total_bytes)
        now = time.monotonic()
        if now - self._last < RICH_INTERVAL_SECONDS:
            return
        self._last = now
        self._refresh()

    def _refresh(self) -> None:
        m = self.meter
        if m.summary is None:
            return
        row = Text(" ")
        for i, (label, value) in enumerate(counters(m.summary, len(m.retrying))):
            row.append(" · " if i else "")
            row.append(f"{label} ", style="dim")
            row.append(value, style=_STYLES.get(label, ""))
        self._display.counters = row
        fraction = m.fraction()
        completed = fraction or 0.0
        total = None if fraction is None else 1.0
        shown = m.bytes_text()
        rate = f"{m.rate():,.0f} {unit(m.summary)}"
        eta = m.eta_text()
        first = self._task is None
        if self._task is None:
            description = "sending" if sending(m.summary) else "checking"
            self._task = self._display.add_task(
                description, bytes=shown, rate=rate, eta=eta, share=m.share_text()
            )
        # `completed` by update: add_task's stub takes an int, and the fraction is a float.
        self._display.update(
            self._task,
            total=total,
            completed=completed,
            bytes=shown,
            rate=rate,
            eta=eta,
            share=m.share_text(),
        )
        if first:
            self._display.start()

    def attempt(self, attempt: Attempt) -> None:
        self.meter.attempt(attempt)
        if attempt.retry_in is not None:
            self._retries[_what(attempt)] += 1
            self._next_wait = attempt.retry_in
        if self._retries:  # redrawn on every answer: "next in" goes once nothing waits
            self._display.retries = self.retry_line()
        if self._task is not None:
            self._refresh()

    def retry_line(self) -> Text:
        """`retries 12 (HTTP 503: 10, HTTP 429: 2), next in 3.2 s` while a batch waits."""
        by_what = ", ".join(f"{what}: {n:,}" for what, n in self._retries.most_common())
        line = Text(" ")
        line.append("retries ", style="dim")
        line.append(f"{sum(self._retries.values()):,}", style="yellow")
        line.append(f" ({by_what})")
        if self.meter.retrying and self._next_wait is not None:
            line.append(f", next in {self._next_wait:.1f} s")
        return line

    def notice(self, message: str) -> None:
        self.console.log(clean(message), markup=False)

    def warning(self, message: str) -> None:
        self.console.print(f"revbridge: warning: {message}", markup=False, highlight=False)

    def close(self) -> None:
        if self._task is not None:
            self._display.stop()
            self._task = None

    def summary(self, summary: Summary) -> None:
        self.close()
        # markup off: a reason such as "events[i]: ..." or a file name with brackets is text
        self.console.print(render_table(summary), markup=False)
        for warning in summary.warnings():
            self.console.print(Text("warning: ", style="yellow") + Text(warning))
        for example in summary.examples:
            self.console.print(Text(f"  {example}", style="dim"), highlight=False)


_STYLES = {"accepted": "green", "rejected": "red", "retrying": "yellow", "undelivered": "red"}


class LogFileReporter:
    """`--log-file`: a persistent record for later questions ("which request lost what?"),
    with the trace_id of every request that was not a plain 202, for the vendor's support."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.plain = PlainReporter(self.stream, interval=LOG_FILE_INTERVAL_SECONDS)
        self.plain.notice(f"revbridge run started (pid {os.getpid()})")

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        self.plain.progress(summary, bytes_read, total_bytes)

    def attempt(self, attempt: Attempt) -> None:
        self.plain.meter.attempt(attempt)
        if attempt.status == 202 and not attempt.users_rejected:
            return
        what = _what(attempt)
        if attempt.users_rejected:
            what += f" with {attempt.users_rejected} of {attempt.users} users rejected"
        then = f"; retry in {attempt.retry_in:.1f} s" if attempt.retry_in is not None else ""
        self.plain.notice(
            f"batch {attempt.batch_seq}: {what} (trace_id "
            f"{attempt.trace_id or 'none'}, {attempt.seconds:.2f} s){then}"
        )

    def notice(self, message: str) -> None:
        self.plain.notice(message)

    def warning(self, message: str) -> None:
        self.plain.notice(f"warning: {message}")

    def summary(self, summary: Summary) -> None:
        self.plain.notice("run finished")
        self.plain.summary(summary)

    def close(self) -> None:
        self.stream.close()


class Reporters:
    """Several reporters as one: the screen and the log file see the same run.

    A screen that went away (stderr piped into `head`, a closed terminal) is dropped: the run
    goes on, and its rejected file and exit code still say everything. A log file that cannot
    be written is an `OutputError`: the user asked for that record, so the run stops."""

    def __init__(self, *reporters: PlainReporter | RichReporter | LogFileReporter) -> None:
        self.reporters = reporters

    def _each(self, call: Callable[[PlainReporter | RichReporter | LogFileReporter], None]) -> None:
        for r in self.reporters:
            try:
                call(r)
            except OSError as exc:
                if isinstance(r, LogFileReporter):
                    raise OutputError(
                        f"cannot write --log-file {r.path}: {exc.strerror or exc}"
                    ) from None
                self.reporters = tuple(x for x in self.reporters if x is not r)

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        self._each(lambda r: r.progress(summary, bytes_read, total_bytes))

    def attempt(self, attempt: Attempt) -> None:
        self._each(lambda r: r.attempt(attempt))

    def notice(self, message: str) -> None:
        self._each(lambda r: r.notice(message))

    def warning(self, message: str) -> None:
        self._each(lambda r: r.warning(message))

    def summary(self, summary: Summary) -> None:
        shown = clean_summary(summary)
        self._each(lambda r: r.summary(shown))

    def close(self) -> None:
        for r in self.reporters:
            with contextlib.suppress(OSError):
                r.close()


def clean_summary(summary: Summary) -> Summary:
    """The summary as shown: its messages (a library's, a server's words among them) each on
    one line and without the key, so the screen and the log file get the same safe text."""
    reasons: Counter[str] = Counter()
    for reason, n in summary.reasons.items():
        reasons[clean(reason)] += n
    return replace(
        summary,
        input_errors=[clean(e) for e in summary.input_errors],
        notices=[clean(n) for n in summary.notices],
        examples=[clean(e) for e in summary.examples],
        reasons=reasons,
        interrupted=clean(summary.interrupted) if summary.interrupted else summary.interrupted,
        fatal=clean(summary.fatal) if summary.fatal else summary.fatal,
    )


def is_screen(stream: IO[str]) -> bool:
    """A terminal that can redraw a line: a tty, and not TERM=dumb (Emacs shells, some CI)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
    return tty and os.environ.get("TERM", "").lower() != "dumb"


def make_reporter(quiet: bool = False, log_file: str | None = None) -> Reporters:
    """The screen reporter for stderr (rich on a terminal, plain lines otherwise), plus the log
    file's. NO_COLOR (set and not empty, as no-color.org says) means no styling at all: rich
    alone would drop the colours and keep bold and dim, so the colour system is switched off,
    which leaves only the cursor movements of the live display. Raises OSError when the log
    file cannot be opened."""
    screen: PlainReporter | RichReporter
    if not quiet and is_screen(sys.stderr):
        console = Console(
            file=sys.stderr,
            force_terminal=True,
            force_interactive=True,
            log_path=False,
            color_system=None if os.environ.get("NO_COLOR") else "auto",
        )
        screen = RichReporter(console)
    else:
        screen = PlainReporter(quiet=quiet)
    if log_file:
        return Reporters(screen, LogFileReporter(log_file))
    return Reporters(screen)


def render_table(summary: Summary) -> Table:
    title = (
        "revbridge validate"
        if not summary.sent
        else ("revbridge send (dry run)" if summary.dry_run else "revbridge send")
    )
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in summary.rows():
        table.add_row(label, value)
    for reason, n in summary.reasons.most_common(10):
        table.add_row(f"  {reason}", f"{n:,}", style="yellow")
    return table
