"""Every job kind that code enqueues is one the worker runs: named once, registered once."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from app.jobs import JOBS, load_jobs
from app.services.job_kinds import JobKind

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app", "wechat_handlers")


def test_every_kind_has_a_registered_job() -> None:
    load_jobs()
    # Other tests register throwaway kinds; only the application's own jobs count here.
    registered = {kind for kind, func in JOBS.items() if func.__module__.startswith("app.jobs.")}
    assert registered == {str(kind) for kind in JobKind}


def _kind_arguments() -> Iterator[tuple[str, ast.expr]]:
    """The kind argument of every `outbox.enqueue(...)` and `@job(...)` in the source, with its place."""
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                is_enqueue = (
                    isinstance(func, ast.Attribute)
                    and func.attr == "enqueue"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "outbox"
                )
                is_job = isinstance(func, ast.Name) and func.id == "job"
                if not (is_enqueue or is_job):
                    continue
                position = 1 if is_enqueue else 0
                kind = next((k.value for k in node.keywords if k.arg == "kind"), None)
                if kind is None and len(node.args) > position:
                    kind = node.args[position]
                assert kind is not None, f"{path.relative_to(ROOT)}:{node.lineno}: no kind"
                yield f"{path.relative_to(ROOT)}:{node.lineno}", kind


def test_code_names_kinds_from_the_kinds_module() -> None:
    found = list(_kind_arguments())
    assert len(found) > 10  # the scan sees the enqueues and registrations at all
    members = set(JobKind.__members__)
    for place, kind in found:
        if isinstance(kind, ast.Name):
            continue  # a parameter passed on (typed JobKind, which mypy checks)
        assert (
            isinstance(kind, ast.Attribute)
            and isinstance(kind.value, ast.Name)
            and kind.value.id == "JobKind"
            and kind.attr in members
        ), f"{place}: job kind must be a JobKind member, not {ast.unparse(kind)}"
