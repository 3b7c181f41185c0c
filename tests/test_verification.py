"""The HTTP identity-verification provider against a real local HTTP server, and its settings.

The server below (the standard library's threading HTTP server on 127.0.0.1, port 0) is an
independent implementation of the contract in app/integrations/identity.py: it checks each
request's signature with its own code, not the module's, and answers as the test tells it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from settings_support import production_settings

from app.integrations.identity import (
    REASONS,
    HttpVerifier,
    UnavailableKind,
    VerificationOutcome,
    VerificationUnavailableError,
)
from app.sandbox.roster_verifier import SandboxRosterVerifier
from config import SettingsError, load_settings

KEY_ID = "key-2026"
SECRET = "provider-shared-secret-0123456789"
NUMBER = "11010519491231002X"
NAME = "阿依古丽·买买提"
PATH = "/v1/identity/verify?channel=wechat"


def _mac(secret: str, message: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Provider:
    """A fake provider: `mode` says how it answers the next requests."""

    url: str = ""
    mode: str = "match"
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    seen_nonces: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)

    def _check_signature(self, path: str, headers: Any, body: bytes) -> dict[str, Any] | None:
        authorization = headers.get("Authorization", "")
        match = re.fullmatch(r"HMAC-SHA256 KeyId=([^,\s]+), Signature=(\S+)", authorization)
        if not match or match[1] != KEY_ID:
            self.refused.append("authorization header")
            return None
        payload: dict[str, Any] = json.loads(body)
        digest = hashlib.sha256(body).hexdigest()
        signed = f"POST\n{path}\n{payload['timestamp']}\n{payload['nonce']}\n{digest}"
        if not hmac.compare_digest(_mac(SECRET, signed), match[2]):
            self.refused.append("signature")
            return None
        if abs(time.time() - payload["timestamp"]) > 300 or payload["nonce"] in self.seen_nonces:
            self.refused.append("replay")
            return None
        self.seen_nonces.add(payload["nonce"])
        return payload

    def _signed(self, body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> Reply:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = "n" + str(len(self.received))
        signature = _mac(secret, f"{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}")
        return Reply(200, body, {"X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": signature})

    def handle(self, path: str, headers: Any, body: bytes, port: int) -> Reply:
        self.received.append(
            {
                "path": path,
                "port": port,
                "content_type": headers.get("Content-Type"),
                "body": body,
                "request_id_header": headers.get("X-Request-ID"),
            }
        )
        payload = self._check_signature(path, headers, body)
        if payload is None:
            return Reply(401, b'{"error": "bad signature"}')
        mode = self.mode
        answer = {
            "request_id": payload["request_id"],
            "result": mode,
            "reason": "比对结果",
            "reference": "P-42",
        }
        if mode == "slow":
            self.release.wait(10)
            answer["result"] = "match"
        if mode in ("500", "429", "403"):
            return Reply(int(mode), b"nope")
        if mode == "redirect":
            return Reply(302, headers={"Location": "/elsewhere"})
        if mode == "garbage":
            return self._signed(b"<html>gateway says hello</html>")
        if mode == "huge":
            return self._signed(json.dumps({**answer, "result": "match", "pad": "x" * 70_000}).encode())
        if mode == "unsigned":
            return Reply(200, json.dumps({**answer, "result": "match"}).encode())
        if mode == "wrong_signature":
            return self._signed(json.dumps({**answer, "result": "match"}).encode(), secret="another-secret")
        if mode == "stale":
            stale = int(time.time()) - 3600
            return self._signed(json.dumps({**answer, "result": "match"}).encode(), timestamp=stale)
        if mode == "other_request_id":
            return self._signed(
                json.dumps({**answer, "result": "match", "request_id": "someone-else"}).encode()
            )
        if mode == "unknown_result":
            return self._signed(json.dumps({**answer, "result": "probably"}).encode())
        if mode == "not_an_object":
            return self._signed(b'["match"]')
        return self._signed(json.dumps(answer, ensure_ascii=False).encode())


def _handler_for(fake: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 with Content-Length keeps connections open, so reuse can be observed (werkzeug's
        # development server closes every connection).
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; without this, Nagle + delayed ACK add 40 ms per reply.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            reply = fake.handle(self.path, self.headers, body, self.client_address[1])
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hanging up on purpose (too large, timed out) is part of the tests


@pytest.fixture
def provider() -> Iterator[Provider]:
    fake = Provider()
    server = Server(("127.0.0.1", 0), _handler_for(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), name="fake-provider", daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def dropping_server() -> Iterator[str]:
    """Accepts a connection, reads the request, and closes the socket without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/verify"
    stop.set()
    thread.join()
    listener.close()


def _verifier(url: str, *, secret: str = SECRET, timeout: float = 5.0) -> HttpVerifier:
    return HttpVerifier(url, KEY_ID, secret, timeout)


