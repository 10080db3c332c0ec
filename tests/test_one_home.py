"""Rules with one home: the client and the sandbox cannot disagree because they ask one place.

Plain functions and the source tree; no server, no process.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from revbridge_cli.config.base_url import check_base_url
from revbridge_cli.errors import ConfigError
from revbridge_cli.loopback import is_loopback

PACKAGE = Path(__file__).resolve().parent.parent / "revbridge_cli"
# errors.py too: a leaf (it imports nothing of the package), so the sandbox's command ends
# its refusals with the hierarchy's exit codes and still stands alone.
SANDBOX_MAY_IMPORT = {"revbridge_cli.contract", "revbridge_cli.loopback", "revbridge_cli.errors"}


def _package_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {
        n
        for n in names
        if n.startswith("revbridge_cli") and not n.startswith("revbridge_cli.sandbox")
    }


def test_the_sandbox_imports_only_the_shared_rules() -> None:
    """docs/development.md's map: the sandbox stands alone but for the contract, the loopback
    rule and the exception hierarchy; and that hierarchy is a leaf, so allowing it brings
    nothing else."""
    files = sorted((PACKAGE / "sandbox").glob("*.py"))
    assert files
    for path in files:
        extra = _package_imports(path) - SANDBOX_MAY_IMPORT
        assert not extra, f"{path.name} imports {sorted(extra)}"
    assert _package_imports(PACKAGE / "errors.py") == set()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("::2", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_one_loopback_rule_for_the_key_and_the_sandbox(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    url = f"http://[{host}]" if ":" in host else f"http://{host}"
    if loopback:
        assert check_base_url(url) == url
    else:
        with pytest.raises(ConfigError, match="travel in clear"):
            check_base_url(url)
