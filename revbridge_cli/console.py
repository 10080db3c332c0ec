"""How a run shows itself: a live display on a terminal, sparse plain lines anywhere else.

Cron mails whatever a job prints, and CI logs keep it forever, so off a terminal there is no
progress bar, no escape code, and at most one line every few seconds.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from revbridge_cli.deliver import Attempt
from revbridge_cli.summary import Summary, render_plain, render_table

PLAIN_INTERVAL_SECONDS = 5.0


def _counters(summary: Summary) -> str:
    text = f"{summary.records_read:,} records"
    if summary.sent:
        text += (
            f", {summary.events_accepted:,} events accepted, {summary.users_rejected:,} "
            f"users rejected, {summary.users_undelivered:,} undelivered"
        )
        if summary.retries:
            text += f", {summary.retries:,} retries"
    if summary.records_invalid:
        text += f", {summary.records_invalid:,} invalid"
    return text


class PlainReporter:
    """For pipes, cron and CI: timestamped lines on stderr, throttled."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        quiet: bool = False,
        interval: float = PLAIN_INTERVAL_SECONDS,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self._last = time.monotonic()
        self._started = self._last

    def _line(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")
            self.stream.flush()

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        rate = summary.records_read / max(now - self._started, 1e-9)
        share = f" ({100 * bytes_read / total_bytes:.0f}% of input)" if total_bytes else ""
        self._line(f"progress: {_counters(summary)}{share}, {rate:,.0f} records/s")

    def attempt(self, attempt: Attempt) -> None:
        if attempt.retry_in is not None:
            what = attempt.error or f"HTTP {attempt.status}"
            self._line(
                f"retrying batch {attempt.batch_seq} in {attempt.retry_in:.1f} s: {what}"
                + (f" (trace_id {attempt.trace_id})" if attempt.trace_id else "")
            )

    def notice(self, message: str) -> None:
        self._line(message)

    def summary(self, summary: Summary) -> None:
        self.stream.write(render_plain(summary) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class RichReporter:
    """For a person at a terminal: bytes read of total, counters, rate and ETA, then a table."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[counters]}"),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._last = 0.0

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(
                "sending" if summary.sent else "checking", total=total_bytes, counters=""
            )
        self._progress.update(self._task, completed=bytes_read, counters=_counters(summary))

    def attempt(self, attempt: Attempt) -> None:
        if attempt.retry_in is not None:
            what = attempt.error or f"HTTP {attempt.status}"
            self.console.log(
                f"retrying batch {attempt.batch_seq} in {attempt.retry_in:.1f} s: {what}"
            )

    def notice(self, message: str) -> None:
        self.console.log(message)

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None

    def summary(self, summary: Summary) -> None:
        self.close()
        self.console.print(render_table(summary))
        for warning in summary.warnings():
            self.console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        for example in summary.examples:
            self.console.print(f"  [dim]{example}[/]", highlight=False, markup=False)


class LogFileReporter:
    """`--log-file`: a persistent record for later questions ("which request lost what?"),
    with the trace_id of every request that was not a plain 202, for the vendor's support."""

    def __init__(self, path: str) -> None:
        self.stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.plain = PlainReporter(self.stream, interval=60.0)
        self.plain.notice(f"revbridge run started (pid {os.getpid()})")

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        self.plain.progress(summary, bytes_read, total_bytes)

    def attempt(self, attempt: Attempt) -> None:
        if attempt.status == 202 and not attempt.users_rejected:
            return
        what = attempt.error or f"HTTP {attempt.status}"
        if attempt.users_rejected:
            what += f" with {attempt.users_rejected} of {attempt.users} users rejected"
        then = f"; retry in {attempt.retry_in:.1f} s" if attempt.retry_in is not None else ""
        self.plain.notice(
            f"batch {attempt.batch_seq}: {what} (trace_id "
            f"{attempt.trace_id or 'none'}, {attempt.seconds:.2f} s){then}"
        )

    def notice(self, message: str) -> None:
        self.plain.notice(message)

    def summary(self, summary: Summary) -> None:
        self.plain.notice("run finished")
        self.plain.summary(summary)

    def close(self) -> None:
        self.stream.close()


class Reporters:
    """Several reporters as one: the screen and the log file see the same run."""

    def __init__(self, *reporters: PlainReporter | RichReporter | LogFileReporter) -> None:
        self.reporters = reporters

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        for r in self.reporters:
            r.progress(summary, bytes_read, total_bytes)

    def attempt(self, attempt: Attempt) -> None:
        for r in self.reporters:
            r.attempt(attempt)

    def notice(self, message: str) -> None:
        for r in self.reporters:
            r.notice(message)

    def summary(self, summary: Summary) -> None:
        for r in self.reporters:
            r.summary(summary)

    def close(self) -> None:
        for r in self.reporters:
            r.close()


def make_reporter(quiet: bool = False, log_file: str | None = None) -> Reporters:
    console = Console(stderr=True)
    screen: PlainReporter | RichReporter
    if not quiet and console.is_terminal:
        screen = RichReporter(console)
    else:
        screen = PlainReporter(quiet=quiet)
    if log_file:
        return Reporters(screen, LogFileReporter(log_file))
    return Reporters(screen)
