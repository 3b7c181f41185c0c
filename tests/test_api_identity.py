"""/api/v1/me, /api/v1/me/identity, /api/v1/identity/check and the /h5/bind and /h5/me pages,
through real HTTP: students sign in through the sandbox's OAuth2 flow (login-as) and call the API
the way the pages do, with the page's CSRF token in X-CSRFToken."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import inspect, select, text

from app.extensions import db
from app.services import demo_data, enrollments, identities
from models import Batch, Identity, School, User

ZHANG = {"id_type": "resident_id", "id_number": "210101200101010011", "name": "张三"}
# The same person typing with spaces, a lower-case letter and full-width digits.
ZHANG_TYPED = {"id_type": "resident_id", "id_number": " 2101 0120 0101 ０１００１１ ", "name": " 张三 "}
LI = {"id_type": "resident_id", "id_number": "11010519491231002X", "name": "李四"}
WRONG_CHECK_DIGIT = "210101200101010012"
LOCK_MESSAGE = identities.IdentityLockedError.message


class Student:
    """A browser signed in as one WeChat user, holding the CSRF token of the page it is on."""

    def __init__(self, base: str, openid: str) -> None:
        self.base = base
        self.http = requests.Session()
        page = self.http.get(f"{base}/_sandbox/login-as/{openid}", params={"next": "/h5/me"}, timeout=10)
        assert page.status_code == 200 and page.url.split("#")[0] == f"{base}/h5/me", page.url
        self.token = _csrf_token(page.text)

    def call(self, method: str, path: str, body: Any = None, csrf: str | None = "page") -> requests.Response:
        """`csrf`: "page" sends the page's token; None sends none; anything else is sent as it is."""
        token = self.token if csrf == "page" else csrf
        headers = {"X-CSRFToken": token} if token else {}
        return self.http.request(method, f"{self.base}/api/v1{path}", json=body, headers=headers, timeout=10)

    def page(self, path: str) -> requests.Response:
        return self.http.get(f"{self.base}{path}", allow_redirects=False, timeout=10)


