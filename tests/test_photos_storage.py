"""media/storage.py: content-addressed keys, atomic local writes, safe paths, and S3 against a real
S3-compatible server (moto's server mode, started here on a free local port)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from photo_students import enrolled_student, no_face_480x640

from app.extensions import db
from app.integrations.storage import build_photo_storage
from media import storage as media_storage
from media.storage import InvalidKeyError, LocalStorage, MediaNotFoundError, S3Storage, StorageError
from models import Photo

BUCKET = "photos-test"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto accepts any


def test_keys_are_content_addresses() -> None:
    key = media_storage.key_for(b"photo")
    digest = media_storage.sha256_hex(b"photo")
    assert key == f"{digest[:2]}/{digest[2:4]}/{digest}"
    assert media_storage.key_for(b"photo") == key != media_storage.key_for(b"photo2")


def test_local_put_get_exists(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    key = storage.put(b"\xff\xd8\xff jpeg bytes", "image/jpeg")
    assert storage.exists(key) and storage.get(key) == b"\xff\xd8\xff jpeg bytes"
    assert (tmp_path / "media" / key).read_bytes() == b"\xff\xd8\xff jpeg bytes"
    # The same bytes again: the same key, one file.
    assert storage.put(b"\xff\xd8\xff jpeg bytes", "image/jpeg") == key
    assert [p for p in (tmp_path / "media").rglob("*") if p.is_file()] == [tmp_path / "media" / key]
    missing = media_storage.key_for(b"never stored")
    assert not storage.exists(missing)
    with pytest.raises(MediaNotFoundError):
        storage.get(missing)


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "/etc/passwd", "ab/cd/../../../x", "AB/CD/" + "A" * 64, "ab/cd/" + "0" * 63, ""],
)
def test_only_our_keys_become_paths(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(InvalidKeyError):
        storage.get(key)
    with pytest.raises(InvalidKeyError):
        storage.exists(key)


def test_local_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash before the rename leaves nothing under the key and no temporary file behind."""
    storage = LocalStorage(tmp_path)
    data = b"complete photo" * 1000

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(media_storage.os, "replace", crash)
    with pytest.raises(StorageError):
        storage.put(data, "image/jpeg")
    key = media_storage.key_for(data)
    assert not storage.exists(key)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()

    # Written in full through a temporary file in the same directory, then renamed into place.
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def watch(src: Any, dst: Any) -> None:
        assert Path(src).parent == Path(dst).parent and Path(src).read_bytes() == data
        renames.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(media_storage.os, "replace", watch)
    assert storage.put(data, "image/jpeg") == key
    assert len(renames) == 1 and renames[0][1] == str(storage.path_of(key))
    assert storage.get(key) == data


# --- S3 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _s3(endpoint: str, prefix: str = "photos") -> S3Storage:
    return S3Storage(
        BUCKET,
        prefix,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id=KEYS["aws_access_key_id"],
        secret_access_key=KEYS["aws_secret_access_key"],
    )


def test_s3_put_get_exists(s3_endpoint: str) -> None:
    storage = _s3(s3_endpoint)
    data = b"\x89PNG\r\n\x1a\n a png" + os.urandom(16)
    key = storage.put(data, "image/png")
    assert key == media_storage.key_for(data)
    assert storage.exists(key) and storage.get(key) == data
    assert storage.put(data, "image/png") == key
    # Stored where the prefix says, with its content type, as a real S3 client sees it.
    raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **KEYS)
    head = raw.head_object(Bucket=BUCKET, Key=f"photos/{key}")
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(data)
    missing = media_storage.key_for(b"nothing")
    assert not storage.exists(missing)
    with pytest.raises(MediaNotFoundError):
        storage.get(missing)
    with pytest.raises(InvalidKeyError):
        storage.get("../photos/x")


def test_s3_errors_are_storage_errors(s3_endpoint: str) -> None:
    storage = S3Storage(
        "no-such-bucket", "", endpoint_url=s3_endpoint, region="us-east-1", **_keys_as_settings()
    )
    with pytest.raises(StorageError):
        storage.put(b"x", "image/jpeg")


def _keys_as_settings() -> dict[str, str]:
    return {"access_key_id": "testing", "secret_access_key": "testing"}


def test_from_config_picks_the_backend(tmp_path: Path, s3_endpoint: str) -> None:
    local = build_photo_storage({"MEDIA_URL": "", "MEDIA_ROOT": tmp_path})
    assert isinstance(local, LocalStorage) and local.root == tmp_path.resolve()
    s3 = build_photo_storage(
        {
            "MEDIA_URL": f"s3://{BUCKET}/deep/prefix",
            "MEDIA_ROOT": tmp_path,
            "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
            "MEDIA_S3_REGION": "us-east-1",
            "MEDIA_S3_ACCESS_KEY_ID": "testing",
            "MEDIA_S3_SECRET_ACCESS_KEY": "testing",
        }
    )
    assert isinstance(s3, S3Storage) and s3.bucket == BUCKET and s3.prefix == "deep/prefix"
    with pytest.raises(ValueError):
        build_photo_storage({"MEDIA_URL": "ftp://x", "MEDIA_ROOT": tmp_path})


def test_uploads_go_to_s3_when_configured(app_factory: Any, live_server: Any, s3_endpoint: str) -> None:
    app: Flask = app_factory(
        MEDIA_URL=f"s3://{BUCKET}/uploads",
        MEDIA_S3_ENDPOINT_URL=s3_endpoint,
        MEDIA_S3_ACCESS_KEY_ID="testing",
        MEDIA_S3_SECRET_ACCESS_KEY="testing",
    )
    student = enrolled_student(app, live_server.url, "o-photo-s3")
    picture = no_face_480x640()
    body = student.upload(picture).json()
    # Nothing on local disk; both files in the bucket; the signed link serves them from there.
    root = app.config["MEDIA_ROOT"]
    assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]
    with app.app_context():
        photo = db.session.get(Photo, body["id"])
        assert photo is not None
        keys = (photo.original_key, photo.normalized_key)
    raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **KEYS)
    for key in keys:
        assert raw.head_object(Bucket=BUCKET, Key=f"uploads/{key}")["ContentLength"] > 0
    assert raw.get_object(Bucket=BUCKET, Key=f"uploads/{keys[0]}")["Body"].read() == picture
    served = student.get(body["normalized"]["url"])
    assert served.status_code == 200 and len(served.content) == body["normalized"]["bytes"]
