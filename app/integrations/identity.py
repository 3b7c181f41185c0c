"""Identity verification (人口库核验): does this name belong to this ID number?

The worker asks an `IdentityVerifier` after a submission is paid. There are three answers about the
identity — MATCH, MISMATCH (the number exists under another name), NOT_FOUND (the register does not
know the number) — each with a Chinese `reason` the student reads and the provider's reference.
Anything that says nothing about the identity (timeout, connection error, 5xx, 429, a malformed or
unsigned answer, our own misconfiguration) raises `VerificationUnavailableError`, which is always
retryable: an outage must never reach a student as a mismatch.

`HttpVerifier` (below) asks a provider (or our adapter in front of one) over HTTPS. With SANDBOX=1
the app factory installs the emulator's roster verifier instead (app/sandbox/roster_verifier.py);
it implements the same protocol with `result_for`, `log_outcome` and `unavailable` from here.

HTTP contract (what a provider adapter implements)
--------------------------------------------------
Request: ``POST <VERIFY_HTTP_URL>``, ``Content-Type: application/json; charset=utf-8``, body (UTF-8)::

    {"request_id": "<32 hex>", "doc_type": "resident_id" | "residence_permit" | "hk_macao_permit"
     | "taiwan_permit" | "passport", "id_number": "<normalised>", "name": "<normalised>",
     "timestamp": <unix seconds>, "nonce": "<32 hex>"}

signed with the shared secret VERIFY_HTTP_SECRET identified by VERIFY_HTTP_KEY_ID::

    Authorization: HMAC-SHA256 KeyId=<key id>, Signature=<base64(HMAC-SHA256(secret, S))>
    S = "POST\\n" + <path of the URL, with "?query" if it has one> + "\\n" + <timestamp> + "\\n"
        + <nonce> + "\\n" + <lowercase hex SHA-256 of the exact body bytes>

where timestamp and nonce are the body's. The provider should refuse timestamps more than 5 minutes
off and nonces it has seen (replays), and may treat a repeated `request_id` as the same query (the
worker may retry after a timeout).

Response: ``200`` with a JSON body ``{"request_id": <echoed>, "result": "match" | "mismatch" |
"not_found", "reason": <optional text>, "reference": <optional provider id>}`` and the headers
``X-Timestamp`` (unix seconds), ``X-Nonce`` and ``X-Signature`` = base64(HMAC-SHA256(secret,
<timestamp> + "\\n" + <nonce> + "\\n" + <lowercase hex SHA-256 of the exact body bytes>)). We refuse
a response whose signature, timestamp (±5 minutes) or request_id echo is wrong. Any status other
than 200 is an outage: 429 and 5xx are expected to pass, other 4xx mean a configuration problem
(wrong key, wrong URL) and are logged as errors.

Logs carry masked numbers and names only (app/services/pii.py); request and response bodies are
never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from app.inputs import ascii_int
from app.services.pii import mask_id_number, mask_name

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW_SECONDS = 300
MAX_RESPONSE_BYTES = 64 * 1024


class VerificationOutcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"


# What the student reads; the provider's own wording (often a code) is kept for staff only.
REASONS: dict[VerificationOutcome, str] = {
    VerificationOutcome.MATCH: "姓名与证件号码核验一致",
    VerificationOutcome.MISMATCH: (
        "姓名与证件号码不一致。请在「实名绑定」中核对姓名和证件号码，修改后重新提交核验。"
    ),
    VerificationOutcome.NOT_FOUND: ("人口库中未查到该证件号码。请核对证件类型和号码，修改后重新提交核验。"),
}


@dataclass(frozen=True)
class VerificationResult:
    outcome: VerificationOutcome
    reason: str  # Chinese, shown to the student
    reference: str  # the provider's id for this query (for staff and for disputes)
    provider: str
    provider_reason: str | None = None  # the provider's own words, for staff

    @property
    def matched(self) -> bool:
        return self.outcome is VerificationOutcome.MATCH


class UnavailableKind(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_ERROR = "server_error"  # 5xx
    RATE_LIMITED = "rate_limited"  # 429
    BAD_RESPONSE = "bad_response"  # not JSON, unknown result, wrong request_id echo, too large
    BAD_SIGNATURE = "bad_signature"  # missing/wrong X-Signature, stale timestamp
    CONFIGURATION = "configuration"  # other 4xx, redirects, no URL configured: needs a person


class VerificationUnavailableError(Exception):
    """The provider gave no answer about the identity; try again later. Never a mismatch."""

    retryable = True

    def __init__(self, kind: UnavailableKind, detail: str, *, provider: str) -> None:
        super().__init__(f"{provider} verification unavailable ({kind}): {detail}")
        self.kind = kind
        self.detail = detail
        self.provider = provider


class IdentityVerifier(Protocol):
    name: str

    def verify(
        self, doc_type: str, id_number: str, name: str, *, request_id: str | None = None
    ) -> VerificationResult:
        """Raises VerificationUnavailableError when there is no answer about the identity.

        `request_id` (optional) identifies the query to the provider; pass the same one when
        retrying the same attempt so a provider may answer it once.
        """
        ...


def result_for(
    provider: str, outcome: VerificationOutcome, reference: str, **extra: Any
) -> VerificationResult:
    """A result with the student's wording for `outcome` (every verifier answers in the same words)."""
    return VerificationResult(outcome, REASONS[outcome], reference, provider, **extra)


