"""Which files to read, whether they can be read, and whether a file is the one we saw last time.

Everything here works on paths and file metadata only; turning bytes into records is
`revbridge_cli.input.reader`. Problems that are known before reading starts are raised as
`InputError` so the CLI can refuse the whole run up front instead of failing halfway.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import stat
import zlib
from typing import Any, Literal

from revbridge_cli.errors import InputError, RefusedInput, UsageError
from revbridge_cli.input import formats
from revbridge_cli.input.streams import BOM, WS

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 4096
EMPTY_PROBE_BYTES = 65536
_GLOB_CHARS = frozenset("*?[")
DIRECTORY_NAMES = ".ndjson, .jsonl, .json, .csv, .tsv, .parquet, or those .gz"


def display_name(path: str) -> str:
    """The name used in records and messages: `-` reads better as `<stdin>`."""
    return "<stdin>" if path == STDIN else path


def os_error(source: str, exc: OSError, doing: str = "read") -> InputError:
    """One wording for the OS's refusals, wherever a file is stat'ed or opened."""
    if isinstance(exc, FileNotFoundError):
        return InputError(source, "no such file")
    if isinstance(exc, PermissionError):
        return InputError(source, "permission denied")
    return InputError(source, f"cannot {doing}: {exc.strerror or exc}")


def _check_file(path: str) -> None:
    """Raise for what `stat` and `access` can tell without opening the file."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise os_error(path, e) from None
    # FIFOs are allowed on purpose: `revbridge send <(zcat a.gz)` passes /dev/fd/N.
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise InputError(path, "not a regular file (a device, socket or other special file)")
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")


def _expand_dir(path: str) -> list[str]:
    try:
        names = sorted(os.listdir(path))
    except PermissionError:
        raise InputError(path, "permission denied") from None
    found = [os.path.join(path, n) for n in names if formats.is_input_name(n)]
    found = [p for p in found if os.path.isfile(p)]
    if not found:
        raise InputError(path, f"no input files in directory ({DIRECTORY_NAMES})")
    return found


def expand_inputs(paths: list[str]) -> list[str]:
    """Turn command-line arguments into the list of inputs to read, in order.

    `-` stays `-` (stdin). A directory becomes its input files (non-recursive, sorted by name).
    A pattern the shell did not expand (quoted, or run from a non-shell) is globbed here.
    Every problem that can be seen before reading raises `InputError`, so a typo fails the run
    before anything is sent rather than after the first file.
    """
    out: list[str] = []
    for arg in paths:
        if arg == STDIN:
            out.append(arg)
            continue
        if not os.path.lexists(arg) and _GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg))
            if not matches:
                raise InputError(arg, "no such file (the pattern matched nothing)")
        else:
            matches = [arg]
        for path in matches:
            if os.path.isdir(path):
                out.extend(_expand_dir(path))
            else:
                _check_file(path)
                out.append(path)
    return out


def check_input(path: str) -> None:
    """Open the file and look at its first bytes; raise `InputError` if it cannot be read.

    Gzip is recognised by its magic bytes, not by the name: a `.gz` name without the magic is
    an error (probably a mislabelled or half-written file), magic without the name is fine. A
    file that is not text (Avro, ORC, Excel, zip, other binary: `formats.unreadable`) is
    refused here, before anything is sent. An empty file passes: whether that is an error is
    the caller's decision (see `is_empty`). FIFOs and stdin are not touched, since peeking
    would consume their data.
    """
    if path == STDIN:
        return
    _check_file(path)
    if stat.S_ISFIFO(os.stat(path).st_mode):
        return
    try:
        with open(path, "rb") as f:
            head = f.read(formats.PROBE_BYTES)
            gzipped = head[:2] == GZIP_MAGIC
            if not gzipped:
                if path.endswith(".gz") and head:
                    raise InputError(path, "not a gzip file (named .gz but no gzip magic 1f 8b)")
            else:
                f.seek(0)
                head = _gunzip_head(f, path)
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as e:
        raise os_error(path, e) from None
    refusal = formats.unreadable(head, path, gzipped)
    if refusal is not None:
        raise RefusedInput(path, f"{refusal}; nothing was sent")


