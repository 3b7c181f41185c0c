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
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert client.get("/healthz").headers["X-Request-ID"] != generated


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


def _gunicorn_settings(monkeypatch: Any, **env: str) -> dict[str, Any]:
    import runpy
    from pathlib import Path

    for name in ("REDIS_URL", "GUNICORN_REUSE_PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))


def test_gunicorn_settings_for_production_and_the_embedded_mode(monkeypatch: Any) -> None:
    production = _gunicorn_settings(monkeypatch, REDIS_URL="redis://redis:6379/0", WEB_CONCURRENCY="3")
    assert (production["workers"], production["worker_class"], production["threads"]) == (3, "gthread", 4)
    assert production["reuse_port"] is True  # the kernel spreads connections over the workers
    assert (
        _gunicorn_settings(monkeypatch, REDIS_URL="redis://r/0", GUNICORN_REUSE_PORT="0")["reuse_port"]
        is False
    )
    embedded = _gunicorn_settings(monkeypatch)  # REDIS_URL unset: memory://, one process
    assert (embedded["workers"], embedded["reuse_port"]) == (1, False)


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    page = client.post("/healthz")
    assert page.status_code == 405
    assert set(page.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    api = client.delete("/api/v1/me")
    assert api.status_code == 405
    assert "GET" in api.headers["Allow"]
    assert api.json["error"]["code"] == 405


def test_favicon_is_served_with_cache_headers(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert len(response.data) < 4096
    assert response.cache_control.public and response.cache_control.max_age == 86_400
    assert response.headers.get("ETag")
