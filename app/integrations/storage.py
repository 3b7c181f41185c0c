"""The photo store the settings name: media/storage.py's backends, chosen from MEDIA_URL / MEDIA_ROOT /
MEDIA_S3_* (media/ stays free of settings and Flask)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from media.storage import LocalStorage, S3Storage, Storage


def build_photo_storage(config: Mapping[str, Any]) -> Storage:
    """The backend the settings name (MEDIA_URL, MEDIA_ROOT, MEDIA_S3_*)."""
    url = str(config.get("MEDIA_URL") or "")
    if not url:
        return LocalStorage(config["MEDIA_ROOT"])
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"MEDIA_URL must be empty or s3://bucket/prefix, not {url!r}")
    return S3Storage(
        parts.netloc,
        parts.path,
        endpoint_url=config.get("MEDIA_S3_ENDPOINT_URL") or None,
        region=config.get("MEDIA_S3_REGION") or None,
        access_key_id=config.get("MEDIA_S3_ACCESS_KEY_ID") or None,
        secret_access_key=config.get("MEDIA_S3_SECRET_ACCESS_KEY") or None,
    )
