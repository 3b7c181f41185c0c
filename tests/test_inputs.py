"""One rule for numbers and ids from requests: ASCII digits only, ids within the database's range.

Runs through HTTP against the app; on PostgreSQL (CI) an id of 2³¹ reached the database and failed
there ("value out of range for type integer": a 500) before the rule.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.inputs import MAX_ROW_ID, ascii_int, row_id
from tests.factories import make_desk, sign_in_student
from tests.staff_pages import sign_in

TOO_BIG = MAX_ROW_ID + 1  # 2147483648


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1700000000", 1700000000),
        ("²³", None),
        ("٣", None),
        ("１２", None),
        ("-1", None),
        ("1e3", None),
        (" 12", None),
        ("", None),
        (None, None),
        ("9" * 19, None),
    ],
)
def test_ascii_int(text: str | None, expected: int | None) -> None:
    assert ascii_int(text) == expected


def test_row_id_range() -> None:
    found = [row_id(v) for v in ("1", str(MAX_ROW_ID), str(TOO_BIG), "0", "x")]
    assert found == [1, MAX_ROW_ID, None, None, None]


def _student(app: Flask, client: FlaskClient) -> str:
    from app.extensions import db
    from app.services import users

    with app.app_context():
        user_id = users.get_or_create(db.session, "o-inputs").id
        db.session.commit()
    return sign_in_student(app, client, user_id)


def test_out_of_range_ids_in_the_api_are_not_found_or_invalid(app: Flask, client: FlaskClient) -> None:
    token = _student(app, client)
    headers = {"X-CSRFToken": token}
    for path in (f"/api/v1/me/submissions/{TOO_BIG}", f"/api/v1/me/submissions/{TOO_BIG}/qr.png"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/api/v1/me/submissions/{TOO_BIG}/refresh", headers=headers).status_code == 404
    assert client.get("/api/v1/me/submissions/٣").status_code == 404  # not ASCII digits
    created = client.post("/api/v1/me/submissions", json={"photo_id": TOO_BIG}, headers=headers)
    assert created.status_code == 422
    assert created.get_json()["errors"][0]["field"] == "photo_id"
    linked = client.put("/api/v1/me/enrollment", json={"batch_id": TOO_BIG}, headers=headers)
    assert linked.status_code == 422
    assert linked.get_json()["errors"][0] == {"field": "batch_id", "message": "超出允许的范围"}


def test_out_of_range_ids_on_the_staff_pages(app: Flask, client: FlaskClient) -> None:
    make_desk(app)
    sign_in(client, "admin")
    assert client.get(f"/review/submissions/{TOO_BIG}").status_code == 404
    csrf = _csrf(client)
    assert client.post(f"/review/submissions/{TOO_BIG}/claim", data={"csrf_token": csrf}).status_code == 404
    approve: Any = client.post("/review/batch-approve", data={"csrf_token": csrf, "ids": [str(TOO_BIG)]})
    assert approve.status_code < 500
    assert client.get(f"/review/export?batch={TOO_BIG}").status_code in (400, 404)
    for query in (f"school={TOO_BIG}", f"batch={TOO_BIG}", "school=²³"):
        assert client.get(f"/review/?{query}").status_code == 200, query


def _csrf(client: FlaskClient) -> str:
    from tests.staff_pages import csrf_of

    return csrf_of(client, "/review/")
