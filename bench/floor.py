"""The floor: read the file and parse each line with orjson, nothing else.

No importer can beat this in Python, so the end-to-end rate is judged as a share of it. It runs
as its own process, like the contenders, so its wall time and peak RSS are measured the same way.

Usage: python bench/floor.py FILE   -> one JSON line {"events": ..., "seconds": ...}
"""

from __future__ import annotations

import json
import sys
import time

import orjson


def main() -> None:
    started = time.monotonic()
    loads = orjson.loads
    events = 0
    with open(sys.argv[1], "rb") as f:
        for line in f:
            loads(line)
            events += 1
    seconds = time.monotonic() - started
    sys.stdout.write(json.dumps({"events": events, "seconds": round(seconds, 3)}) + "\n")


if __name__ == "__main__":
    main()