def _csrf_token(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "every page carries the CSRF token"
    return found.group(1)


def _errors(response: requests.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"errors"}
    errors: list[dict[str, str]] = body["errors"]
    return errors


def _user_id(app: Flask, openid: str) -> int:
    with app.app_context():
        user_id: int = db.session.scalar(select(User.id).where(User.openid == openid))
        return user_id


def _identity_rows(app: Flask) -> list[tuple[int, bool, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(Identity.user_id, Identity.active, Identity.end_reason).order_by(Identity.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def base(live_server: Any, app: Flask) -> str:
    url: str = live_server.url
    return url


# ---- sign-in and CSRF ---------------------------------------------------------------------------


def test_every_endpoint_answers_401_json_when_signed_out(base: str) -> None:
    anonymous = requests.Session()
    # A page (any, here the 404 page) gives this browser a session with a CSRF token, so the
    # refusals below are about sign-in and not about CSRF.
    token = _csrf_token(anonymous.get(f"{base}/h5/no-such-page", timeout=10).text)
    calls = [
        ("GET", "/me", None),
        ("PUT", "/me/identity", ZHANG),
        ("DELETE", "/me/identity", None),
        ("POST", "/identity/check", ZHANG),
    ]
    for method, path, body in calls:
        response = anonymous.request(
            method, f"{base}/api/v1{path}", json=body, headers={"X-CSRFToken": token}, timeout=10
        )
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"error": {"code": 401, "message": "请先登录"}}
    for page in ("/h5/bind", "/h5/me"):
        response = anonymous.get(f"{base}{page}", allow_redirects=False, timeout=10)
        assert response.status_code == 302 and "/auth/wechat/login" in response.headers["Location"]


def test_state_changing_calls_need_the_csrf_token(app: Flask, base: str) -> None:
    student = Student(base, "o-csrf")
    for token in (None, "forged-token"):
        for method, path, body in (
            ("PUT", "/me/identity", ZHANG),
            ("DELETE", "/me/identity", None),
            ("POST", "/identity/check", ZHANG),
        ):
            response = student.call(method, path, body, csrf=token)
            assert response.status_code == 400, (method, path, token)
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json() == {
                "error": {"code": 400, "message": "页面已过期或来源不明，请刷新页面后再试。"}
            }
    assert _identity_rows(app) == []
    # Reading needs no token; the same call with the page's token goes through.
    assert student.call("GET", "/me", csrf=None).status_code == 200
    assert student.call("PUT", "/me/identity", ZHANG).status_code == 200


# ---- bind, check, modify, unbind ----------------------------------------------------------------


def test_bind_through_the_real_sign_in_then_read_it_back_masked(app: Flask, base: str) -> None:
    student = Student(base, "o-zhang")
    before = student.call("GET", "/me").json()
    assert before == {
        "identity": None,
        "enrollment": None,
        "progress": {
            "step": "bind",
            "title": "实名绑定",
            "message": "第一步：请先完成实名绑定（姓名和证件号码）。",
            "path": "/h5/bind",
        },
        # The checklist before a batch is linked: the steps every flow has.
        "steps": [
            {
                "key": "bind",
                "label": "实名绑定",
                "status": "current",
                "url": "/h5/bind",
                "hint": "请填写姓名和证件号码，完成实名绑定。",
            },
            {"key": "school", "label": "关联学校", "status": "todo", "url": "/h5/school", "hint": ""},
            {"key": "photo", "label": "上传照片", "status": "todo", "url": "/h5/photo", "hint": ""},
            {"key": "review", "label": "审核", "status": "todo", "url": "/h5/status", "hint": ""},
        ],
    }
    bound = student.call("PUT", "/me/identity", ZHANG_TYPED)
    assert bound.status_code == 200, bound.text
    assert [(s["key"], s["status"]) for s in bound.json()["steps"]][:2] == [
        ("bind", "done"),
        ("school", "current"),
    ]
    identity = bound.json()["identity"]
    assert {k: identity[k] for k in identity if k != "bound_at"} == {
        "id_type": "resident_id",
        "id_type_label": "居民身份证",
        "number_masked": "2101**********0011",
        "name_masked": "张*",
        "birth_date": "2001-01-01",
        "sex": "男",
        "locked": False,
        "locked_message": None,
    }
    assert bound.json()["progress"]["step"] == "school"
    assert student.call("GET", "/me").json() == bound.json()
    # Submitting the same identity again (a double tap) changes nothing.
    assert student.call("PUT", "/me/identity", ZHANG).json() == bound.json()
    assert _identity_rows(app) == [(_user_id(app, "o-zhang"), True, None)]


def test_check_normalises_masks_and_derives_without_saving(app: Flask, base: str) -> None:
    student = Student(base, "o-check")
    ok = student.call(
        "POST", "/identity/check", {"id_type": "resident_id", "id_number": "11010519491231002x"}
    )
    assert ok.status_code == 200
    assert ok.json() == {
        "id_type": "resident_id",
        "id_type_label": "居民身份证",
        "number_masked": "1101**********002X",
        "birth_date": "1949-12-31",
        "sex": "女",
        "region": "北京市",
        "confirm": "请核对：1949年12月31日出生，女",
    }
    permit = student.call(
        "POST", "/identity/check", {"id_type": "hk_macao_permit", "id_number": "h1234 5678"}
    )
    # Normalised (upper case, no space) and masked; how much a mask hides is pii.mask_id_number's rule.
    masked = permit.json()["number_masked"]
    assert masked[0] == "H" and "*" in masked and " " not in masked and masked != "H12345678"
    assert permit.json()["confirm"] == "号码格式正确，请与证件逐位核对（香港）"
    assert permit.json()["birth_date"] is None and permit.json()["sex"] is None
    passport = student.call(
        "POST", "/identity/check", {"id_type": "passport", "id_number": "e12345678", "name": "John  Smith"}
    )
    assert passport.status_code == 200 and passport.json()["number_masked"].startswith("E")
    name_only = student.call("POST", "/identity/check", {"id_type": "resident_id", "name": "阿依古丽•买买提"})
    assert name_only.status_code == 200 and name_only.json()["number_masked"] is None

    def errors(body: dict[str, str]) -> list[dict[str, str]]:
        return _errors(student.call("POST", "/identity/check", body))

    assert errors({"id_type": "resident_id", "id_number": WRONG_CHECK_DIGIT}) == [
        {"field": "id_number", "message": "证件号码校验位不正确，请逐位核对（最后一位 X 请大写）"}
    ]
    assert errors({"id_type": "resident_id", "id_number": "210101010101001"}) == [
        {"field": "id_number", "message": "这是旧的 15 位身份证号，请填写现在使用的 18 位号码"}
    ]
    # Both fields wrong: both messages, each beside its own field.
    assert [e["field"] for e in errors({"id_type": "resident_id", "id_number": "123", "name": "Zhang"})] == [
        "id_number",
        "name",
    ]
    assert errors({"id_type": "resident_id"}) == [{"field": "id_number", "message": "请填写证件号码"}]
    assert errors({"id_type": "driving_licence", "id_number": "1"}) == [
        {"field": "id_type", "message": "不是可选的值"}
    ]
    assert errors({"id_type": "passport", "id_number": "E1", "extra": 1})[-1] == {
        "field": "extra",
        "message": "不认识的字段",
    }
    assert _identity_rows(app) == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**ZHANG, "id_number": WRONG_CHECK_DIGIT}, "id_number", "校验位不正确"),
        ({**ZHANG, "id_number": "990101200101010011"}, "id_number", "省份代码"),
        ({**ZHANG, "id_number": "810000199001010019"}, "id_number", "港澳台居民居住证"),
        ({**ZHANG, "name": "Zhang San"}, "name", "中文姓名"),
        ({**ZHANG, "name": "   "}, "name", "请填写姓名"),
        ({**ZHANG, "id_type": "other"}, "id_type", "不是可选的值"),
        ({"id_type": "resident_id", "name": "张三"}, "id_number", "此项必填"),
        ({**ZHANG, "id_number": "1" * 41}, "id_number", "内容太长"),
    ],
)
def test_bind_refusals_come_back_beside_their_field(
    app: Flask, base: str, body: dict[str, str], field: str, message: str
) -> None:
    student = Student(base, "o-refused")
    [error] = _errors(student.call("PUT", "/me/identity", body))
    assert error["field"] == field and message in error["message"]
    assert _identity_rows(app) == []


