"""Who may import the sandbox and the integrations, read from the source's import statements.

The app factory alone chooses between the WeChat emulator and the real services; the emulator restates
WeChat's contract instead of importing the clients it stands in for (otherwise a wrong definition would
pass on both sides).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> Iterator[str]:
    """Every module a file imports (absolute names; `from a import b` yields a and a.b)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_app_factory_imports_the_sandbox() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("app", "wechat_handlers", "media", "models")
        for path in _sources(folder)
        if path != ROOT / "app" / "__init__.py" and (ROOT / "app" / "sandbox") not in path.parents
        for name in _imports(path)
        if _within(name, "app.sandbox")
    ]
    assert offenders == []


def test_the_sandbox_imports_no_client_it_stands_in_for() -> None:
    # Allowed: the app's Redis, and the identity verifier's interface types (its roster verifier
    # implements that protocol). Not allowed: the WeChat, WeChat Pay or storage clients.
    allowed = {"app.integrations", "app.integrations.redis_client", "app.integrations.identity"}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources("app/sandbox")
        for name in _imports(path)
        if _within(name, "app.integrations")
        and name not in allowed
        and not name.startswith("app.integrations.identity.")
    ]
    assert offenders == []


def test_media_imports_no_flask_models_or_app_code() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources("media")
        for name in _imports(path)
        if any(_within(name, banned) for banned in ("flask", "models", "app", "config"))
    ]
    assert offenders == []
