"""Running contenders as child processes, and the sandbox beside them, measured from outside.

Each contender is its own process so that its peak RSS is its own: `os.wait4` returns the
rusage of exactly that child (`RUSAGE_CHILDREN` would give the largest child so far, which makes
deltas meaningless once a bigger one has run). The sandbox is a separate process too, started
through the real `revbridge sandbox` command, so the server's CPU and memory are not counted
against the importer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

BENCH = Path(__file__).resolve().parent
API_KEY = "rbk_bench_key"
CUSTOMER_ID = "cust_bench"
_BANNER = "RevBridge sandbox listening on "


def revbridge_command() -> list[str]:
    """The console script installed beside this Python, else the same entry point via -m.

    Not `shutil.which`: a version manager's shim (pyenv) is a shell script that runs more
    processes before Python, which would be timed and counted too.
    """
    script = Path(sys.executable).parent / "revbridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "revbridge_cli"]


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What one child process did: its exit code, output, wall time and peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # user + system time of that one child


def run_child(argv: list[str], cwd: Path | None = None) -> ChildRun:
    """Run to the end and measure; output goes to files so no pipe can fill up and stall it."""
    with tempfile.TemporaryDirectory(prefix="revbridge-bench-") as tmp:
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd or tmp)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        return ChildRun(
            proc.returncode,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
            seconds,
            usage.ru_maxrss / 1024,  # kilobytes on Linux
            usage.ru_utime + usage.ru_stime,
        )


class SandboxProcess:
    """`revbridge sandbox --no-store` in its own process, on a free port, for one scenario;
    with `db`, the stored mode writing that file (the sandbox's own rate is then measured)."""

    def __init__(self, latency: float = 0.0, db: Path | None = None) -> None:
        self.latency = latency
        self.db = db
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        argv = [
            *revbridge_command(),
            "sandbox",
            *(["--db", str(self.db)] if self.db is not None else ["--no-store"]),
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--customer-id",
            CUSTOMER_ID,
            "--latency",
            str(self.latency),
        ]
        self._proc = proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner's first line names the URL
            if line.startswith(_BANNER):
                self.url = line[len(_BANNER) :].split()[0]
                break
        if not self.url:
            proc.kill()
            raise RuntimeError(f"the sandbox did not start: {' '.join(argv)}")
        return self  # the rest of the banner and the exit line fit in the pipe's buffer

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def cpu_seconds(self) -> float:
        """The sandbox's CPU time so far (Linux /proc): on a shared machine, wall time says how
        busy the neighbours were as much as how fast the server is."""
        if self._proc is None:
            return 0.0
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def credentials(self) -> list[str]:
        return ["--base-url", self.url, "--api-key", API_KEY, "--customer-id", CUSTOMER_ID]