def test_a_body_that_is_not_json_is_refused_in_chinese(base: str) -> None:
    student = Student(base, "o-garbage")
    response = student.http.put(
        f"{base}/api/v1/me/identity",
        data="{not json",
        headers={"X-CSRFToken": student.token, "Content-Type": "application/json"},
        timeout=10,
    )
    assert {e["field"] for e in _errors(response)} == {"id_type", "id_number", "name"}


def test_the_same_identity_on_a_second_account_is_refused_until_the_first_unbinds(
    app: Flask, base: str
) -> None:
    first, second = Student(base, "o-first"), Student(base, "o-second")
    assert first.call("PUT", "/me/identity", ZHANG).status_code == 200
    refused = second.call("PUT", "/me/identity", ZHANG_TYPED)
    assert _errors(refused) == [{"field": "id_number", "message": identities.IdentityTakenError.message}]
    assert "取消微信绑定" in identities.IdentityTakenError.message
    assert second.call("GET", "/me").json()["identity"] is None
    # 换绑: unbind on the first account, then the second may bind.
    assert first.call("DELETE", "/me/identity").json()["identity"] is None
    assert second.call("PUT", "/me/identity", ZHANG).json()["identity"]["name_masked"] == "张*"
    assert _errors(first.call("PUT", "/me/identity", ZHANG))[0]["field"] == "id_number"
    first_id, second_id = _user_id(app, "o-first"), _user_id(app, "o-second")
    assert _identity_rows(app) == [(first_id, False, "unbound"), (second_id, True, None)]


def test_modify_replaces_the_binding_and_keeps_the_old_one(app: Flask, base: str) -> None:
    student = Student(base, "o-modify")
    student.call("PUT", "/me/identity", ZHANG)
    modified = student.call("PUT", "/me/identity", {**LI, "name": "欧阳小明"})
    assert modified.status_code == 200
    identity = modified.json()["identity"]
    assert (identity["number_masked"], identity["name_masked"], identity["sex"]) == (
        "1101**********002X",
        "欧**明",
        "女",
    )
    user_id = _user_id(app, "o-modify")
    assert _identity_rows(app) == [(user_id, False, "modified"), (user_id, True, None)]
    # The old document is free again for someone else.
    assert Student(base, "o-other").call("PUT", "/me/identity", ZHANG).status_code == 200


