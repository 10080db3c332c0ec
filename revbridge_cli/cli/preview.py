"""`validate --show N`: the first records of the inputs exactly as they would be sent.

A separate short pass over the first records with the run's own reader and shaping (mapping,
timestamps, nulls and all), so a mapping can be tried on a file before any send without the
run having to know about it. Each record prints as one JSON line: the user object it makes
(for that record alone: a send groups a user's records into one), or why it is set aside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import orjson

from revbridge_cli.config.settings import SendSettings
from revbridge_cli.input import reader
from revbridge_cli.shape.parts import Invalid, ProfileUpdate, UserPart, shape


def preview(settings: SendSettings, count: int) -> Iterator[str]:
    """Up to `count` lines, one per record read, in input order."""
    options = dataclasses.replace(settings.shape, near_miss=None)  # the run counts those
    shown = 0
    for file_no, path in enumerate(reader.expand_inputs(settings.inputs)):
        if path == reader.STDIN:
            continue  # the run reads it; a preview would consume it
        try:
            for record in reader.Reader(path, settings.fmt):
                where = f"{record.source}:{record.line}"
                items: list[UserPart | ProfileUpdate | Invalid]
                if record.error is not None:
                    items = [Invalid(record.error, raw=record.raw)]
                else:
                    items = list(shape(record.value, (file_no, record.line, 0), options))
                for item in items:
                    line: dict[str, object]
                    if isinstance(item, Invalid):
                        line = {"source": where, "set_aside": item.message}
                    elif isinstance(item, ProfileUpdate):
                        line = {"source": where, "profile_update": item.as_user()}
                    else:
                        line = {"source": where, "user": item.as_user()}
                    yield orjson.dumps(line).decode()
                shown += 1
                if shown >= count:
                    return
        except reader.InputError:
            continue  # the run reports it