# --- answers about the identity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [
        ("match", VerificationOutcome.MATCH),
        ("mismatch", VerificationOutcome.MISMATCH),
        ("not_found", VerificationOutcome.NOT_FOUND),
    ],
)
def test_the_providers_answer_is_mapped(provider: Provider, mode: str, outcome: VerificationOutcome) -> None:
    provider.mode = mode
    result = _verifier(provider.url).verify("resident_id", NUMBER, NAME)
    assert result.outcome is outcome
    assert result.matched is (outcome is VerificationOutcome.MATCH)
    assert result.reason == REASONS[outcome]
    assert (result.reference, result.provider, result.provider_reason) == ("P-42", "http", "比对结果")
    assert provider.refused == []


def test_the_request_is_signed_json_with_every_field(provider: Provider) -> None:
    _verifier(provider.url).verify("resident_id", NUMBER, NAME, request_id="sub-9-attempt-1")
    [received] = provider.received
    payload = json.loads(received["body"].decode("utf-8"))
    assert set(payload) == {"request_id", "doc_type", "id_number", "name", "timestamp", "nonce"}
    assert (payload["request_id"], payload["doc_type"], payload["id_number"], payload["name"]) == (
        "sub-9-attempt-1",
        "resident_id",
        NUMBER,
        NAME,
    )
    assert re.fullmatch(r"[0-9a-f]{32}", payload["nonce"])
    assert abs(payload["timestamp"] - time.time()) < 60
    assert received["content_type"] == "application/json; charset=utf-8"
    assert received["request_id_header"] == "sub-9-attempt-1"


def test_the_provider_refuses_a_request_signed_with_the_wrong_secret(provider: Provider) -> None:
    with pytest.raises(VerificationUnavailableError) as caught:
        _verifier(provider.url, secret="not-the-shared-secret").verify("resident_id", NUMBER, NAME)
    assert provider.refused == ["signature"]
    assert caught.value.kind is UnavailableKind.CONFIGURATION  # a 401: a person must fix the key


def test_connections_to_the_provider_are_reused(provider: Provider) -> None:
    verifier = _verifier(provider.url)
    for _ in range(3):
        verifier.verify("resident_id", NUMBER, NAME)
    ports = {r["port"] for r in provider.received}
    assert len(provider.received) == 3
    assert len(ports) == 1


# --- outages: never a mismatch ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("500", UnavailableKind.SERVER_ERROR),
        ("429", UnavailableKind.RATE_LIMITED),
        ("403", UnavailableKind.CONFIGURATION),
        ("redirect", UnavailableKind.CONFIGURATION),
        ("garbage", UnavailableKind.BAD_RESPONSE),
        ("not_an_object", UnavailableKind.BAD_RESPONSE),
        ("huge", UnavailableKind.BAD_RESPONSE),
        ("unknown_result", UnavailableKind.BAD_RESPONSE),
        ("other_request_id", UnavailableKind.BAD_RESPONSE),
        ("wrong_signature", UnavailableKind.BAD_SIGNATURE),
        ("unsigned", UnavailableKind.BAD_SIGNATURE),
        ("stale", UnavailableKind.BAD_SIGNATURE),
    ],
)
def test_a_failure_is_unavailable_and_retryable(provider: Provider, mode: str, kind: UnavailableKind) -> None:
    provider.mode = mode
    with pytest.raises(VerificationUnavailableError) as caught:
        _verifier(provider.url).verify("resident_id", NUMBER, NAME)
    assert caught.value.kind is kind
    assert caught.value.retryable
    assert len(provider.received) == 1  # the verifier does not retry by itself: the worker does, with backoff


def test_a_slow_answer_past_the_timeout_is_unavailable(provider: Provider) -> None:
    provider.mode = "slow"
    with pytest.raises(VerificationUnavailableError) as caught:
        _verifier(provider.url, timeout=0.2).verify("resident_id", NUMBER, NAME)
    assert caught.value.kind is UnavailableKind.TIMEOUT
    provider.release.set()


def test_a_dropped_connection_is_unavailable(dropping_server: str) -> None:
    with pytest.raises(VerificationUnavailableError) as caught:
        _verifier(dropping_server).verify("resident_id", NUMBER, NAME)
    assert caught.value.kind is UnavailableKind.CONNECTION


def test_a_refused_connection_is_unavailable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(VerificationUnavailableError) as caught:
        _verifier(f"http://127.0.0.1:{port}/verify").verify("resident_id", NUMBER, NAME)
    assert caught.value.kind is UnavailableKind.CONNECTION


def test_without_a_url_every_call_is_a_configuration_error() -> None:
    with pytest.raises(VerificationUnavailableError) as caught:
        _verifier("").verify("resident_id", NUMBER, NAME)
    assert caught.value.kind is UnavailableKind.CONFIGURATION


