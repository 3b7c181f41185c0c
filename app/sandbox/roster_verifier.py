"""The emulator's 人口库 as an identity verifier: answers from the roster; a number not on it matches.

The app factory installs it in place of the HTTP provider when VERIFY_PROVIDER=sandbox. It imports
the identity integration's interface only (the result types and the helpers that give every
verifier the same wording and log lines), never the HTTP provider it stands in for.
"""

from __future__ import annotations

import time
import unicodedata
import uuid

from app.integrations.identity import (
    UnavailableKind,
    VerificationOutcome,
    VerificationResult,
    log_outcome,
    result_for,
    unavailable,
)
from app.sandbox.roster import RedisRoster, RosterResult
from app.services.pii import mask_id_number


def name_key(name: str) -> str:
    """Compare names the way the service stores them: NFKC, one middle dot, no case, no extra spaces."""
    folded = unicodedata.normalize("NFKC", name).strip()
    folded = "".join("·" if ch in "·•・‧∙⋅．.ᐧ" else ch for ch in folded)
    return " ".join(folded.split()).upper()


class SandboxRosterVerifier:
    """Implements app.integrations.identity.IdentityVerifier over the sandbox's roster."""

    name = "sandbox"

    def __init__(self, roster: RedisRoster) -> None:
        self.roster = roster

    def verify(
        self, doc_type: str, id_number: str, name: str, *, request_id: str | None = None
    ) -> VerificationResult:
        reference = f"sandbox-{request_id or uuid.uuid4().hex}"
        entry = self.roster.find(id_number)
        same_name = entry is not None and name_key(entry.name) == name_key(name)
        answer: VerificationOutcome | UnavailableKind
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
        self.roster.record_check(
            {
                "at": time.time(),
                "reference": reference,
                "doc_type": doc_type,
                "number_masked": mask_id_number(id_number),
                "entry_id": entry.entry_id if entry else None,
                "answer": answer.value,
            }
        )
        if isinstance(answer, UnavailableKind):
            raise unavailable(self.name, answer, f"roster entry says {answer.value}", id_number)
        result = result_for(self.name, answer, reference)
        log_outcome(self.name, doc_type, id_number, name, result)
        return result
