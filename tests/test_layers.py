"""The layer rules, read from the source's imports (every import, also those inside functions).

    transport (views, WeChat handlers, jobs, commands) → services → models / media

- models import nothing above them (no app, media, handlers or settings);
- media is pure image code: no Flask, no models, no app code;
- services import no blueprint package, handler, job, command or sandbox module;
- jobs import no handler;
- nothing but the app factory (app/__init__.py) imports the sandbox, which plays WeChat's side, and
  the sandbox imports none of the clients it stands in for.

A rule broken here is found by this test, not by the next reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("app", "models", "media", "wechat_handlers")

BLUEPRINTS = ("app.api", "app.auth", "app.h5", "app.review", "app.wechat", "app.pay", "app.ops", "app.links")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: str) -> set[str]:
    """Every module `source` (a module of `package`) imports, absolute; `from x import y` gives x and x.y."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(_imports(path))
        if _within(name, forbidden)
    ]


def test_the_rules_see_imports_inside_functions_and_relative_ones() -> None:
    source = "import os\n\ndef f():\n    from ..sandbox import pay\n    import app.jobs.worker\n"
    found = _imports_in(source, "app.services")
    assert found == {"os", "app.sandbox", "app.sandbox.pay", "app.jobs.worker"}
    assert [n for n in sorted(found) if _within(n, ("app.sandbox", "app.jobs"))] == [
        "app.jobs.worker",
        "app.sandbox",
        "app.sandbox.pay",
    ]
    assert not _within("app.sandboxed", ("app.sandbox",))


@pytest.mark.parametrize(
    ("layer", "files", "forbidden"),
    [
        ("models", _files("models"), ("app", "media", "wechat_handlers", "config", "flask")),
        (
            "media",
            _files("media"),
            ("flask", "flask_sqlalchemy", "models", "app", "wechat_handlers", "config"),
        ),
        (
            "services",
            _files("app/services"),
            (*BLUEPRINTS, "app.sandbox", "app.jobs", "app.commands", "wechat_handlers"),
        ),
        ("jobs", _files("app/jobs"), ("wechat_handlers", "app.sandbox")),
    ],
)
def test_layer_imports_point_down(layer: str, files: list[Path], forbidden: tuple[str, ...]) -> None:
    assert files, f"no source found for {layer}"
    assert _violations(files, forbidden) == []


def test_only_the_factory_imports_the_sandbox() -> None:
    outside = [
        p
        for p in _files(*SOURCE)
        if not _within(_module_name(p), ("app.sandbox",)) and p != ROOT / "app" / "__init__.py"
    ]
    outside += [ROOT / "config.py", ROOT / "wsgi.py"]
    assert _violations(outside, ("app.sandbox",)) == []


def test_the_sandbox_imports_no_client_it_stands_in_for() -> None:
    # The emulator restates WeChat's contract (bill columns, keys) instead of importing the clients it
    # stands in for, so a wrong definition cannot pass on both sides. Allowed: the app's Redis, and the
    # identity verifier's interface types, which the sandbox's roster verifier implements.
    allowed = ("app.integrations.redis_client", "app.integrations.identity")
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _files("app/sandbox")
        for name in sorted(_imports(path))
        if _within(name, ("app.integrations",)) and name != "app.integrations" and not _within(name, allowed)
    ]
    assert offenders == []


def test_no_test_module_imports_another() -> None:
    # Shared helpers live in factories and support modules, so that a test module can be renamed,
    # split or deleted without breaking another.
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for name in sorted(_imports(path))
        if any(part.startswith("test_") for part in name.split("."))
    ]
    assert offenders == []