def log_outcome(provider: str, doc_type: str, id_number: str, name: str, result: VerificationResult) -> None:
    """The one log line of an answer: masked number and name only."""
    log.info(
        "identity verification provider=%s doc_type=%s number=%s name=%s outcome=%s reference=%s",
        provider,
        doc_type,
        mask_id_number(id_number),
        mask_name(name),
        result.outcome.value,
        result.reference,
    )


def unavailable(
    provider: str, kind: UnavailableKind, detail: str, id_number: str
) -> VerificationUnavailableError:
    """Log an outage (a configuration error as an error) and return the exception to raise."""
    configuration = kind is UnavailableKind.CONFIGURATION
    log.log(
        logging.ERROR if configuration else logging.WARNING,
        "identity verification unavailable provider=%s kind=%s number=%s: %s%s",
        provider,
        kind.value,
        mask_id_number(id_number),
        detail,
        " (configuration error: check the VERIFY_HTTP_* settings)" if configuration else "",
    )
    return VerificationUnavailableError(kind, detail, provider=provider)


# --- the HTTP provider -------------------------------------------------------------------------


def _sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _mac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def request_signature(secret: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return _mac(secret, f"POST\n{path}\n{timestamp}\n{nonce}\n{_sha256_hex(body)}")


def response_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    return _mac(secret, f"{timestamp}\n{nonce}\n{_sha256_hex(body)}")


def _signed_path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class HttpVerifier:
    """A provider over HTTP(S) with signed requests and responses (contract in the module docstring).

    One `requests.Session` per verifier: connections to the provider are kept alive and reused.
    """

    name = "http"

    def __init__(
        self,
        url: str,
        key_id: str,
        secret: str,
        timeout_seconds: float,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.key_id = key_id
        self.secret = secret
        self.timeout = (timeout_seconds, timeout_seconds)  # connect, read
        self.session = session or requests.Session()
        self.clock = clock

    def verify(
        self, doc_type: str, id_number: str, name: str, *, request_id: str | None = None
    ) -> VerificationResult:
        if not self.url or not self.secret:
            raise unavailable(
                self.name, UnavailableKind.CONFIGURATION, "VERIFY_HTTP_URL/SECRET not set", id_number
            )
        request_id = request_id or uuid.uuid4().hex
        timestamp = int(self.clock())
        nonce = secrets.token_hex(16)
        body = json.dumps(
            {
                "request_id": request_id,
                "doc_type": doc_type,
                "id_number": id_number,
                "name": name,
                "timestamp": timestamp,
                "nonce": nonce,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        signature = request_signature(self.secret, _signed_path(self.url), str(timestamp), nonce, body)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "Authorization": f"HMAC-SHA256 KeyId={self.key_id}, Signature={signature}",
            "X-Request-ID": request_id,
        }
        started = time.monotonic()
        status, response_headers, content = self._post(body, headers, id_number)
        result = self._interpret(status, response_headers, content, request_id, id_number)
        log_outcome(self.name, doc_type, id_number, name, result)
        log.debug("identity verification took %.0f ms", (time.monotonic() - started) * 1000)
        return result

    def _post(
        self, body: bytes, headers: dict[str, str], id_number: str
    ) -> tuple[int, Mapping[str, str], bytes]:
        kind: UnavailableKind
        try:
            with self.session.post(
                self.url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            ) as response:
                content = bytearray()
                for chunk in response.iter_content(8192):
                    content += chunk
                    if len(content) > MAX_RESPONSE_BYTES:
                        raise unavailable(
                            self.name, UnavailableKind.BAD_RESPONSE, "response too large", id_number
                        )
                return response.status_code, response.headers, bytes(content)
        except requests.Timeout as exc:
            kind, detail = UnavailableKind.TIMEOUT, type(exc).__name__
        except requests.ConnectionError as exc:
            # iter_content turns a read timeout in the middle of the body into a ConnectionError.
            timed_out = "timed out" in str(exc).lower()
            kind = UnavailableKind.TIMEOUT if timed_out else UnavailableKind.CONNECTION
            detail = type(exc).__name__
        except requests.RequestException as exc:
            kind, detail = UnavailableKind.CONNECTION, type(exc).__name__
        raise unavailable(self.name, kind, detail, id_number)

    def _interpret(
        self,
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        request_id: str,
        id_number: str,
    ) -> VerificationResult:
        def fail(kind: UnavailableKind, detail: str) -> VerificationUnavailableError:
            return unavailable(self.name, kind, detail, id_number)

        if status == 429:
            raise fail(UnavailableKind.RATE_LIMITED, "HTTP 429")
        if status >= 500:
            raise fail(UnavailableKind.SERVER_ERROR, f"HTTP {status}")
        if status != 200:
            raise fail(UnavailableKind.CONFIGURATION, f"HTTP {status}")
        timestamp = headers.get("X-Timestamp", "")
        nonce = headers.get("X-Nonce", "")
        signature = headers.get("X-Signature", "")
        seconds = ascii_int(timestamp)
        if not (seconds is not None and nonce and signature):
            raise fail(UnavailableKind.BAD_SIGNATURE, "unsigned response")
        if abs(self.clock() - seconds) > MAX_CLOCK_SKEW_SECONDS:
            raise fail(UnavailableKind.BAD_SIGNATURE, "response timestamp out of range")
        expected = response_signature(self.secret, timestamp, nonce, content)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise fail(UnavailableKind.BAD_SIGNATURE, "wrong response signature")
        try:
            answer = json.loads(content)
        except ValueError:
            raise fail(UnavailableKind.BAD_RESPONSE, "response is not JSON") from None
        if not isinstance(answer, dict):
            raise fail(UnavailableKind.BAD_RESPONSE, "response is not a JSON object")
        if answer.get("request_id") != request_id:
            raise fail(UnavailableKind.BAD_RESPONSE, "response is for another request_id")
        try:
            outcome = VerificationOutcome(str(answer.get("result")))
        except ValueError:
            raise fail(UnavailableKind.BAD_RESPONSE, "unknown result") from None
        reference = answer.get("reference")
        reason = answer.get("reason")
        return result_for(
            self.name,
            outcome,
            reference if isinstance(reference, str) and reference else request_id,
            provider_reason=reason[:200] if isinstance(reason, str) and reason else None,
        )
