"""Files the user names for configuration: the config file, key files, profile paths.

Profile loading and key reading share these so that they agree: `~` and a relative path mean
the same in both, and both nudge the same way about a file others can read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def permission_warning(path: str, mode: int, what: str) -> list[str]:
    """Group/other access to a file holding or pointing at credentials deserves a nudge."""
    if os.name != "posix" or not mode & 0o077:
        return []
    return [
        f"{what} {path} can be read by group or others (mode {mode & 0o777:04o}); "
        f"fix with: chmod 600 {path}"
    ]


def expand(path: str, env: Mapping[str, str], base_dir: Path | None = None) -> Path:
    """`~` from the given environment's HOME; relative paths against `base_dir` when given."""
    if (path == "~" or path.startswith("~/")) and env.get("HOME"):
        result = Path(env["HOME"]) / path[2:]
    else:
        result = Path(os.path.expanduser(path))
    if base_dir is not None and not result.is_absolute():
        result = base_dir / result
    return result
