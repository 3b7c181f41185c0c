"""Students and pictures for the photo tests.

    # bound, linked to 湖南师范大学's open batch, signed in:
    student = enrolled_student(app, base, "o-photo-1")
    response = student.upload(jpeg_bytes)

Pictures: the pipeline's fixtures (tests/fixtures/photos/, generated from scikit-image's public-domain
images) when present; a no-face picture made here from scikit-image's `coffee()`.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import demo_data, enrollments, identities, users
from app.services.identities import IdentityInput
from models import Batch, School

FIXTURES = Path(__file__).parent / "fixtures" / "photos"
HUNAN = "10542"  # 湖南师范大学: 480×640 JPG, 100–200 KB, light blue
# Valid resident ID numbers (GB 11643 check digits), one per student.
NUMBERS = ["210101200101010011", "11010519491231002X", "110101199003070134", "440101199506150028"]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _coffee() -> Image.Image:
    # A committed fixture (scripts/make_photo_fixtures.py): the tests never need scikit-image.
    return Image.open(io.BytesIO(fixture("no_face_coffee.jpg"))).convert("RGB")


def no_face_480x640() -> bytes:
    """A cup of coffee at the spec's exact size: checked, stored, and failed for want of a face."""
    return jpeg(_coffee().resize((480, 640)))


def no_face_phone() -> bytes:
    return jpeg(_coffee().resize((4000, 3000)))


def open_batch_id(app: Flask, code: str = HUNAN) -> int:
    with app.app_context():
        batch_id = db.session.scalar(
            select(Batch.id)
            .join(School)
            .where(
                School.code == code, Batch.opens_at <= datetime.now(UTC), Batch.closes_at > datetime.now(UTC)
            )
        )
        assert batch_id is not None
        return int(batch_id)


def prepare(
    app: Flask,
    openid: str,
    *,
    bind: bool = True,
    link: bool = True,
    number: str | None = None,
    notice_read: bool = True,
) -> int:
    """The user exists (and is bound, and linked to the open 湖南师范大学 batch, whose 须知 they have
    read unless `notice_read` is false); returns the user id."""
    with app.app_context():
        if link and db.session.scalar(select(School.id).where(School.code == HUNAN)) is None:
            demo_data.load_schools(db.session)
        user = users.get_or_create(db.session, openid)
        user_id = user.id
        db.session.commit()
        if bind:
            chosen = number or NUMBERS[user_id % len(NUMBERS)]
            identities.bind(
                db.session,
                pii_keyring(),
                user_id,
                IdentityInput("resident_id", chosen, "张三"),
                datetime.now(UTC).date(),
            )
        db.session.remove()
    if bind and link:
        batch_id = open_batch_id(app)
        with app.app_context():
            enrollments.link(db.session, user_id, batch_id, datetime.now(UTC))
            if notice_read:
                enrollments.acknowledge_notice(db.session, user_id, datetime.now(UTC))
            db.session.remove()
    return user_id


class Student:
    """A browser signed in as one WeChat user (the sandbox's OAuth2 flow), with the page's CSRF token."""

    def __init__(
        self, base: str, openid: str, user_id: int | None = None, sandbox: str | None = None
    ) -> None:
        self.base = base
        self.openid = openid
        self.user_id = user_id
        self.http = requests.Session()
        # `sandbox`: the emulator's own process (SANDBOX_URL); by default it is mounted in the service.
        login = f"{sandbox or base}/_sandbox/login-as/{openid}"
        page = self.http.get(login, params={"next": "/h5/photo"}, timeout=10)
        assert page.status_code == 200 and page.url.split("#")[0] == f"{base}/h5/photo", page.url
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert found
        self.token = found.group(1)
        self.page_html = page.text

    def upload(
        self,
        data: bytes,
        *,
        filename: str = "IMG_0001.jpg",
        content_type: str = "image/jpeg",
        csrf: str | None = "page",
    ) -> requests.Response:
        token = self.token if csrf == "page" else csrf
        headers = {"X-CSRFToken": token} if token else {}
        return self.http.post(
            f"{self.base}/api/v1/me/photos",
            files={"file": (filename, data, content_type)},
            headers=headers,
            timeout=60,
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.base}{path}", allow_redirects=False, timeout=10, **kwargs)


def enrolled_student(app: Flask, base: str, openid: str, **kwargs: Any) -> Student:
    user_id = prepare(app, openid, **kwargs)
    return Student(base, openid, user_id)
