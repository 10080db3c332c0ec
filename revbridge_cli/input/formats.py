"""Which format an input is in, and which files we refuse before anything is sent.

Content first where it is unambiguous (Parquet's magic, a JSON value's first byte), the name
otherwise, and a look at the first line last. A file that is not text at all (Avro, ORC, a
zip or Excel workbook, a database, any bytes text never holds) is named for what it looks like
and refused up front: read as lines it would become one rejected row per line of garbage.
"""

from __future__ import annotations

import re

from revbridge_cli.input.streams import BOM, WS, sniff_format

PARQUET_MAGIC = b"PAR1"
TEXT_FORMATS = ("ndjson", "json", "csv", "tsv")
FORMATS = (*TEXT_FORMATS, "parquet")
PROBE_BYTES = 4096
BINARY_SHARE = 0.02  # compressed or binary data: about 1 byte in 10 is a control byte

_JSON_NAMES = (".ndjson", ".jsonl", ".json")
_CSV_NAMES = (".csv",)
_TSV_NAMES = (".tsv", ".tab")
# Bytes no text format holds: C0 controls but tab, newline, form feed and carriage return.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"Obj\x01", "an Avro file"),
    (b"ORC", "an ORC file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (or another OLE2 document)"),
    (b"SQLite format 3\x00", "a SQLite database"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
    (b"%PDF", "a PDF document"),
)
_ADVICE = {
    "a zip archive": "unzip it and pass the files inside",
    "a bzip2 file": "decompress it first (bunzip2), or recompress with gzip",
    "an xz file": "decompress it first (unxz), or recompress with gzip",
    "a zstd file": "decompress it first (unzstd), or recompress with gzip",
    "UTF-16 text": "re-encode it as UTF-8, e.g. iconv -f utf-16 -t utf-8",
}
_DEFAULT_ADVICE = "export it as CSV, TSV, NDJSON, JSON or Parquet"


def base_name(name: str) -> str:
    """The name without `.gz`, lowercased: what the name says of the format inside."""
    low = name.lower()
    return low[:-3] if low.endswith(".gz") else low


def is_input_name(name: str) -> bool:
    """A name a directory input includes."""
    return base_name(name).endswith((*_JSON_NAMES, *_CSV_NAMES, *_TSV_NAMES, ".parquet"))


def unreadable(head: bytes, name: str, gzipped: bool = False) -> str | None:
    """Why the file cannot be read (the message, naming what it looks like), or None.

    `head` is the first bytes of the file, or of its decompressed stream when `gzipped`. The
    caller says what it means for the run (a path: nothing was sent; stdin: nothing of it read).
    """
    if head.startswith(PARQUET_MAGIC):
        if gzipped:
            return (
                "cannot read a gzip-compressed Parquet file: Parquet compresses its own "
                "columns, gunzip it and pass the .parquet file"
            )
        return None
    probe = head[:PROBE_BYTES]
    controls = len(_CONTROL.findall(probe))
    if not controls:
        return None  # text; a magic alone is not enough ("ORCID,..." is a CSV header)
    what = None
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            what = kind
            break
    if what is None and controls <= BINARY_SHARE * len(probe) and probe[:1] != b"\x00":
        return None  # text with a few bad bytes: those lines are set aside one by one
    if what == "a zip archive" and base_name(name).endswith((".xlsx", ".xlsm")):
        what = "an Excel workbook (.xlsx)"
    elif what is None:
        what = f"binary data, not text ({controls:,} control bytes in its first {len(probe):,})"
    advice = _ADVICE.get(what, _DEFAULT_ADVICE)
    return f"cannot read {what}: {advice}"


def text_format(head: bytes, name: str) -> str:
    """The format of a text input from its first bytes (BOM and blank lines skipped) and name.

    A JSON value's first byte decides between JSON and NDJSON (as before CSV was read); a
    `.csv` or `.tsv` name decides next, then a JSON name; a name that says nothing (stdin,
    `.txt`) leaves it to the first line: tabs make TSV, commas CSV, anything else NDJSON.
    """
    rest = (head[3:] if head.startswith(BOM) else head).lstrip(WS)
    if rest[:1] in (b"{", b"["):
        return sniff_format(head)
    base = base_name(name)
    if base.endswith(_CSV_NAMES):
        return "csv"
    if base.endswith(_TSV_NAMES):
        return "tsv"
    if base.endswith(_JSON_NAMES):
        return sniff_format(head)
    first = rest.split(b"\n", 1)[0]
    if b"\t" in first:
        return "tsv"
    if b"," in first:
        return "csv"
    return sniff_format(head)