def _gunzip_head(f: Any, path: str) -> bytes:
    """The first decompressed bytes; a stream that breaks after some is reported later, by the
    reader, after the records before the break (one that yields nothing is refused here)."""
    head = b""
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as gz:
            while len(head) < formats.PROBE_BYTES:
                data = gz.read1(formats.PROBE_BYTES - len(head))
                if not data:
                    break
                head += data
    except (EOFError, OSError, zlib.error) as e:
        if not head:
            raise InputError(path, f"bad gzip header or data: {e}") from None
    return head


def any_tabular(paths: list[str], fmt: str | None) -> bool:
    """Whether any input is CSV, TSV or Parquet (by `--format`, else its first bytes and name):
    then a flat record set aside keeps its source row as an object. Standard input is not
    looked at (that would consume it); an input that cannot be read is for the run to report."""
    if fmt is not None:
        return fmt in ("csv", "tsv", "parquet")
    for path in expand_inputs(paths):
        if path == STDIN or stat.S_ISFIFO(os.stat(path).st_mode):
            continue
        try:
            with open(path, "rb") as f:
                head = f.read(formats.PROBE_BYTES)
                if head[:2] == GZIP_MAGIC:
                    f.seek(0)
                    head = _gunzip_head(f, path)
        except (OSError, InputError):
            continue
        if head[:4] == formats.PARQUET_MAGIC or formats.text_format(head, path) in ("csv", "tsv"):
            return True
    return False


def is_empty(path: str) -> bool:
    """True if the input holds no record at all: no bytes, only whitespace (after a BOM), an
    empty JSON array, a CSV/TSV header without rows, or a Parquet file of 0 rows; plain or
    gzipped. Each is what a failed or empty export leaves, and each
    reads as zero records, so they are refused alike rather than a 0-byte file failing and a
    file of one newline passing.

    Only the first EMPTY_PROBE_BYTES are looked at (decompressed): a bigger input is taken to
    hold something. Stdin and FIFOs cannot be checked without consuming them, so they count as
    not empty.
    """
    if path == STDIN:
        return False
    try:
        st = os.stat(path)
        if stat.S_ISFIFO(st.st_mode):
            return False
        if st.st_size == 0:
            return True
        with open(path, "rb") as f:
            head = f.read(EMPTY_PROBE_BYTES + 1)
            if head[:2] == GZIP_MAGIC:
                f.seek(0)
                with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                    head = gz.read(EMPTY_PROBE_BYTES + 1)
    except (EOFError, OSError, zlib.error):
        return False
    if head[:4] == formats.PARQUET_MAGIC:
        return _parquet_rows(path) == 0
    if len(head) > EMPTY_PROBE_BYTES:
        return False
    if formats.text_format(head, path) in ("csv", "tsv"):  # a header and no row
        return len([line for line in head.split(b"\n") if line.strip(WS)]) <= 1
    text = head.removeprefix(BOM).strip(WS)  # JSON's whitespace: a form feed is not
    if text[:1] == b"[" and text[-1:] == b"]":
        text = text[1:-1].strip(WS)
    return text == b""


def _parquet_rows(path: str) -> int | None:
    """The row count in a Parquet file's footer; None if it has no readable footer (the reader
    says why)."""
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # pyarrow raises several types for a bad footer; the reader reports it
        return None


def file_identity(path: str, head_len: int = HEAD_BYTES) -> dict[str, Any]:
    """What a later incremental run needs to tell "same file, grown" from "a different file".

    `head_sha` is the sha256 of the first `head_len` bytes (fewer if the file is shorter;
    `head_len` in the result says how many). To compare with an identity taken when the file
    was shorter than 4 KiB, take the new one with `head_len=old["head_len"]` (see `same_file`).
    """
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(head_len)
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    identity = {
        "device": st.st_dev,
        "inode": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "head_len": len(head),
        "head_sha": hashlib.sha256(head).hexdigest(),
    }
    if head[:4] == formats.PARQUET_MAGIC:
        identity["parquet"] = True  # its footer is at the end: it never grows, it is rewritten
    return identity


