"""`flask schools qrcode CODE`: a WeChat QR code with scene school:<code>, made through the sandbox
over real HTTP; following or scanning through it pre-selects the school on /h5/school."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring, redis_client
from app.sandbox import state
from app.services import identities, school_qrcodes, schools
from app.services.identities import IdentityInput
from app.services.localtime import BEIJING
from app.services.schools import BatchData
from media.spec import PhotoSpec
from models import User


@pytest.fixture
def school(app: Flask) -> str:
    with app.app_context():
        hunan = schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        now = datetime.now(UTC)
        schools.upsert_batch(
            db.session,
            hunan,
            BatchData(
                "成人教育 2026 年上学位申请",
                "成人教育",
                now - timedelta(days=1),
                now + timedelta(days=60),
                200,
                PhotoSpec(),
            ),
        )
        db.session.commit()
    return "10542"


def _qr_calls(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        return state.calls(redis_client(), "/cgi-bin/qrcode/create")


def _make(runner: FlaskCliRunner, *args: str) -> Any:
    return runner.invoke(args=["schools", "qrcode", *args])


def test_qrcode_is_created_at_wechat_and_written_as_png(
    app: Flask, runner: FlaskCliRunner, school: str, tmp_path: Path
) -> None:
    out = tmp_path / "posters" / "hunan.png"
    started = datetime.now(UTC)
    result = _make(runner, school, "--out", str(out), "--days", "7")
    assert result.exit_code == 0, result.output

    with Image.open(out) as image:
        assert image.format == "PNG"
        image.load()
        assert image.width == image.height and image.width >= 100
    [call] = _qr_calls(app)
    assert call["method"] == "POST"
    assert call["body"] == {
        "expire_seconds": 7 * 24 * 3600,
        "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": "school:10542"}},
    }
    assert str(out) in result.output and "湖南师范大学" in result.output
    expires = (started + timedelta(days=7)).astimezone(BEIJING).strftime("%Y-%m-%d")
    assert f"有效期至 {expires}" in result.output
    assert "场景值 school:10542" in result.output
    assert re.search(r"二维码内容 http://weixin\.qq\.com/q/\S+", result.output)
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left nothing behind


def test_default_path_and_days(app: Flask, runner: FlaskCliRunner, school: str) -> None:
    result = _make(runner, school)
    assert result.exit_code == 0, result.output
    default = Path(app.config["MEDIA_ROOT"]).parent / "qrcodes" / "10542.png"
    assert default.read_bytes().startswith(school_qrcodes.PNG_SIGNATURE)
    assert _qr_calls(app)[0]["body"]["expire_seconds"] == 30 * 24 * 3600


def test_unknown_school_is_a_clear_error_and_calls_nothing(
    app: Flask, runner: FlaskCliRunner, school: str, tmp_path: Path
) -> None:
    result = _make(runner, "99999", "--out", str(tmp_path / "x.png"))
    assert result.exit_code != 0
    assert "没有代码为 99999 的学校" in result.output
    assert _qr_calls(app) == [] and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("days", ["0", "31"])
def test_days_beyond_wechats_limit_are_refused(
    app: Flask, runner: FlaskCliRunner, school: str, days: str
) -> None:
    result = _make(runner, school, "--days", days)
    assert result.exit_code == 2 and "--days" in result.output
    assert _qr_calls(app) == []


def test_wechat_refusal_is_reported(
    app: Flask, runner: FlaskCliRunner, school: str, live_server: Any, tmp_path: Path
) -> None:
    fault = requests.post(
        f"{live_server.url}/_sandbox/api/_faults",
        json={"path": "/cgi-bin/qrcode/create", "errcode": 45009, "times": 1},
        timeout=10,
    )
    assert fault.status_code == 200
    result = _make(runner, school, "--out", str(tmp_path / "x.png"))
    assert result.exit_code != 0 and "errcode 45009" in result.output
    assert not (tmp_path / "x.png").exists()


def test_a_jpeg_from_wechat_is_stored_as_png() -> None:
    # Real WeChat's showqrcode answers with a JPEG; the file we write is a PNG either way.
    jpeg = io.BytesIO()
    Image.new("RGB", (60, 60), "white").save(jpeg, format="JPEG")
    png = school_qrcodes.as_png(jpeg.getvalue())
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (60, 60)
    with pytest.raises(school_qrcodes.QRCodeError):
        school_qrcodes.as_png(b"<html>error</html>")


# --- following or scanning through the code ---------------------------------------------------


def _code_url(output: str) -> str:
    match = re.search(r"二维码内容 (\S+)", output)
    assert match is not None, output
    return match.group(1)


def _phone(base: str, nickname: str) -> tuple[requests.Session, str]:
    phone = requests.Session()
    created = phone.post(f"{base}/_sandbox/phone/users", json={"nickname": nickname}, timeout=10)
    assert created.status_code == 201
    return phone, str(created.json()["user"]["openid"])


def _texts(delivery: requests.Response) -> str:
    assert delivery.status_code == 200, delivery.text
    body = delivery.json()
    assert body["failed"] is False
    return "\n".join(e.get("text") or "" for e in body["entries"] if e.get("direction") == "out")


def _school_page_for(base: str, app: Flask, openid: str, id_number: str, name: str) -> str:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.openid == openid))
        assert user is not None
        identities.bind(
            db.session, pii_keyring(), user.id, IdentityInput("resident_id", id_number, name), date.today()
        )
    browser = requests.Session()
    page = browser.get(f"{base}/_sandbox/login-as/{openid}", params={"next": "/h5/school"}, timeout=10)
    assert page.status_code == 200 and page.url.split("#")[0] == f"{base}/h5/school"
    return page.text


def test_following_and_scanning_through_the_code_preselect_the_school(
    app: Flask, runner: FlaskCliRunner, school: str, live_server: Any, tmp_path: Path
) -> None:
    made = _make(runner, school, "--out", str(tmp_path / "hunan.png"))
    assert made.exit_code == 0, made.output
    url = _code_url(made.output)
    base = live_server.url

    # A new follower: WeChat sends subscribe with EventKey qrscene_school:10542.
    newcomer, newcomer_openid = _phone(base, "新同学")
    reply = _texts(newcomer.post(f"{base}/_sandbox/phone/scan", json={"code": url}, timeout=10))
    assert "湖南师范大学" in reply and f"{base}/h5/school" in reply
    page = _school_page_for(base, app, newcomer_openid, "210101200101010011", "张三")
    assert 'data-preselect-code="10542"' in page and 'data-preselect-source="scene"' in page

    # An existing follower: WeChat sends SCAN with EventKey school:10542.
    follower, follower_openid = _phone(base, "老同学")
    assert follower.post(f"{base}/_sandbox/phone/follow", json={}, timeout=10).status_code == 200
    reply = _texts(follower.post(f"{base}/_sandbox/phone/scan", json={"code": url}, timeout=10))
    assert "湖南师范大学" in reply and f"{base}/h5/school" in reply
    with app.app_context():
        scanned = db.session.scalar(select(User).where(User.openid == follower_openid))
        assert scanned is not None and scanned.last_scene == "school:10542"
    page = _school_page_for(base, app, follower_openid, "11010519491231002X", "李四")
    assert 'data-preselect-code="10542"' in page
