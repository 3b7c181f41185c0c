"""Handlers registered read-only may be answered before a message is claimed, and again for each copy
of it: they must be unable to write, whatever they try (app/wechat/read_only.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pay_students import student
from sqlalchemy import func, insert, select, text, update
from wechat_posts import WeChat, event_message, message, text_message
from wechatpy import parse_message

from app.extensions import db
from app.integrations import redis_client
from app.services import outbox
from app.wechat import answering
from app.wechat.read_only import WriteRefusedError
from app.wechat.security import message_fields, parse_envelope
from models import Base, User
from wechat_handlers import registry


def rows(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def xml_for(key: registry.Key, openid: str) -> str:
    """A message that the registry routes by `key`."""
    msg_type, event, word = key
    if msg_type == "text":
        return text_message(openid, word or "随便说点")
    if msg_type == "event":
        return event_message(openid, event or "something_new", word)
    return message(openid, msg_type or "voice", MediaId="m-1", Format="amr")


READ_ONLY_KEYS = sorted(
    (key for key, handler in registry.HANDLERS.items() if handler in registry.READ_ONLY),
    key=repr,
)


def test_the_keyword_menu_and_link_handlers_are_read_only() -> None:
    # What makes /wechat's common messages one Redis round trip: if these lost read_only, the
    # test below would silently cover less.
    names = {registry.HANDLERS[key].__name__ for key in READ_ONLY_KEYS}
    assert {"handle_help", "handle_bind", "handle_progress", "handle_fee", "handle_status_click"} <= names
    # Texts no keyword answers are kept for staff: written once, after the claim.
    assert "handle_subscribe" not in names and "handle_image" not in names and "handle_text" not in names


@pytest.mark.parametrize("key", READ_ONLY_KEYS, ids=repr)
def test_every_read_only_handler_changes_nothing(app: Flask, key: registry.Key) -> None:
    with app.app_context():
        student("o-known")  # bound, linked, a photo: progress reads every joined table
        db.session.add(User(openid="o-operator", subscribed=True, is_operator=True))
        db.session.commit()
    before, keys_before = rows(app), _redis_keys(app)
    for openid in ("o-known", "o-operator", "o-unknown"):
        xml = xml_for(key, openid)
        with app.app_context():
            msg = parse_message(xml)
            assert registry.route(msg, message_fields(parse_envelope(xml))).handler is registry.HANDLERS[key]
            ctx = answering.read_only_context(app.config["SETTINGS"])
            try:
                registry.HANDLERS[key](msg, ctx)  # type: ignore[arg-type]
            finally:
                ctx.close()
        assert not hasattr(ctx, "cache")  # no Redis to write to
    assert rows(app) == before
    assert _redis_keys(app) == keys_before


def _orm_commit(ctx: Any) -> None:
    ctx.session.add(User(openid="o-written"))
    ctx.session.commit()


def _core_insert(ctx: Any) -> None:
    ctx.session.execute(insert(User).values(openid="o-written", subscribed=True, is_operator=False))
    ctx.session.commit()


def _core_update(ctx: Any) -> None:
    ctx.session.execute(update(User).values(subscribed=False))
    ctx.session.commit()


def _raw_sql(ctx: Any) -> None:
    ctx.session.connection().exec_driver_sql("DELETE FROM users")
    ctx.session.commit()


def _text_with_select_first(ctx: Any) -> None:
    ctx.session.execute(text("SELECT 1; DELETE FROM users"))
    ctx.session.commit()


def _enqueue_a_job(ctx: Any) -> None:
    outbox.enqueue(ctx.session, "wechat.send_text", {"openid": "o-known", "text": "hi"}, key="read-only")
    ctx.session.commit()


def _engine_directly(ctx: Any) -> None:
    with ctx.session.get_bind().begin() as conn:
        conn.execute(update(User).values(subscribed=False))


WRITES = [
    _orm_commit,
    _core_insert,
    _core_update,
    _raw_sql,
    _text_with_select_first,
    _enqueue_a_job,
    _engine_directly,
]


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("age", [0, 5], ids=["answered-first", "claimed-first"])
def test_a_writing_handler_registered_read_only_cannot_write(
    client: FlaskClient,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    write: Callable[[Any], None],
    age: int,
) -> None:
    wx = WeChat.for_app(app)
    _post(client, wx, event_message("o-known", "subscribe"))  # a follower: nothing to record
    before = rows(app)
    refused: list[BaseException] = []

    def writing(msg: Any, ctx: registry.ReadOnlyContext) -> registry.Reply:
        try:
            write(ctx)
        except Exception as exc:
            refused.append(exc)
            raise
        return "written"

    monkeypatch.setitem(registry.HANDLERS, ("text", None, None), writing)
    monkeypatch.setattr(registry, "READ_ONLY", registry.READ_ONLY | {writing})
    # A post `age` seconds after its CreateTime: fresh ones are answered first, late ones claimed.
    xml = text_message("o-known", "随便说点", create_time=int(time.time()) - age)
    with caplog.at_level(logging.ERROR, logger="app.wechat.answering"):
        response = _post(client, wx, xml)
    assert (response.status_code, response.data) == (200, b"success")
    assert len(refused) == 1 and isinstance(_root(refused[0]), WriteRefusedError)
    assert any(r.message == "wechat handler failed" for r in caplog.records)
    assert rows(app) == before


def _redis_keys(app: Flask) -> int:
    with app.app_context():
        return int(redis_client().dbsize())


def _post(client: FlaskClient, wx: WeChat, xml: str) -> Any:
    signed = wx.post(xml)
    return client.post(signed.path, data=signed.body, content_type="text/xml")


def _root(exc: BaseException) -> BaseException:
    # SQLAlchemy wraps what an event listener raises during execution.
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc
