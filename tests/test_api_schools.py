"""关联学校 through HTTP: /api/v1/regions, /schools, /schools/<code>/batches, PUT /me/enrollment,
and the /h5/school page (sign-in, identity required, pre-selection, CSRF)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from app.extensions import db
from app.integrations import pii_keyring
from app.services import enrollments, identities, schools
from app.services.identities import IdentityInput
from app.services.localtime import BEIJING
from app.services.schools import BatchData
from media.spec import PhotoSpec
from models import Enrollment, User
from tests.factories import sign_in_student

OPENID = "oSchoolStudent000000000001"
ZHANG = IdentityInput("resident_id", "210101200101010011", "张三")
NOW = datetime.now(UTC)
SPEC = PhotoSpec(min_bytes=100 * 1024, max_bytes=200 * 1024, background="light_blue")


def _batch(name: str, opens: timedelta, closes: timedelta, **extra: Any) -> BatchData:
    return BatchData(
        name=name,
        education=extra.pop("education", "成人教育"),
        opens_at=NOW + opens,
        closes_at=NOW + closes,
        fee_fen=extra.pop("fee_fen", 200),
        photo_spec=extra.pop("photo_spec", SPEC),
        **extra,
    )


@pytest.fixture
def ids(app: Flask) -> dict[str, int]:
    """Three schools in two provinces; 湖南师范大学 has an open, a closed and a future batch."""
    with app.app_context():
        hunan = schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        found = {
            "open": schools.upsert_batch(
                db.session,
                hunan,
                _batch("成人教育 2026 年上学位申请", -timedelta(days=10), timedelta(days=90)),
            ).id,
            "closed": schools.upsert_batch(
                db.session,
                hunan,
                _batch("成人教育 2025 年下学位申请", -timedelta(days=200), -timedelta(days=20)),
            ).id,
            "future": schools.upsert_batch(
                db.session,
                hunan,
                _batch(
                    "成人教育 2027 年上学位申请",
                    timedelta(days=100),
                    timedelta(days=200),
                    fee_fen=350,
                    review_days_min=5,
                    review_days_max=5,
                ),
            ).id,
        }
        schools.upsert_school(db.session, "10538", "中南林业科技大学", "湖南省", "株洲市")
        wuhan = schools.upsert_school(db.session, "10496", "武汉轻工大学", "湖北省", "武汉市")
        found["wuhan"] = schools.upsert_batch(
            db.session,
            wuhan,
            _batch(
                "成人本科 2026 年上学士学位外语考试",
                -timedelta(days=1),
                timedelta(days=30),
                photo_spec=PhotoSpec(max_bytes=500 * 1024),
            ),
        ).id
        db.session.commit()
    return found


def _user(app: Flask, openid: str = OPENID, scene: str | None = None) -> int:
    with app.app_context():
        user = User(openid=openid, last_scene=scene)
        db.session.add(user)
        db.session.commit()
        return user.id


def _bind(app: Flask, user_id: int, data: IdentityInput = ZHANG) -> None:
    with app.app_context():
        identities.bind(db.session, pii_keyring(), user_id, data, date.today())


def _active(app: Flask, user_id: int) -> Enrollment | None:
    with app.app_context():
        found = db.session.scalar(select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.active))
        if found is not None:
            db.session.expunge(found)
        return found


# --- sign-in ------------------------------------------------------------------------------------


def test_every_endpoint_needs_sign_in_but_the_openapi_document(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    for path in ("/api/v1/regions", "/api/v1/schools?q=大学", "/api/v1/schools/10542/batches"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json == {"error": {"code": 401, "message": "请先登录"}}
    # A valid CSRF token but nobody signed in: still 401, and nothing linked.
    with app.test_request_context():
        from flask import session

        token = generate_csrf()
        raw = session["csrf_token"]
    with client.session_transaction() as sess:
        sess["csrf_token"] = raw
    response = client.put(
        "/api/v1/me/enrollment", json={"batch_id": ids["open"]}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 401
    with app.app_context():
        assert db.session.scalar(select(Enrollment)) is None
    assert client.get("/api/v1/openapi.json").status_code == 200
    page = client.get("/h5/school")
    assert page.status_code == 302 and "/auth/wechat/login" in page.headers["Location"]


def test_the_real_sign_in_flow_then_link_through_the_page_token(
    app: Flask, live_server: Any, ids: dict[str, int]
) -> None:
    browser = requests.Session()
    home = browser.get(f"{live_server.url}/_sandbox/login-as/{OPENID}", params={"next": "/h5/"}, timeout=10)
    assert home.status_code == 200 and home.url.split("#")[0] == f"{live_server.url}/h5/"
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.openid == OPENID))
    assert user_id is not None
    _bind(app, user_id)

    page = browser.get(f"{live_server.url}/h5/school", timeout=10)
    assert page.status_code == 200 and 'id="province"' in page.text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert match is not None
    regions = browser.get(f"{live_server.url}/api/v1/regions", timeout=10)
    assert regions.status_code == 200

    refused = browser.put(
        f"{live_server.url}/api/v1/me/enrollment", json={"batch_id": ids["open"]}, timeout=10
    )
    assert refused.status_code == 400
    assert _active(app, user_id) is None

    linked = browser.put(
        f"{live_server.url}/api/v1/me/enrollment",
        json={"batch_id": ids["open"]},
        headers={"X-CSRFToken": match.group(1)},
        timeout=10,
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["batch"]["id"] == ids["open"]
    assert linked.json()["school"]["code"] == "10542"
    enrollment = _active(app, user_id)
    assert enrollment is not None and enrollment.batch_id == ids["open"]


# --- the cascade --------------------------------------------------------------------------------


def test_regions_are_provinces_with_the_cities_that_have_schools(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    sign_in_student(app, client, _user(app))
    response = client.get("/api/v1/regions")
    assert response.status_code == 200
    provinces = {r["province"]: r["cities"] for r in response.json["provinces"]}
    assert provinces == {"湖南省": ["株洲市", "长沙市"], "湖北省": ["武汉市"]}


def test_schools_filter_by_province_and_city(app: Flask, client: FlaskClient, ids: dict[str, int]) -> None:
    sign_in_student(app, client, _user(app))
    everything = client.get("/api/v1/schools").json
    assert sorted(s["code"] for s in everything["schools"]) == ["10496", "10538", "10542"]
    assert everything["truncated"] is False
    hunan = client.get("/api/v1/schools", query_string={"province": "湖南省"}).json["schools"]
    assert sorted(s["code"] for s in hunan) == ["10538", "10542"]
    changsha = client.get("/api/v1/schools", query_string={"province": "湖南省", "city": "长沙市"}).json
    assert changsha["schools"] == [
        {"code": "10542", "name": "湖南师范大学", "province": "湖南省", "city": "长沙市"}
    ]
    assert (
        client.get("/api/v1/schools", query_string={"province": "湖北省", "city": "长沙市"}).json["schools"]
        == []
    )


def test_search_by_name_is_a_case_insensitive_substring_and_bounded(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    with app.app_context():
        schools.upsert_school(db.session, "hku", "The University of Hong Kong", "香港特别行政区", "香港")
        schools.upsert_school(db.session, "pct", "100%_学院", "湖南省", "长沙市")
        for n in range(schools.SEARCH_LIMIT + 5):
            schools.upsert_school(db.session, f"bulk{n:03d}", f"测试职业学院{n:03d}", "河南省", "郑州市")
        db.session.commit()
    sign_in_student(app, client, _user(app))

    def codes(**query: str) -> list[str]:
        response = client.get("/api/v1/schools", query_string=query)
        assert response.status_code == 200, response.json
        return [s["code"] for s in response.json["schools"]]

    assert codes(q="师范") == ["10542"]
    assert codes(q="  师范 ") == ["10542"]
    assert codes(q="UNIVERSITY of hong") == ["hku"]
    assert sorted(codes(q="大学")) == ["10496", "10538", "10542"]
    assert codes(q="大学", province="湖北省") == ["10496"]
    # LIKE's wildcards are plain characters to a student.
    assert codes(q="%") == ["pct"]
    assert codes(q="_") == ["pct"]
    assert codes(q="不存在的学校") == []

    bulk = client.get("/api/v1/schools", query_string={"q": "职业学院"}).json
    assert len(bulk["schools"]) == schools.SEARCH_LIMIT and bulk["truncated"] is True

    too_long = client.get("/api/v1/schools", query_string={"q": "学" * 51})
    assert too_long.status_code == 422
    assert too_long.json == {"errors": [{"field": "q", "message": "内容太长"}]}


def test_batches_carry_spec_fee_dates_and_review_days_and_mark_closed_ones(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    sign_in_student(app, client, _user(app))
    response = client.get("/api/v1/schools/10542/batches")
    assert response.status_code == 200
    body = response.json
    assert body["school"] == {"code": "10542", "name": "湖南师范大学", "province": "湖南省", "city": "长沙市"}
    by_id = {b["id"]: b for b in body["batches"]}
    assert set(by_id) == {ids["open"], ids["closed"], ids["future"]}
    # Newest first.
    assert [b["id"] for b in body["batches"]] == [ids["future"], ids["open"], ids["closed"]]

    opened = by_id[ids["open"]]
    assert opened["open"] is True and opened["closed_message"] is None
    assert opened["name"] == "成人教育 2026 年上学位申请" and opened["education"] == "成人教育"
    assert opened["fee_fen"] == 200 and opened["fee_label"] == "2 元"
    assert opened["review_days"] == {"min": 7, "max": 10, "label": "7–10 天"}
    assert opened["photo_spec"] == {
        "width": 480,
        "height": 640,
        "size_mode": "exact",
        "formats": ["jpeg"],
        "min_bytes": 100 * 1024,
        "max_bytes": 200 * 1024,
        "background": "light_blue",
        "background_label": "浅蓝色",
        "description": "480×640 像素，JPG 格式，100–200 KB，浅蓝色背景",
    }
    assert abs(datetime.fromisoformat(opened["opens_at"]) - (NOW - timedelta(days=10))) < timedelta(seconds=1)
    assert abs(datetime.fromisoformat(opened["closes_at"]) - (NOW + timedelta(days=90))) < timedelta(
        seconds=1
    )

    closed = by_id[ids["closed"]]
    closes_local = (NOW - timedelta(days=20)).astimezone(BEIJING).strftime("%Y年%m月%d日")
    assert closed["open"] is False
    assert "已于" in closed["closed_message"] and closes_local in closed["closed_message"]

    future = by_id[ids["future"]]
    assert future["open"] is False and "将于" in future["closed_message"]
    assert future["fee_label"] == "3.50 元"
    assert future["review_days"] == {"min": 5, "max": 5, "label": "5 天"}

    missing = client.get("/api/v1/schools/99999/batches")
    assert missing.status_code == 404
    assert missing.json["error"]["message"] == "找不到这所学校，请重新选择。"


# --- linking ------------------------------------------------------------------------------------


def test_linking_needs_a_bound_identity(app: Flask, client: FlaskClient, ids: dict[str, int]) -> None:
    user_id = _user(app)
    token = sign_in_student(app, client, user_id)
    response = client.put(
        "/api/v1/me/enrollment", json={"batch_id": ids["open"]}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["field"] == "batch_id" and error["message"].startswith("请先完成实名绑定")
    assert _active(app, user_id) is None


def test_link_an_open_batch_then_a_closed_one_is_refused_with_its_date(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    user_id = _user(app)
    _bind(app, user_id)
    token = sign_in_student(app, client, user_id)
    headers = {"X-CSRFToken": token}

    linked = client.put("/api/v1/me/enrollment", json={"batch_id": ids["open"]}, headers=headers)
    assert linked.status_code == 200, linked.json
    assert linked.json["school"]["code"] == "10542"
    assert linked.json["batch"]["id"] == ids["open"] and linked.json["batch"]["open"] is True
    assert linked.json["locked"] is False
    # Tapping 确定关联 twice is harmless.
    again = client.put("/api/v1/me/enrollment", json={"batch_id": ids["open"]}, headers=headers)
    assert again.status_code == 200

    closed = client.put("/api/v1/me/enrollment", json={"batch_id": ids["closed"]}, headers=headers)
    assert closed.status_code == 422
    [error] = closed.json["errors"]
    closes_local = (NOW - timedelta(days=20)).astimezone(BEIJING).strftime("%Y年%m月%d日")
    assert error["field"] == "batch_id"
    assert "已于" in error["message"] and closes_local in error["message"] and "截止" in error["message"]
    future = client.put("/api/v1/me/enrollment", json={"batch_id": ids["future"]}, headers=headers)
    assert future.status_code == 422 and "将于" in future.json["errors"][0]["message"]
    enrollment = _active(app, user_id)
    assert enrollment is not None and enrollment.batch_id == ids["open"]

    # Changing to another open batch (another school) is allowed until payment.
    moved = client.put("/api/v1/me/enrollment", json={"batch_id": ids["wuhan"]}, headers=headers)
    assert moved.status_code == 200 and moved.json["school"]["code"] == "10496"
    with app.app_context():
        rows = db.session.scalars(select(Enrollment).where(Enrollment.user_id == user_id)).all()
        assert sorted((e.batch_id, e.active) for e in rows) == sorted(
            [(ids["open"], False), (ids["wuhan"], True)]
        )


def test_link_refuses_missing_wrong_and_unknown_batch_ids(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    user_id = _user(app)
    _bind(app, user_id)
    headers = {"X-CSRFToken": sign_in_student(app, client, user_id)}
    for body, message in (
        ({}, "此项必填"),
        ({"batch_id": "第一批"}, "应为整数"),
        ({"batch_id": 0}, None),
        ({"batch_id": 999999}, "找不到这个批次，请重新选择。"),
    ):
        response = client.put("/api/v1/me/enrollment", json=body, headers=headers)
        assert response.status_code == 422, body
        [error] = response.json["errors"]
        assert error["field"] == "batch_id"
        if message:
            assert error["message"] == message
    assert _active(app, user_id) is None


def test_a_locked_link_cannot_change(app: Flask, client: FlaskClient, ids: dict[str, int]) -> None:
    user_id = _user(app)
    _bind(app, user_id)
    headers = {"X-CSRFToken": sign_in_student(app, client, user_id)}
    assert (
        client.put("/api/v1/me/enrollment", json={"batch_id": ids["open"]}, headers=headers).status_code
        == 200
    )
    with app.app_context():
        enrollments.lock(db.session, user_id)  # what a paid submission does
        db.session.commit()
    response = client.put("/api/v1/me/enrollment", json={"batch_id": ids["wuhan"]}, headers=headers)
    assert response.status_code == 422
    assert response.json["errors"] == [
        {"field": "batch_id", "message": enrollments.EnrollmentLockedError.message}
    ]
    page = client.get("/h5/school").get_data(as_text=True)
    assert 'id="locked-note"' in page and 'data-locked="1"' in page


def test_csrf_is_required_to_link(app: Flask, client: FlaskClient, ids: dict[str, int]) -> None:
    user_id = _user(app)
    _bind(app, user_id)
    sign_in_student(app, client, user_id)
    missing = client.put("/api/v1/me/enrollment", json={"batch_id": ids["open"]})
    forged = client.put(
        "/api/v1/me/enrollment", json={"batch_id": ids["open"]}, headers={"X-CSRFToken": "forged"}
    )
    for response in (missing, forged):
        assert response.status_code == 400
        assert response.json["error"]["code"] == 400
    assert _active(app, user_id) is None


# --- the page -----------------------------------------------------------------------------------


def test_page_without_identity_points_to_binding(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    sign_in_student(app, client, _user(app))
    page = client.get("/h5/school")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="need-identity"' in text and 'href="/h5/bind"' in text
    assert 'id="province"' not in text


def test_page_has_the_cascade_and_preselects_the_linked_school(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    user_id = _user(app)
    _bind(app, user_id)
    headers = {"X-CSRFToken": sign_in_student(app, client, user_id)}
    first = client.get("/h5/school").get_data(as_text=True)
    for selector in ('id="province"', 'id="city"', 'id="school"', 'id="batch-list"', 'id="link-button"'):
        assert selector in first
    assert 'data-preselect-code=""' in first and "确定关联" in first
    assert '<meta name="csrf-token"' in first and "h5/school.js" in first

    assert (
        client.put("/api/v1/me/enrollment", json={"batch_id": ids["wuhan"]}, headers=headers).status_code
        == 200
    )
    linked = client.get("/h5/school").get_data(as_text=True)
    assert 'data-preselect-code="10496"' in linked
    assert 'data-preselect-province="湖北省"' in linked and 'data-preselect-city="武汉市"' in linked
    assert f'data-preselect-batch="{ids["wuhan"]}"' in linked
    assert 'data-preselect-source="enrollment"' in linked
    assert 'id="current-link"' in linked and "武汉轻工大学" in linked


def test_page_preselects_the_school_of_the_scanned_qr_code(
    app: Flask, client: FlaskClient, ids: dict[str, int]
) -> None:
    user_id = _user(app, scene="school:10542")
    _bind(app, user_id)
    sign_in_student(app, client, user_id)
    text = client.get("/h5/school").get_data(as_text=True)
    assert 'data-preselect-code="10542"' in text and 'data-preselect-source="scene"' in text
    assert 'id="scene-note"' in text

    # A scene of a school that does not exist (deleted, mistyped poster) pre-selects nothing.
    other = _user(app, openid="oSchoolStudent000000000002", scene="school:nope")
    _bind(app, other, IdentityInput("resident_id", "11010519491231002X", "李四"))
    sign_in_student(app, client, other)
    text = client.get("/h5/school").get_data(as_text=True)
    assert 'data-preselect-code=""' in text and 'id="scene-note"' not in text


def test_openapi_documents_the_school_endpoints(app: Flask, client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"get"} <= set(paths["/api/v1/regions"])
    assert {"get"} <= set(paths["/api/v1/schools"])
    assert {"get"} <= set(paths["/api/v1/schools/{code}/batches"])
    put = paths["/api/v1/me/enrollment"]["put"]
    assert {"200", "401", "422"} <= set(put["responses"])
    query = {p["name"] for p in paths["/api/v1/schools"]["get"]["parameters"]}
    assert {"province", "city", "q"} <= query