def same_file(
    old: dict[str, Any], new: dict[str, Any]
) -> Literal["same", "grown", "replaced", "truncated"]:
    """Compare two `file_identity` results of the same path.

    A different device/inode or a different head means another file now has the name
    ("replaced"); a smaller size means it was cut ("truncated"); a larger size with the same
    head means appended to ("grown"). Heads are compared only over the same length, so take
    `new` with `head_len=old["head_len"]` when the old file was shorter than 4 KiB; with
    unequal lengths the head cannot be compared and only inode and size decide. A Parquet file
    of another size was rewritten (its footer is at its end), never grown. The mtime is not
    used: `touch` alone must not trigger a re-import.
    """
    if (old["device"], old["inode"]) != (new["device"], new["inode"]):
        return "replaced"
    if new.get("parquet") and new["size"] != old["size"]:
        return "replaced"
    if new["size"] < old["size"]:
        return "truncated"
    if old.get("head_len") == new.get("head_len") and old["head_sha"] != new["head_sha"]:
        return "replaced"
    return "grown" if new["size"] > old["size"] else "same"


def compare_identity(
    old: dict[str, Any], path: str
) -> tuple[Literal["same", "grown", "replaced", "truncated"], dict[str, Any]]:
    """`same_file` done right for a path: the verdict and the identity to store from now on.

    The one place that decides whether a known file is still the file (`--state` asks it).
    The head is compared over the old identity's length, so a file that was shorter than
    4 KiB last time is still checked for having been rewritten, not taken for "grown"; the
    file is read a second time only then.
    """
    new = file_identity(path)
    head_len = old.get("head_len")
    if head_len is None or head_len == new["head_len"]:
        return same_file(old, new), new
    return same_file(old, file_identity(path, head_len=head_len)), new


FINGERPRINT_BLOCK = 4096
FINGERPRINT_SAMPLES = 8


def content_fingerprint(path: str, offset: int) -> dict[str, Any] | None:
    """A cheap fingerprint of the first `offset` bytes of a file's (decompressed) stream.

    Why: a warehouse job that rewrites its export (a temp file, then `mv`) gives the path a new
    inode; if the rows before the watermark are the same, the file has only grown. Comparing
    every byte would cost a read of the whole file per run, so this hashes 4 KiB blocks at
    `FINGERPRINT_SAMPLES` evenly spread places plus the last block before `offset` (where an
    edit of the latest rows would show). Gzip is fingerprinted on the decompressed stream (a
    re-compressed file has other bytes for the same rows), which means decompressing up to
    `offset`. None when the stream is shorter than `offset` (it cannot be the same content),
    and for Parquet, whose watermark counts rows, not bytes: a rewritten Parquet file is
    replaced, never re-exported (its bytes before a row say nothing of the rows).
    """
    starts = {min(k * offset // FINGERPRINT_SAMPLES, offset) for k in range(FINGERPRINT_SAMPLES)}
    starts.add(max(0, offset - FINGERPRINT_BLOCK))
    digest = hashlib.sha256(str(offset).encode())
    try:
        with open(path, "rb") as raw:
            magic = raw.read(4)
            if magic == formats.PARQUET_MAGIC:
                return None
            if magic[:2] == GZIP_MAGIC:
                raw.seek(0)
                stream: Any = gzip.GzipFile(fileobj=raw, mode="rb")
            else:
                stream = raw
            for start in sorted(starts):
                stream.seek(start)
                want = min(FINGERPRINT_BLOCK, offset - start)
                block = stream.read(want)
                if len(block) < want:
                    return None
                digest.update(start.to_bytes(8, "little") + block)
    except (EOFError, OSError, zlib.error):
        return None
    return {"offset": offset, "sha": digest.hexdigest()}


def check_resumable(paths: list[str]) -> None:
    """With --state every input must be a regular file: the journal resumes it at an offset and
    compares its identity on the next run, and neither exists for a stream.

    Decided from `stat` alone, never by opening: opening a FIFO blocks until a writer comes,
    and reading one would take the data from whoever reads it next (and kill a writer that
    then finds the pipe closed). `<(...)` passes `/dev/fd/N`, which is a pipe too.
    """
    for path in paths:
        if path == STDIN:
            raise UsageError("--state needs files: standard input cannot be resumed")
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise os_error(path, e) from None
        if not stat.S_ISREG(mode):
            kind = (
                "a pipe (a FIFO or a process substitution)"
                if stat.S_ISFIFO(mode)
                else ("not a regular file")
            )
            raise UsageError(
                f"--state needs files: {path} is {kind}, which cannot be resumed; send it "
                "without --state, or write it to a file first"
            )
