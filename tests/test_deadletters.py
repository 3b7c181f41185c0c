"""The admin page of dead outbox rows and its retry button."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.jobs import JOBS
from app.jobs.worker import run_due
from app.services import deadletters
from models import AuditEntry, OutboxItem, OutboxStatus
from tests.factories import make_dead, make_desk
from tests.staff_pages import csrf_of, sign_in

OPENID = "oABCDEFsecretpart"


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setitem(JOBS, "test.deliver", sent.append)
    return sent


def test_a_dead_row_shows_masked_and_retry_lets_the_worker_deliver_it(
    app: Flask, client: FlaskClient, delivered: list[dict[str, Any]]
) -> None:
    make_desk(app)
    item_id = make_dead(app, OPENID)
    sign_in(client, "admin")
    page = client.get("/review/outbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<tr data-id="{item_id}"' in html
    assert "test.deliver" in html and "43004 require subscribe" in html
    assert "oABCDE…" in html and OPENID not in html and "张三" not in html
    assert "submission_id=7" in html

    assert run_due(app) == 0  # dead rows are not picked up
    response = client.post(
        f"/review/outbox/{item_id}/retry", data={"csrf_token": csrf_of(client, "/review/outbox")}
    )
    assert response.status_code == 303
    with app.app_context():
        item = db.session.get(OutboxItem, item_id)
        assert item is not None and item.status == OutboxStatus.PENDING and item.attempts == 0
        audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "outbox_retry")).one()
        assert audit.target_id == item_id
    assert run_due(app) == 1
    assert delivered == [{"submission_id": 7, "openid": OPENID, "name": "张三", "outbox_id": item_id}]
    with app.app_context():
        item = db.session.get(OutboxItem, item_id)
        assert item is not None and item.status == OutboxStatus.DONE
    assert f'<tr data-id="{item_id}"' not in client.get("/review/outbox").get_data(as_text=True)


def test_retry_refuses_a_row_that_is_not_dead(app: Flask, client: FlaskClient) -> None:
    make_desk(app)
    item_id = make_dead(app, OPENID)
    with app.app_context():
        deadletters.retry(db.session, item_id, None)
        with pytest.raises(deadletters.DeadLetterError):
            deadletters.retry(db.session, item_id, None)
        with pytest.raises(deadletters.DeadLetterError):
            deadletters.retry(db.session, 999_999, None)
    sign_in(client, "admin")
    response = client.post(
        f"/review/outbox/{item_id}/retry", data={"csrf_token": csrf_of(client, "/review/outbox")}
    )
    assert response.status_code == 303
    assert "已不在失败列表中" in client.get("/review/outbox").get_data(as_text=True)


def test_retry_needs_csrf(app: Flask, client: FlaskClient) -> None:
    make_desk(app)
    item_id = make_dead(app, OPENID)
    sign_in(client, "admin")
    assert client.post(f"/review/outbox/{item_id}/retry").status_code == 400
    with app.app_context():
        item = db.session.get(OutboxItem, item_id)
        assert item is not None and item.status == OutboxStatus.DEAD


def test_a_reviewer_is_refused(app: Flask, client: FlaskClient) -> None:
    make_desk(app)
    item_id = make_dead(app, OPENID)
    sign_in(client, "rev-a")
    assert client.get("/review/outbox").status_code == 403
    token = csrf_of(client, "/review/")
    assert client.post(f"/review/outbox/{item_id}/retry", data={"csrf_token": token}).status_code == 403
    with app.app_context():
        item = db.session.get(OutboxItem, item_id)
        assert item is not None and item.status == OutboxStatus.DEAD


def test_signed_out_goes_to_login(client: FlaskClient) -> None:
    response = client.get("/review/outbox")
    assert response.status_code == 302 and "/review/login" in response.headers["Location"]
