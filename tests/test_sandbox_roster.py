"""The sandbox's population register: its routes, through HTTP, and the verifier that reads it."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.integrations import identity_verifier, redis_client
from app.integrations.identity import (
    REASONS,
    UnavailableKind,
    VerificationOutcome,
    VerificationUnavailableError,
)
from app.sandbox import roster
from app.sandbox.roster_verifier import RemoteRosterVerifier, SandboxRosterVerifier

NUMBER = "11010519491231002X"  # GB 11643's own example, valid check digit
OTHER_NUMBER = "110105194912310037"
NAME = "阿依古丽·买买提"


def _add(client: FlaskClient, number: str = NUMBER, name: str = NAME, result: str = "mismatch") -> Any:
    response = client.post("/_sandbox/roster", json={"id_number": number, "name": name, "result": result})
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.get_json()


def _verify(app: Flask, number: str = NUMBER, name: str = NAME) -> Any:
    with app.app_context():
        return identity_verifier().verify("resident_id", number, name)


# --- routes -------------------------------------------------------------------------------------


def test_added_entries_are_listed_masked(client: FlaskClient) -> None:
    created = _add(client, result="not_found")
    assert created["created"] is True
    entry = created["entry"]
    assert entry["number_masked"] == "1101**********002X"
    assert (entry["name"], entry["result"], entry["result_label"]) == (NAME, "not_found", "查无此号")
    listed = client.get("/_sandbox/roster")
    assert listed.status_code == 200
    assert [e["entry_id"] for e in listed.get_json()["entries"]] == [entry["entry_id"]]
    assert NUMBER not in listed.get_data(as_text=True)
    assert NUMBER not in entry["entry_id"]


def test_the_raw_number_is_stored_nowhere_in_redis(app: Flask, client: FlaskClient) -> None:
    _add(client)
    with app.app_context():
        r = redis_client()
        _verify(app)
        assert r.hlen(roster.ROSTER) == 1
        stored = [roster.ROSTER, roster.CHECKS]
        assert set(r.keys("sandbox:roster*")) == {*stored, roster.ROSTER_KEY}
        dumped = str(r.hgetall(roster.ROSTER)) + str(r.lrange(roster.CHECKS, 0, -1))
    assert "1101**********002X" in dumped
    assert NUMBER not in dumped
    assert NUMBER[4:14] not in dumped


def test_posting_the_same_number_again_replaces_its_entry(client: FlaskClient) -> None:
    first = _add(client, number=NUMBER.lower(), result="mismatch")["entry"]
    response = client.post(
        "/_sandbox/roster", json={"id_number": f" {NUMBER} ", "name": "张三", "result": "match"}
    )
    assert response.status_code == 200
    second = response.get_json()
    assert second["created"] is False
    assert second["entry"]["entry_id"] == first["entry_id"]
    entries = client.get("/_sandbox/roster").get_json()["entries"]
    assert [(e["name"], e["result"]) for e in entries] == [("张三", "match")]


def test_delete_removes_one_entry_by_its_opaque_id(client: FlaskClient) -> None:
    keep = _add(client, number=OTHER_NUMBER)["entry"]["entry_id"]
    gone = _add(client)["entry"]["entry_id"]
    response = client.delete(f"/_sandbox/roster/{gone}")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": gone}
    assert [e["entry_id"] for e in client.get("/_sandbox/roster").get_json()["entries"]] == [keep]
    again = client.delete(f"/_sandbox/roster/{gone}")
    assert again.status_code == 404
    assert again.get_json()["error"]["message"] == "名单中没有这一条"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": NAME, "result": "match"}, "id_number", "请填写证件号码"),
        ({"id_number": 110105, "name": NAME, "result": "match"}, "id_number", "请填写证件号码"),
        ({"id_number": "12-34", "name": NAME, "result": "match"}, "id_number", "5–18 位"),
        ({"id_number": "1101051949123100!X", "name": NAME, "result": "match"}, "id_number", "5–18 位"),
        ({"id_number": NUMBER, "name": "  ", "result": "match"}, "name", "请填写姓名"),
        ({"id_number": NUMBER, "name": "长" * 61, "result": "match"}, "name", "姓名最多"),
        ({"id_number": NUMBER, "name": NAME, "result": "maybe"}, "result", "match、mismatch"),
        ({"id_number": NUMBER, "name": NAME}, "result", "核验结果"),
        (
            {"id_number": "110105194912310021", "name": NAME, "result": "match", "doc_type": "resident_id"},
            "id_number",
            "校验位",
        ),
        (
            {"id_number": NUMBER, "name": NAME, "result": "match", "doc_type": "library_card"},
            "doc_type",
            "证件类型",
        ),
    ],
)
def test_bad_input_is_refused_with_400_json(
    client: FlaskClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post("/_sandbox/roster", json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert field in [e["field"] for e in payload["errors"]]
    assert any(message in e["message"] for e in payload["errors"])
    assert payload["error"]["code"] == 400
    assert client.get("/_sandbox/roster").get_json()["entries"] == []


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_a_body_that_is_not_a_json_object_is_refused(client: FlaskClient, raw: bytes) -> None:
    response = client.post("/_sandbox/roster", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "body"


def test_a_valid_document_type_is_checked_and_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/_sandbox/roster",
        json={
            "id_number": "h12345678",
            "name": "陈大文",
            "result": "not_found",
            "doc_type": "hk_macao_permit",
        },
    )
    assert response.status_code == 201
    assert response.get_json()["entry"]["number_masked"] == "H1*****78"  # pii.mask_id_number's rule


def test_roster_routes_exist_only_in_the_sandbox(app_factory: Any) -> None:
    app = app_factory(SANDBOX=False, VERIFY_PROVIDER="http")
    assert app.test_client().get("/_sandbox/roster").status_code == 404


# --- the sandbox verifier -------------------------------------------------------------------------


def test_the_sandbox_app_uses_the_roster_verifier(app: Flask) -> None:
    assert isinstance(app.extensions["verifier"], SandboxRosterVerifier)


def test_an_identity_not_on_the_roster_matches(app: Flask, client: FlaskClient) -> None:
    _add(client, number=OTHER_NUMBER, result="not_found")
    result = _verify(app)
    assert result.outcome is VerificationOutcome.MATCH
    assert result.matched
    assert result.reason == REASONS[VerificationOutcome.MATCH]
    assert result.provider == "sandbox"
    assert result.reference.startswith("sandbox-")


def test_a_mismatch_entry_mismatches_that_name_and_a_corrected_name_then_matches(
    app: Flask, client: FlaskClient
) -> None:
    _add(client, result="mismatch")
    # The service stores names normalised; the roster compares the same way (dots, width, spaces).
    result = _verify(app, name="阿依古丽•买买提")
    assert result.outcome is VerificationOutcome.MISMATCH
    assert not result.matched
    assert "不一致" in result.reason
    assert _verify(app, name="阿依古丽·买买江").outcome is VerificationOutcome.MATCH


def test_a_match_entry_registers_the_name_so_another_name_mismatches(app: Flask, client: FlaskClient) -> None:
    _add(client, name="张三丰", result="match")
    assert _verify(app, name="张三丰").outcome is VerificationOutcome.MATCH
    assert _verify(app, name="张三").outcome is VerificationOutcome.MISMATCH


def test_a_not_found_entry_is_not_found_whatever_the_name(app: Flask, client: FlaskClient) -> None:
    _add(client, result="not_found")
    for name in (NAME, "张三"):
        result = _verify(app, name=name)
        assert result.outcome is VerificationOutcome.NOT_FOUND
        assert "未查到" in result.reason


@pytest.mark.parametrize(
    ("result", "kind"), [("error", UnavailableKind.SERVER_ERROR), ("timeout", UnavailableKind.TIMEOUT)]
)
def test_error_and_timeout_entries_raise_unavailable_never_a_mismatch(
    app: Flask, client: FlaskClient, result: str, kind: UnavailableKind
) -> None:
    _add(client, result=result)
    with pytest.raises(VerificationUnavailableError) as caught:
        _verify(app, name="张三")
    assert caught.value.kind is kind
    assert caught.value.retryable
    assert caught.value.provider == "sandbox"


def test_deleting_the_entry_makes_the_identity_match_again(app: Flask, client: FlaskClient) -> None:
    entry_id = _add(client, result="error")["entry"]["entry_id"]
    client.delete(f"/_sandbox/roster/{entry_id}")
    assert _verify(app).outcome is VerificationOutcome.MATCH


def test_each_check_is_recorded_masked_for_the_phone_page(app: Flask, client: FlaskClient) -> None:
    entry_id = _add(client, result="timeout")["entry"]["entry_id"]
    with app.app_context():
        result = identity_verifier().verify("resident_id", OTHER_NUMBER, "张三", request_id="sub-7-try-1")
        with pytest.raises(VerificationUnavailableError):
            identity_verifier().verify("resident_id", NUMBER, NAME)
    listed = client.get("/_sandbox/roster")
    checks = listed.get_json()["checks"]
    assert [(c["answer"], c["entry_id"]) for c in checks] == [("timeout", entry_id), ("match", None)]
    assert checks[1]["reference"] == result.reference == "sandbox-sub-7-try-1"
    assert checks[1]["number_masked"] == "1101**********0037"
    body = listed.get_data(as_text=True)
    assert NUMBER not in body
    assert OTHER_NUMBER not in body


def test_logs_carry_no_raw_number_or_name(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for result in ("mismatch", "error"):
        _add(client, result=result)
        try:
            _verify(app)
        except VerificationUnavailableError as exc:
            assert NUMBER not in str(exc)
            assert NAME not in str(exc)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "1101**********002X" in text
    assert NUMBER not in text
    assert NAME not in text


# --- the emulator in its own process: the same answers over HTTP ------------------------------------


@pytest.mark.parametrize(
    ("result", "name", "answer"),
    [
        (None, NAME, VerificationOutcome.MATCH),
        ("mismatch", NAME, VerificationOutcome.MISMATCH),
        ("match", "张三", VerificationOutcome.MISMATCH),
        ("not_found", NAME, VerificationOutcome.NOT_FOUND),
        ("error", NAME, UnavailableKind.SERVER_ERROR),
        ("timeout", NAME, UnavailableKind.TIMEOUT),
    ],
)
def test_the_remote_verifier_answers_as_the_roster_does(
    app: Flask, client: FlaskClient, live_server: Any, result: str | None, name: str, answer: Any
) -> None:
    if result:
        _add(client, result=result)
    remote = RemoteRosterVerifier(f"{live_server.url}/_sandbox", timeout=5)
    if isinstance(answer, UnavailableKind):
        with pytest.raises(VerificationUnavailableError) as caught:
            remote.verify("resident_id", NUMBER, name)
        assert caught.value.kind is answer and caught.value.provider == "sandbox"
    else:
        found = remote.verify("resident_id", NUMBER, name, request_id="sub-9-try-1")
        assert (found.outcome, found.reason, found.reference) == (
            answer,
            REASONS[answer],
            "sandbox-sub-9-try-1",
        )
    # The emulator's process records the check, as the mounted verifier does.
    assert len(client.get("/_sandbox/roster").get_json()["checks"]) == 1


def test_an_unreachable_emulator_is_an_outage_never_a_mismatch(app: Flask) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    remote = RemoteRosterVerifier(f"http://127.0.0.1:{closed}/_sandbox", timeout=2)
    with pytest.raises(VerificationUnavailableError) as caught:
        remote.verify("resident_id", NUMBER, NAME)
    assert caught.value.kind is UnavailableKind.CONNECTION and caught.value.retryable


def test_the_emulators_verify_route_refuses_an_incomplete_question(client: FlaskClient) -> None:
    answer = client.post("/_sandbox/roster/_verify", json={"id_number": NUMBER})
    assert answer.status_code == 400
    assert "需要" in answer.get_json()["error"]["message"]