def test_unbind_ends_the_school_link_too_and_a_rebind_starts_over(app: Flask, base: str) -> None:
    student = Student(base, "o-unbind")
    student.call("PUT", "/me/identity", ZHANG)
    user_id = _user_id(app, "o-unbind")
    with app.app_context():
        demo_data.load_schools(db.session)
        batch_id = db.session.scalar(
            select(Batch.id).join(School).where(School.code == "10542").order_by(Batch.closes_at.desc())
        )
        enrollments.link(db.session, user_id, batch_id, datetime.now(UTC))
    assert student.call("GET", "/me").json()["enrollment"]["school"]["name"] == "湖南师范大学"

    unbound = student.call("DELETE", "/me/identity")
    assert unbound.status_code == 200
    assert (unbound.json()["identity"], unbound.json()["enrollment"]) == (None, None)
    assert unbound.json()["progress"]["step"] == "bind"
    assert _errors(student.call("DELETE", "/me/identity")) == [
        {"field": "_", "message": identities.IdentityNotBoundError.message}
    ]
    rebound = student.call("PUT", "/me/identity", ZHANG)
    assert rebound.json()["identity"]["number_masked"] == "2101**********0011"
    assert rebound.json()["progress"]["step"] == "school"  # the school is linked again afresh
    assert _identity_rows(app) == [(user_id, False, "unbound"), (user_id, True, None)]


def test_a_locked_identity_cannot_be_modified_or_unbound(app: Flask, base: str) -> None:
    student = Student(base, "o-locked")
    student.call("PUT", "/me/identity", ZHANG)
    with app.app_context():
        identities.lock(db.session, _user_id(app, "o-locked"))
        db.session.commit()
    assert _errors(student.call("PUT", "/me/identity", {**ZHANG, "name": "张叁"})) == [
        {"field": "_", "message": LOCK_MESSAGE}
    ]
    assert _errors(student.call("DELETE", "/me/identity")) == [{"field": "_", "message": LOCK_MESSAGE}]
    identity = student.call("GET", "/me").json()["identity"]
    assert (identity["locked"], identity["locked_message"], identity["name_masked"]) == (
        True,
        LOCK_MESSAGE,
        "张*",
    )
    # The pages explain the lock and offer neither 修改 nor 取消微信绑定.
    for path in ("/h5/bind", "/h5/me"):
        html = student.page(path).text
        assert LOCK_MESSAGE in html
        assert 'data-testid="unbind"' not in html and 'data-testid="modify"' not in html
    assert 'id="bind-form"' not in student.page("/h5/bind").text


# ---- what a student sees -------------------------------------------------------------------------


def test_me_shows_the_school_batch_fee_and_photo_spec(app: Flask, base: str) -> None:
    student = Student(base, "o-enrolled")
    student.call("PUT", "/me/identity", ZHANG)
    with app.app_context():
        demo_data.load_schools(db.session)
        batch = db.session.scalars(
            select(Batch).join(School).where(School.code == "10542").order_by(Batch.closes_at.desc())
        ).first()
        assert batch is not None
        batch_id, batch_name = batch.id, batch.name
        enrollments.link(db.session, _user_id(app, "o-enrolled"), batch_id, datetime.now(UTC))
    me = student.call("GET", "/me").json()
    enrollment = me["enrollment"]
    assert enrollment["school"] == {
        "code": "10542",
        "name": "湖南师范大学",
        "province": "湖南省",
        "city": "长沙市",
    }
    assert {
        k: enrollment["batch"][k] for k in ("id", "name", "is_open", "fee_fen", "fee_label", "review_days")
    } == {
        "id": batch_id,
        "name": batch_name,
        "is_open": True,
        "fee_fen": 200,
        "fee_label": "2 元",
        "review_days": "7–10 天",
    }
    assert enrollment["batch"]["photo_spec"] == "480×640 像素，JPG 格式，100–200 KB，浅蓝色背景"
    assert enrollment["locked"] is False
    # 湖南师范大学's batch has a 须知: reading it comes before the photo.
    assert me["progress"]["step"] == "notice" and me["progress"]["path"] == "/h5/notice"

    html = student.page("/h5/me").text
    for shown in (
        "张*",
        "2101**********0011",
        "湖南师范大学",
        batch_name,
        "浅蓝色背景",
        "2 元/次",
        "阅读须知",
        "/h5/notice",
    ):
        assert shown in html, shown
    assert ZHANG["id_number"] not in html and "张三" not in html


