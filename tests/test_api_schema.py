"""The whole JSON API against its own OpenAPI document (schemathesis): every operation, generated input,
signed in as a student with a CSRF token, on the suite's database. No answer may be a 5xx, and every
answer must be one the document lists, in the shape it gives.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.extensions import db
from app.request_guards import NUL_MESSAGE
from app.services import users
from tests.conftest import TEST_SECRET_KEY
from tests.factories import sign_in_student


@pytest.fixture
def student(app: Flask) -> dict[str, Any]:
    """A signed-in student's cookie and CSRF header, made as the OAuth callback and the pages make them."""
    with app.app_context():
        user_id = users.get_or_create(db.session, "o-schema-student").id
        db.session.commit()
    client = app.test_client()
    token = sign_in_student(app, client, user_id)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return {"cookies": {cookie.key: cookie.value}, "headers": {"X-CSRFToken": token}}


def _as_student(client: FlaskClient, student: dict[str, Any]) -> FlaskClient:
    for name, value in student["cookies"].items():
        client.set_cookie(name, value)
    return client


# Not schemathesis's "schema-valid data is accepted": the service's rules refuse much that the schema
# allows (an ID number whose check digit is wrong, a batch that is closed) with a 422 naming the field.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the document, read from an app that touches no database."""
    app = create_app(APP_ENV="testing", SECRET_KEY=TEST_SECRET_KEY, DATABASE_URL="sqlite://")
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]


# schemathesis's own pytest plugin does not run under this pytest; its strategies, driven by
# hypothesis here, do the same.
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_answers_within_its_schema(
    app: Flask, student: dict[str, Any], method: str, path: str
) -> None:
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers(case: Any) -> None:
        case.call_and_validate(headers=student["headers"], cookies=student["cookies"], checks=CHECKS)

    answers()


def test_a_form_field_without_a_readable_name_is_refused_not_a_500(
    app: Flask, student: dict[str, Any]
) -> None:
    client = _as_student(app.test_client(), student)
    boundary = "b0undary"
    body = (
        # A line break inside the name: Werkzeug's parser gives the part the name None.
        f'--{boundary}\r\nContent-Disposition: form-data; name="x\r\ny"\r\n\r\ntrue\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"\r\n\r\nxx\r\n--{boundary}--\r\n'
    ).encode()
    response = client.post(
        "/api/v1/me/photos",
        data=body,
        headers={**student["headers"], "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == 400


def test_state_changing_calls_without_a_session_get_401_not_a_csrf_400(app: Flask) -> None:
    client = app.test_client()  # no session, so no CSRF token either
    calls = [
        ("POST", "/api/v1/identity/check", {"id_type": "resident_id"}),
        ("PUT", "/api/v1/me/identity", {}),
        ("DELETE", "/api/v1/me/identity", None),
        ("PUT", "/api/v1/me/enrollment", {"batch_id": 1}),
        ("POST", "/api/v1/me/photos", None),
        ("POST", "/api/v1/me/submissions", {"photo_id": 1}),
        ("POST", "/api/v1/me/submissions/1/refresh", None),
    ]
    for method, path, body in calls:
        response = client.open(path, method=method, json=body)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.get_json() == {"error": {"code": 401, "message": "请先登录"}}


def test_a_nul_character_or_a_bad_parameter_is_a_422_in_the_documented_shape(
    app: Flask, student: dict[str, Any], client: FlaskClient
) -> None:
    # PostgreSQL refuses NUL in text: schemathesis found /api/v1/schools?city=%00 answering 500.
    _as_student(client, student)
    found = client.get("/api/v1/schools?province=x&city=a%00b")
    assert found.status_code == 422
    assert found.get_json()["errors"] == [{"field": "city", "message": NUL_MESSAGE}]
    # Any other bad query parameter answers in the same, documented shape.
    bad = client.get("/api/v1/me/submissions/1?renew=abc")
    assert (bad.status_code, bad.get_json()) == (
        422,
        {"errors": [{"field": "renew", "message": "应为是或否"}]},
    )
    body = client.put("/api/v1/me/identity", json={"name": "张\u0000三"}, headers=student["headers"])
    assert body.status_code == 422
    page = client.post("/review/login", data={"username": "a\x00", "password": "x"})
    assert page.status_code == 400
    # In a query parameter of a page, also when only its name carries it.
    assert client.get("/review/login?next=a%00").status_code == 400
    assert client.get("/review/login?a%00=1").status_code == 400


def test_every_422_is_documented_in_the_shape_it_has(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    refs = {
        (method, path): op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "422" in op["responses"]
    }
    assert refs
    assert {ref.rsplit("/", 1)[-1].split(".")[0] for ref in refs.values()} == {"ValidationErrors"}
