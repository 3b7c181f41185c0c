"""Staff on the review pages through HTTP: the form's CSRF token and signing in (accounts from
`factories.make_desk`, password STAFF_PASSWORD)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.factories import STAFF_PASSWORD

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: FlaskClient, path: str = "/review/login") -> str:
    found = CSRF_INPUT.search(client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


def sign_in(client: FlaskClient, username: str) -> None:
    response = client.post(
        "/review/login",
        data={"username": username, "password": STAFF_PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