def test_the_bind_page_before_and_after_binding(base: str) -> None:
    student = Student(base, "o-pages")
    empty = student.page("/h5/bind")
    assert empty.status_code == 200
    html = empty.text
    assert 'id="bind-form"' in html and "确定绑定" in html and "来华留学生选「护照」" in html
    for label in (
        "居民身份证",
        "港澳台居民居住证",
        "港澳居民来往内地通行证",
        "台湾居民来往大陆通行证",
        "护照",
    ):
        assert f">{label}</option>" in html
    student.call("PUT", "/me/identity", ZHANG)
    bound = student.page("/h5/bind?done=bound").text
    assert "实名绑定成功" in bound and "2101**********0011" in bound and "张*" in bound
    assert "2001年1月1日" in bound and "去关联学校" in bound and 'href="/h5/school"' in bound
    assert ZHANG["id_number"] not in bound and "张三" not in bound


# ---- access control and personal data ------------------------------------------------------------


def test_one_student_never_reads_or_changes_anothers_data(app: Flask, base: str) -> None:
    alice, bob = Student(base, "o-alice"), Student(base, "o-bob")
    alice.call("PUT", "/me/identity", ZHANG)
    bob.call("PUT", "/me/identity", LI)
    assert alice.call("GET", "/me").json()["identity"]["number_masked"] == "2101**********0011"
    assert bob.call("GET", "/me").json()["identity"]["number_masked"] == "1101**********002X"
    # Alice's unbind and modify touch only Alice.
    alice.call("DELETE", "/me/identity")
    assert bob.call("GET", "/me").json()["identity"]["name_masked"] == "李*"
    alice.call("PUT", "/me/identity", {**ZHANG, "name": "张叁"})
    assert bob.call("GET", "/me").json()["identity"]["name_masked"] == "李*"
    assert "李*" not in alice.page("/h5/me").text and "1101**********002X" not in alice.page("/h5/me").text
    # Alice cannot become Bob by editing her cookie: Flask signs it.
    forged = requests.Session()
    for cookie in alice.http.cookies:
        if cookie.name == "session":
            forged.cookies.set("session", cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert forged.get(f"{base}/api/v1/me", timeout=10).status_code == 401
    # Identity and enrollment routes take no id: there is nothing to point at someone else. The only
    # ids are a student's own attempts and documents, and each of those routes answers 404 to anyone
    # else (tests/test_api_submissions.py::test_an_attempt_is_its_owners_only,
    # tests/test_applications.py::test_another_student_can_neither_delete_nor_open_a_document); a
    # document slot is the batch's name for it, not anyone's data.
    own = [
        r for r in app.url_map.iter_rules() if r.rule.startswith(("/api/v1/me", "/api/v1/identity", "/h5/"))
    ]
    with_ids = [r for r in own if r.arguments]
    allowed = ({"submission_id"}, {"document_id"}, {"slot"})
    assert own and all(r.arguments in allowed for r in with_ids), [r.rule for r in with_ids]


def test_the_raw_id_number_and_name_are_nowhere_in_the_database_or_the_logs(
    app: Flask, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = Student(base, "o-secret"), Student(base, "o-thief")
    first.call("POST", "/identity/check", ZHANG)
    first.call("PUT", "/me/identity", ZHANG_TYPED)
    _errors(second.call("PUT", "/me/identity", ZHANG))  # the conflict path logs too
    first.call("PUT", "/me/identity", {**ZHANG, "name": "张叁"})
    first.call("DELETE", "/me/identity")
    first.call("PUT", "/me/identity", ZHANG)
    secrets = ("210101200101010011", "2101012001", "张三", "张叁")

    with app.app_context():
        inspector = inspect(db.engine)
        dumped = []
        for table in inspector.get_table_names():
            for row in db.session.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608 (names from the schema)
                dumped.append(" ".join(str(v) for v in row))
        stored = "\n".join(dumped)
        assert db.session.scalar(select(Identity).where(Identity.active)) is not None
    assert stored and "gAAAAA" in stored  # the Fernet tokens are there…
    for secret in secrets:
        assert secret not in stored, secret  # …and the plaintext is not

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "identity bound" in logged and "2101**********0011" in logged and "张*" in logged
    for secret in secrets:
        assert secret not in logged, secret


def test_the_openapi_document_describes_the_endpoints(base: str) -> None:
    doc = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    paths = doc["paths"]
    assert {"get"} <= set(paths["/api/v1/me"])
    assert {"put", "delete"} <= set(paths["/api/v1/me/identity"])
    assert "post" in paths["/api/v1/identity/check"]
    put = paths["/api/v1/me/identity"]["put"]
    assert set(put["responses"]) >= {"200", "400", "401", "422"}
    schema_name = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][schema_name]["properties"]) == {"id_type", "id_number", "name"}