def test_no_log_line_carries_the_raw_number_or_name(
    provider: Provider, dropping_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    for mode in ("match", "mismatch", "not_found", "500", "403", "garbage", "wrong_signature", "slow"):
        provider.mode = mode
        try:
            _verifier(provider.url, timeout=0.2 if mode == "slow" else 5.0).verify(
                "resident_id", NUMBER, NAME
            )
        except VerificationUnavailableError as exc:
            errors.append(str(exc))
    provider.release.set()
    try:
        _verifier(dropping_server).verify("resident_id", NUMBER, NAME)
    except VerificationUnavailableError as exc:
        errors.append(str(exc))
    assert len(errors) == 6
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "outcome=mismatch" in logged
    assert "1101**********002X" in logged
    assert "kind=configuration" in logged
    assert any(r.levelno == logging.ERROR and "configuration error" in r.getMessage() for r in caplog.records)
    for text in (logged, *errors):
        assert NUMBER not in text
        assert NAME not in text
        assert NAME.split("·")[0] not in text


# --- settings and wiring --------------------------------------------------------------------------


@pytest.fixture
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SANDBOX", "APP_ENV", "VERIFY_PROVIDER", "VERIFY_HTTP_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def _production(**overrides: object) -> dict[str, object]:
    return production_settings(**{"VERIFY_HTTP_KEY_ID": KEY_ID, "VERIFY_HTTP_SECRET": SECRET, **overrides})


@pytest.mark.usefixtures("_clean_environment")
def test_the_sandbox_defaults_to_the_roster_and_otherwise_to_http() -> None:
    assert load_settings(SANDBOX=True).VERIFY_PROVIDER == "sandbox"
    assert load_settings(SANDBOX=False).VERIFY_PROVIDER == "http"
    assert load_settings(SANDBOX=True, VERIFY_PROVIDER="http").VERIFY_PROVIDER == "http"
    settings = load_settings(**_production())
    assert (settings.VERIFY_PROVIDER, settings.VERIFY_TIMEOUT_SECONDS) == ("http", 5.0)


@pytest.mark.usefixtures("_clean_environment")
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"VERIFY_PROVIDER": "ldap"}, "VERIFY_PROVIDER"),
        ({"VERIFY_PROVIDER": "sandbox", "SANDBOX": False}, "VERIFY_PROVIDER=sandbox needs SANDBOX=1"),
        ({"VERIFY_HTTP_URL": "verify.example.com"}, "VERIFY_HTTP_URL"),
        ({"VERIFY_TIMEOUT_SECONDS": "0"}, "VERIFY_TIMEOUT_SECONDS"),
        ({"VERIFY_TIMEOUT_SECONDS": "600"}, "VERIFY_TIMEOUT_SECONDS"),
    ],
)
def test_a_wrong_verification_setting_is_named(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**overrides)


@pytest.mark.usefixtures("_clean_environment")
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"SANDBOX": True, "WECHAT_APPID": "wx-sandbox-app"}, "must not use VERIFY_PROVIDER=sandbox"),
        (
            {"SANDBOX": True, "WECHAT_APPID": "wx-sandbox-app", "VERIFY_PROVIDER": "sandbox"},
            "must not use VERIFY_PROVIDER=sandbox",
        ),
        ({"VERIFY_HTTP_URL": ""}, "needs VERIFY_HTTP_URL"),
        ({"VERIFY_HTTP_URL": "http://verify.example.com/v1"}, "https://"),
        ({"VERIFY_HTTP_SECRET": ""}, "VERIFY_HTTP_SECRET"),
        ({"VERIFY_HTTP_SECRET": "short"}, "VERIFY_HTTP_SECRET"),
        ({"VERIFY_HTTP_KEY_ID": ""}, "VERIFY_HTTP_KEY_ID"),
    ],
)
def test_production_refuses_an_unsafe_verifier(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**_production(**overrides))


def test_the_app_builds_the_configured_http_verifier(app_factory: Any, provider: Provider) -> None:
    app = app_factory(
        VERIFY_PROVIDER="http",
        VERIFY_HTTP_URL=provider.url,
        VERIFY_HTTP_KEY_ID=KEY_ID,
        VERIFY_HTTP_SECRET=SECRET,
        VERIFY_TIMEOUT_SECONDS=1.5,
    )
    from app.integrations import identity_verifier

    with app.app_context():
        built = identity_verifier()
        assert isinstance(built, HttpVerifier)
        assert built.timeout == (1.5, 1.5)
        assert isinstance(built.session, requests.Session)
        provider.mode = "mismatch"
        assert built.verify("passport", "E12345678", "ZHANG SAN").outcome is VerificationOutcome.MISMATCH


def test_the_sandbox_app_builds_the_roster_verifier(app_factory: Any) -> None:
    app = app_factory()
    assert isinstance(app.extensions["verifier"], SandboxRosterVerifier)
