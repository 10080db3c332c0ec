"""revbridge-cli: a bulk importer for the RevBridge Events API, and a local sandbox of it.

The command line (`revbridge send`) and the Python API below run the same code:

    from revbridge_cli import Connection, send_records
    result = send_records(records, connection=Connection.from_env())

docs/python-api.md documents the options and the result; `revbridge_cli.errors` holds
the exceptions, one family per exit code.
"""

from revbridge_cli.api import (
    Connection,
    Result,
    asend_files,
    asend_records,
    send_files,
    send_records,
)
from revbridge_cli.errors import (
    ConfigError,
    RevbridgeError,
    RunAborted,
    UsageError,
)
from revbridge_cli.version import __version__

__all__ = [
    "ConfigError",
    "Connection",
    "Result",
    "RevbridgeError",
    "RunAborted",
    "UsageError",
    "__version__",
    "asend_files",
    "asend_records",
    "send_files",
    "send_records",
]
