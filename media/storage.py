"""Where photo files live: one small interface, two backends. Pure: no Flask, no database.

Keys are content addresses: the sha256 of the bytes, fanned out as ``ab/cd/abcd…`` so no directory
(or S3 listing) grows huge. The same bytes always get the same key, so storing twice is harmless and
a file is never overwritten with different content. The database keeps the key.

- ``LocalStorage``: files under MEDIA_ROOT, written atomically (temporary file in the same directory,
  fsync, ``os.replace``, fsync of the directory), so a crash never leaves half a photo under a key.
- ``S3Storage``: an S3-compatible object store (``MEDIA_URL=s3://bucket/prefix``) through boto3.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

KEY_PATTERN = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")


class StorageError(Exception):
    """The backend failed (disk, network, permissions)."""


class MediaNotFoundError(StorageError, KeyError):
    """No file under this key."""


class InvalidKeyError(StorageError, ValueError):
    """Not a key this module made (e.g. ``../../etc/passwd``)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_for(data: bytes) -> str:
    digest = sha256_hex(data)
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def check_key(key: str) -> str:
    """Only our own keys reach a path or an object name: no traversal, no absolute paths."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InvalidKeyError(f"not a media key: {key!r}")
    return key


class Storage(Protocol):
    def put(self, data: bytes, content_type: str) -> str:
        """Store the bytes; returns their key (the same for the same bytes)."""

    def get(self, key: str) -> bytes:
        """The bytes under the key; MediaNotFoundError when there are none."""

    def exists(self, key: str) -> bool: ...


class LocalStorage:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def path_of(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # check_key already forbids "..": this is the belt to its braces.
        if self.root not in path.parents:
            raise InvalidKeyError(f"key escapes the media root: {key!r}")
        return path

    def put(self, data: bytes, content_type: str) -> str:
        key = key_for(data)
        path = self.path_of(key)
        if path.exists():
            return key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o640)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"could not store {key}: {exc}") from exc
        return key

    def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise MediaNotFoundError(key) from None
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph, …); objects under ``prefix/``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
        )

    def object_name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, data: bytes, content_type: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = key_for(data)
        if self.exists(key):
            return key
        try:
            # ChecksumSHA256 makes the store verify what arrived before it keeps it.
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.object_name(key),
                Body=data,
                ContentType=content_type or "application/octet-stream",
                ChecksumAlgorithm="SHA256",
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not store {key}: {exc}") from exc
        return key

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))
            data: bytes = response["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                raise MediaNotFoundError(key) from None
            raise StorageError(f"could not read {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc
        return data

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise StorageError(f"could not look up {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not look up {key}: {exc}") from exc
        return True


def _missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")
