"""Key material: the emulator's own "WeChat Pay" key pair and certificate, and the test merchant's
keys the app factory uses when no merchant is configured. Generated once, kept on disk (mode 0600)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import current_app

SANDBOX_MCHID = "1900000109"  # the example merchant number of WeChat Pay's docs


@dataclass(frozen=True)
class SandboxPayKeys:
    """The emulator's own "WeChat Pay" key pair and the merchant's test keys (never shipped)."""

    mchid: str
    apiv3_key: str
    merchant_private_pem: str
    merchant_serial: str
    platform_private_pem: str
    platform_public_pem: str
    public_key_id: str
    platform_cert_pem: str
    platform_cert_serial: str

    def platform_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.platform_private_pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key


_KEYS: dict[str, SandboxPayKeys] = {}
_KEYS_LOCK = threading.Lock()
_GENERATED: dict[str, str] = {}  # one process reuses its generated keys for every directory


def _new_private_pem(name: str) -> str:
    if name not in _GENERATED:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _GENERATED[name] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return _GENERATED[name]


def _write_once(path: Path, make: Callable[[], str]) -> str:
    """Create `path` atomically if missing (several processes may race); return its content."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(make())
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if another process won the race: keep theirs
        finally:
            os.unlink(tmp)
    return path.read_text(encoding="utf-8")


def sandbox_keys(directory: Path) -> SandboxPayKeys:
    """Load the sandbox's pay keys from `directory`, generating them on first use."""
    directory = Path(directory)
    with _KEYS_LOCK:
        cached = _KEYS.get(str(directory))
        if cached:
            return cached
        directory.mkdir(parents=True, exist_ok=True)
        merchant_pem = _write_once(directory / "merchant_key.pem", lambda: _new_private_pem("merchant"))
        platform_pem = _write_once(directory / "platform_key.pem", lambda: _new_private_pem("platform"))
        apiv3_key = _write_once(directory / "apiv3_key.txt", lambda: secrets.token_hex(16)).strip()
        platform = serialization.load_pem_private_key(platform_pem.encode(), password=None)
        merchant = serialization.load_pem_private_key(merchant_pem.encode(), password=None)
        assert isinstance(platform, rsa.RSAPrivateKey) and isinstance(merchant, rsa.RSAPrivateKey)
        cert_pem = _write_once(directory / "platform_cert.pem", lambda: _self_signed(platform))
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        platform_public = platform.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        merchant_der = merchant.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys = SandboxPayKeys(
            mchid=SANDBOX_MCHID,
            apiv3_key=apiv3_key,
            merchant_private_pem=merchant_pem,
            # A merchant certificate serial is 40 hex digits; derive a stable one from the key.
            merchant_serial=hashlib.sha1(merchant_der, usedforsecurity=False).hexdigest().upper(),
            platform_private_pem=platform_pem,
            platform_public_pem=platform_public.decode(),
            public_key_id="PUB_KEY_ID_" + hashlib.sha256(platform_public).hexdigest()[:32].upper(),
            platform_cert_pem=cert_pem,
            platform_cert_serial=format(cert.serial_number, "X"),
        )
        _KEYS[str(directory)] = keys
        return keys


def _self_signed(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


_WRONG_KEY: list[rsa.RSAPrivateKey] = []


def keys_directory(media_root: Path | str) -> Path:
    """Where an installation's keys are: beside its media folder, outside the repository."""
    return Path(media_root).parent / "sandbox-pay"


def keys_for(media_root: Path | str) -> SandboxPayKeys:
    """The keys of an installation."""
    return sandbox_keys(keys_directory(media_root))


def app_keys() -> SandboxPayKeys:
    """The current app's sandbox keys."""
    return keys_for(current_app.config["MEDIA_ROOT"])


def wrong_key() -> rsa.RSAPrivateKey:
    """A key WeChat Pay does not have (the wrong_key fault signs with it)."""
    if not _WRONG_KEY:
        _WRONG_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _WRONG_KEY[0]
