from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_fails_when_redis_is_down(app_factory: Any) -> None:
    app = app_factory()

    class Down:
        def ping(self) -> None:
            raise ConnectionError("down")

    app.extensions["redis"] = Down()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"] == "unreachable"
    assert response.json["checks"]["database"] == "ok"


def test_request_id_is_echoed_and_generated(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc123"}).headers["X-Request-ID"] == "abc123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(app_factory: Any) -> None:
    from flask import request

    app = app_factory(PROXY_HOPS=1)

    @app.get("/_test/addr")
    def addr() -> str:
        return request.remote_addr or ""

    client = app.test_client()
    seen = client.get(
        "/_test/addr", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    )
    assert seen.text == "203.0.113.7"
    direct = app_factory()

    @direct.get("/_test/addr")
    def addr_direct() -> str:
        return request.remote_addr or ""

    spoofed = direct.test_client().get(
        "/_test/addr", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    )
    assert spoofed.text == "10.0.0.2"  # without a trusted proxy the header is ignored
