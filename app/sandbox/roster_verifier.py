"""The emulator's 人口库 as an identity verifier: answers from the roster; a number not on it matches.

The app factory installs it in place of the HTTP provider when VERIFY_PROVIDER=sandbox. It imports
the identity integration's interface only (the result types and the helpers that give every
verifier the same wording and log lines), never the HTTP provider it stands in for.

Mounted in the service, `SandboxRosterVerifier` reads the roster from the app's Redis. When the
emulator runs as its own process (SANDBOX_URL) the roster lives there, possibly in that process's
own memory, so `RemoteRosterVerifier` asks it over HTTP (`POST /_sandbox/roster/_verify`): the
emulator answers from its roster and records the check, the service turns the answer into a result.
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from typing import Any

import requests
from flask import Response, jsonify, request

from app.integrations import redis_client
from app.integrations.identity import (
    UnavailableKind,
    VerificationOutcome,
    VerificationResult,
    log_outcome,
    result_for,
    unavailable,
)
from app.sandbox import bp
from app.sandbox.roster import RedisRoster, RosterResult
from app.services.pii import mask_id_number

PROVIDER = "sandbox"
Answer = VerificationOutcome | UnavailableKind


def name_key(name: str) -> str:
    """Compare names the way the service stores them: NFKC, one middle dot, no case, no extra spaces."""
    folded = unicodedata.normalize("NFKC", name).strip()
    folded = "".join("·" if ch in "·•・‧∙⋅．.ᐧ" else ch for ch in folded)
    return " ".join(folded.split()).upper()


def roster_answer(roster: RedisRoster, doc_type: str, id_number: str, name: str, reference: str) -> Answer:
    """What the roster says about this identity; the check is recorded (masked) for the phone page."""
    entry = roster.find(id_number)
    same_name = entry is not None and name_key(entry.name) == name_key(name)
    answer: Answer
    if entry is None:
        answer = VerificationOutcome.MATCH
    elif entry.result is RosterResult.ERROR:
        answer = UnavailableKind.SERVER_ERROR
    elif entry.result is RosterResult.TIMEOUT:
        # A real timeout would keep the worker waiting VERIFY_TIMEOUT_SECONDS; the answer is the same.
        answer = UnavailableKind.TIMEOUT
    elif entry.result is RosterResult.NOT_FOUND:
        answer = VerificationOutcome.NOT_FOUND
    elif entry.result is RosterResult.MATCH:
        answer = VerificationOutcome.MATCH if same_name else VerificationOutcome.MISMATCH
    else:
        answer = VerificationOutcome.MISMATCH if same_name else VerificationOutcome.MATCH
    roster.record_check(
        {
            "at": time.time(),
            "reference": reference,
            "doc_type": doc_type,
            "number_masked": mask_id_number(id_number),
            "entry_id": entry.entry_id if entry else None,
            "answer": answer.value,
        }
    )
    return answer


def _result(answer: Answer, doc_type: str, id_number: str, name: str, reference: str) -> VerificationResult:
    if isinstance(answer, UnavailableKind):
        raise unavailable(PROVIDER, answer, f"roster entry says {answer.value}", id_number)
    result = result_for(PROVIDER, answer, reference)
    log_outcome(PROVIDER, doc_type, id_number, name, result)
    return result


class SandboxRosterVerifier:
    """Implements app.integrations.identity.IdentityVerifier over the sandbox's roster."""

    name = PROVIDER

    def __init__(self, roster: RedisRoster) -> None:
        self.roster = roster

    def verify(
        self, doc_type: str, id_number: str, name: str, *, request_id: str | None = None
    ) -> VerificationResult:
        reference = f"sandbox-{request_id or uuid.uuid4().hex}"
        answer = roster_answer(self.roster, doc_type, id_number, name, reference)
        return _result(answer, doc_type, id_number, name, reference)


class RemoteRosterVerifier:
    """The same verifier, asking the emulator's own process for the roster's answer."""

    name = PROVIDER

    def __init__(self, sandbox_base: str, timeout: float) -> None:
        self.url = f"{sandbox_base}/roster/_verify"
        self.timeout = timeout

    def verify(
        self, doc_type: str, id_number: str, name: str, *, request_id: str | None = None
    ) -> VerificationResult:
        reference = f"sandbox-{request_id or uuid.uuid4().hex}"
        body = {"doc_type": doc_type, "id_number": id_number, "name": name, "reference": reference}
        try:
            response = requests.post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout:
            kind, detail = UnavailableKind.TIMEOUT, "the sandbox did not answer"
            raise unavailable(PROVIDER, kind, detail, id_number) from None
        except requests.RequestException as exc:
            kind, detail = UnavailableKind.CONNECTION, f"the sandbox is unreachable: {type(exc).__name__}"
            raise unavailable(PROVIDER, kind, detail, id_number) from None
        answer = _answer_of(response)
        if answer is None:
            detail = f"the sandbox answered HTTP {response.status_code} without a roster answer"
            raise unavailable(PROVIDER, UnavailableKind.BAD_RESPONSE, detail, id_number)
        return _result(answer, doc_type, id_number, name, reference)


def _answer_of(response: requests.Response) -> Answer | None:
    try:
        value = response.json().get("answer") if response.status_code == 200 else None
    except ValueError:
        return None
    for kind in (VerificationOutcome, UnavailableKind):
        try:
            return kind(value)
        except ValueError:
            continue
    return None


@bp.post("/roster/_verify")
def roster_verify() -> Response | tuple[Response, int]:
    """The separate emulator's side of RemoteRosterVerifier (the sandbox's own route, not a provider's)."""
    data: Any = request.get_json(silent=True)
    fields = ("doc_type", "id_number", "name", "reference")
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) and data[f] for f in fields):
        return jsonify(error={"code": 400, "message": "需要 doc_type、id_number、name、reference"}), 400
    roster = RedisRoster(redis_client())
    answer = roster_answer(roster, data["doc_type"], data["id_number"], data["name"], data["reference"])
    return jsonify(answer=answer.value, reference=data["reference"])
