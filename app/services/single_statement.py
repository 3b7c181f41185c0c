"""One statement on the /wechat hot path, in one round trip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Executable, Row
from sqlalchemy.orm import Session, scoped_session


def first_row(
    session: Session | scoped_session[Session], statement: Executable, params: Mapping[str, Any]
) -> Row[Any] | None:
    """The first row of one statement that is consistent on its own (a single SELECT, or an INSERT
    … ON CONFLICT DO NOTHING). Outside a transaction it runs in autocommit — one round trip instead
    of BEGIN + statement + COMMIT/ROLLBACK (each round trip is ~0.2 ms of CPU on both sides), and a
    write is then already committed. Inside one it runs in the session's transaction, which may hold
    this request's uncommitted changes, and the caller commits. Either way it goes through the
    session's bind, so a read-only session's statement guard still applies."""
    if isinstance(session, scoped_session):
        session = session()
    bind = session.get_bind()
    if session.in_transaction() or not isinstance(bind, Engine):
        return session.execute(statement, params).first()
    with bind.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn.execute(statement, params).first()
