"""A local stand-in for the RevBridge Events API, for tests and for rehearsing imports.

`Sandbox` runs the server from Python; `Faults` describes the outages it can fake. The command
line (`revbridge sandbox`) is in `cli.py`; docs/sandbox.md explains both.
"""

from revbridge_cli.sandbox.faults import Faults
from revbridge_cli.sandbox.runner import Sandbox

__all__ = ["Faults", "Sandbox"]
