"""A database session that cannot write, for the handlers registered read-only.

Their replies may be computed before the message is claimed for dedupe and computed again by
a copy of the message, so they must change nothing; this makes that a property of what they are
given rather than of their care. Two locks:

- `ReadOnlySession` refuses to flush: an added, changed or deleted object never reaches SQL, so
  `commit()` with pending changes raises too (and with the outbox being rows, no job is enqueued);
- its engine is the app's engine (the same connection pool) with a statement guard: anything
  other than a single SELECT is refused before it reaches the database, whether it comes from the
  ORM, Core (`insert()`, `text()`) or `exec_driver_sql`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker


class WriteRefusedError(RuntimeError):
    """Something tried to write through a read-only session."""


class ReadOnlySession(Session):
    """A session whose flushes are refused (see the module docstring)."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, flush_context: Any, instances: Any) -> None:
    raise WriteRefusedError("this session is read-only: nothing may be added, changed or deleted")


def _only_select(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    sql = statement.lstrip().rstrip("; \n\t")
    # WITH is refused too: PostgreSQL runs data-modifying statements inside a CTE.
    if executemany or not sql[:6].upper() == "SELECT" or ";" in sql:
        raise WriteRefusedError(f"read-only connection: refused {sql[:40]!r}")


def sessions(engine: Engine) -> sessionmaker[ReadOnlySession]:
    """Read-only sessions on `engine`'s connection pool."""
    # An Engine made by execution_options() shares the pool, and events added to it stay its own:
    # the app's other sessions do not pay for the guard.
    guarded = engine.execution_options(read_only=True)
    event.listen(guarded, "before_cursor_execute", _only_select)
    return sessionmaker(bind=guarded, class_=ReadOnlySession, expire_on_commit=False)
