"""Personal data at rest: encryption with key rotation, keyed lookup hashes, and masking.

ID numbers and names are stored only encrypted (Fernet: AES-128-CBC + HMAC-SHA256, from
`cryptography`); `MultiFernet` decrypts with any configured key and encrypts with the first, which
is how keys rotate. Equality lookups ("is this ID number bound already?", staff searching a number
or a whole name) use an HMAC of the normalised value instead, so the database never needs the
plaintext to answer them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class PersonalDataKeyError(RuntimeError):
    """A stored value cannot be decrypted with any configured key."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


@dataclass(frozen=True)
class Keyring:
    fernet: MultiFernet
    hmac_key: bytes

    @classmethod
    def from_settings(cls, encryption_keys: str, hmac_key: str, secret_key: str) -> Keyring:
        """Build from PII_* settings; empty ones are derived from SECRET_KEY (development only:
        config.py refuses that in production)."""
        keys = [k.strip() for k in encryption_keys.split(",") if k.strip()]
        if not keys:
            keys = [base64.urlsafe_b64encode(_derive(secret_key, b"pii-encryption")).decode()]
        mac = hmac_key.encode() if hmac_key else _derive(secret_key, b"pii-lookup")
        return cls(MultiFernet([Fernet(k) for k in keys]), mac)

    def encrypt(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise PersonalDataKeyError("no configured PII key decrypts this value") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first key (a no-op in meaning, a new ciphertext)."""
        try:
            return self.fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise PersonalDataKeyError("no configured PII key decrypts this value") from None

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self.hmac_key, value.encode(), hashlib.sha256).hexdigest()


def mask_id_number(number: str) -> str:
    """2101**********0011: enough to recognise one's own number, not enough to use it.

    18-digit numbers keep 4 + 4 (the common display form); shorter ones (passports, permits)
    keep at most about 40 %, so a 9-character passport number shows E1*****78, not E123*5678.
    """
    if len(number) >= 15:
        keep = 4
    elif len(number) >= 9:
        keep = 2
    else:
        keep = 1
    if len(number) <= 2 * keep:
        return "*" * len(number)
    return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]


def mask_id_tail(number: str) -> str:
    """**************002X: staff match a student by the last 4 characters, and see no more."""
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳小明 → 欧**明, JOHN SMITH → J*********H."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
