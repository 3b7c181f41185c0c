"""开始核验 over HTTP: POST /api/v1/me/submissions, GET …/<id>, POST …/<id>/refresh, GET …/<id>/qr.png.

Students sign in through the sandbox's OAuth2 flow (login-as) and call the API as the pages do;
WeChat Pay is the sandbox emulator over real HTTP (faults injected through its control API), its
notifications delivered by the test (WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False).
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import redis_client
from app.jobs.worker import run_due
from app.sandbox.pay import notifications as sandbox_notify
from models import Batch, PaymentOrder, Photo, Submission, SubmissionStatus, utcnow
from tests.photo_students import Student, enrolled_student, open_batch_id, prepare

API = "/api/v1/me/submissions"


@pytest.fixture
def pay_app(app_factory: Any) -> Flask:
    app: Flask = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    return app


def _photo(app: Flask, user_id: int, passed: bool = True) -> int:
    """A checked photo of the student's batch (the checks themselves are tested elsewhere)."""
    with app.app_context():
        photo = Photo(
            user_id=user_id,
            batch_id=open_batch_id(app),
            source="h5",
            original_key="k" * 64,
            original_sha256="s" * 64,
            original_bytes=150_000,
            passed=passed,
            checks=[],
            fixes=[],
        )
        db.session.add(photo)
        db.session.commit()
        photo_id = photo.id
        db.session.remove()
        return photo_id


def _ready(app: Flask, base: str, openid: str) -> tuple[Student, int]:
    student = enrolled_student(app, base, openid)
    assert student.user_id is not None
    return student, _photo(app, student.user_id)


def _post(student: Student, path: str, body: Any = None, csrf: str | None = "page") -> requests.Response:
    token = student.token if csrf == "page" else csrf
    headers = {"X-CSRFToken": token} if token else {}
    return student.http.post(f"{student.base}{path}", json=body, headers=headers, timeout=20)


def _errors(response: requests.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, str]] = response.json()["errors"]
    return errors


def _sandbox(base: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{base}/_sandbox/pay{path}", json=body, timeout=10)


def _deliver(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        return sandbox_notify.deliver_due_notifications(redis_client())


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
        return int(n or 0)


def test_start_pay_on_the_sheet_then_verified_and_queued(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-1")
    created = _post(student, API, {"photo_id": photo_id})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["status_label"], body["fee_fen"], body["fee_label"]) == (
        "awaiting_payment",
        "待缴费",
        200,
        "2 元",
    )
    order = body["order"]
    assert order["amount_fen"] == 200 and order["channel"] == "jsapi"
    assert order["code_url"] is None and order["qr_url"] is None
    assert order["jsapi"]["package"].startswith("prepay_id=") and order["jsapi"]["signType"] == "RSA"
    assert body["next_step"]["path"] == f"/h5/pay/{body['id']}"

    # The poll sees the same order, with the invocation signed again (no new order).
    polled = student.get(f"{API}/{body['id']}").json()
    assert polled["order"]["out_trade_no"] == order["out_trade_no"]
    assert polled["order"]["jsapi"]["package"] == order["jsapi"]["package"]

    paid = _sandbox(live_server.url, f"/{order['out_trade_no']}", {"action": "pay", "openid": "o-sub-1"})
    assert paid.status_code == 200, paid.text
    assert [d["status"] for d in _deliver(pay_app)] == [204]
    verifying = student.get(f"{API}/{body['id']}").json()
    assert (verifying["status"], verifying["status_label"], verifying["order"]) == (
        "verifying",
        "核验中",
        None,
    )
    assert "刷新结果数据" in verifying["next_step"]["message"]
    while run_due(pay_app):
        pass
    done = student.get(f"{API}/{body['id']}").json()
    assert (done["status"], done["status_label"]) == ("pending_review", "未审核")
    assert done["verification"]["result"] == "match"
    assert "7–10 天" in done["next_step"]["message"] or done["review_days"] in done["next_step"]["message"]
    assert done["paid_at"] is not None


def test_native_order_gives_a_qr_code_for_its_owner_only(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-qr")
    body = _post(student, API, {"photo_id": photo_id, "channel": "native"}).json()
    order = body["order"]
    assert order["channel"] == "native" and order["jsapi"] is None
    assert order["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    qr = student.get(order["qr_url"])
    assert qr.status_code == 200 and qr.headers["Content-Type"] == "image/png"
    assert "private" in qr.headers["Cache-Control"]
    image = Image.open(io.BytesIO(qr.content))
    assert image.size[0] == image.size[1] >= 200

    other = enrolled_student(pay_app, live_server.url, "o-sub-qr-other")
    assert other.get(order["qr_url"]).status_code == 404
    assert requests.get(f"{live_server.url}{order['qr_url']}", timeout=10).status_code == 401
    # A stale link (another order) is not served either.
    assert student.get(f"{API}/{body['id']}/qr.png?o=P000000000").status_code == 404

    # Scanning pays it once; the code cannot be used again.
    scan = {"code_url": order["code_url"], "openid": "o-sub-qr"}
    assert _sandbox(live_server.url, "/scan", scan).status_code == 200
    assert _sandbox(live_server.url, "/scan", scan).status_code != 200
    _deliver(pay_app)
    assert student.get(f"{API}/{body['id']}").json()["status"] == "verifying"
    assert student.get(order["qr_url"]).status_code == 404


def test_refusals(pay_app: Flask, live_server: Any) -> None:
    base = live_server.url
    # No identity bound, nothing linked.
    user_id = prepare(pay_app, "o-sub-bare", bind=False, link=False)
    bare = Student(base, "o-sub-bare", user_id)
    [error] = _errors(_post(bare, API, {"photo_id": 1}))
    assert error["field"] == "_" and "实名绑定" in error["message"]

    student, good = _ready(pay_app, base, "o-sub-ref")
    assert student.user_id is not None
    failed = _photo(pay_app, student.user_id, passed=False)
    [error] = _errors(_post(student, API, {"photo_id": failed}))
    assert error["field"] == "photo_id" and "通过检查" in error["message"]
    # Another student's photo is as unusable as a missing one.
    other, others_photo = _ready(pay_app, base, "o-sub-ref-2")
    assert _errors(_post(student, API, {"photo_id": others_photo}))[0]["field"] == "photo_id"
    assert _errors(_post(student, API, {"photo_id": 99_999}))[0]["field"] == "photo_id"
    # Malformed bodies.
    assert _errors(_post(student, API, {}))[0]["field"] == "photo_id"
    assert _errors(_post(student, API, {"photo_id": good, "channel": "app"}))[0]["field"] == "channel"
    # CSRF and sign-in.
    assert _post(student, API, {"photo_id": good}, csrf=None).status_code == 400
    assert _post(student, API, {"photo_id": good}, csrf="forged").status_code == 400
    assert requests.post(f"{base}{API}", json={"photo_id": good}, timeout=10).status_code in (400, 401)
    assert _count(pay_app, Submission) == 0

    # In flight: the second tap is refused and names the attempt under way.
    first = _post(student, API, {"photo_id": good})
    assert first.status_code == 201
    second = _post(student, API, {"photo_id": good})
    assert second.status_code == 422 and "待缴费" in second.json()["errors"][0]["message"]
    assert second.json()["submission_id"] == first.json()["id"]
    assert _count(pay_app, Submission) == 1

    # After a final 不通过 in this batch, no new attempt.
    with pay_app.app_context():
        attempt = db.session.get(Submission, first.json()["id"])
        assert attempt is not None
        attempt.status = SubmissionStatus.REFUSED
        db.session.commit()
        db.session.remove()
    [error] = _errors(_post(student, API, {"photo_id": good}))
    assert "不通过" in error["message"]

    # A closed batch.
    _other_photo = others_photo
    with pay_app.app_context():
        batch = db.session.get(Batch, open_batch_id(pay_app))
        assert batch is not None
        batch.closes_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        db.session.remove()
    [error] = _errors(_post(other, API, {"photo_id": _other_photo}))
    assert error["field"] == "_" and error["message"]
    assert _count(pay_app, Submission) == 1


def test_an_attempt_is_its_owners_only(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-own")
    sid = _post(student, API, {"photo_id": photo_id}).json()["id"]
    other = enrolled_student(pay_app, live_server.url, "o-sub-nosy")
    for path in (f"{API}/{sid}", f"{API}/{sid}?renew=1", f"{API}/{sid}/qr.png", f"{API}/999999"):
        assert other.get(path).status_code == 404, path
    assert _post(other, f"{API}/{sid}/refresh").status_code == 404
    assert requests.get(f"{live_server.url}{API}/{sid}", timeout=10).status_code == 401
    assert _post(student, f"{API}/{sid}/refresh", csrf=None).status_code == 400
    assert other.get(f"/h5/pay/{sid}").status_code == 404


def test_wechat_pay_down_keeps_the_attempt_and_a_retry_works(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-down")
    assert _sandbox(live_server.url, "/_ctl/faults", {"fail_500": 1}).status_code == 200
    down = _post(student, API, {"photo_id": photo_id})
    assert down.status_code == 503, down.text
    body = down.json()
    assert "微信支付" in body["error"]["message"] and body["submission_id"]
    sid = body["submission_id"]
    waiting = student.get(f"{API}/{sid}").json()
    assert waiting["status"] == "awaiting_payment" and waiting["order"] is None

    again = student.get(f"{API}/{sid}?renew=1")
    assert again.status_code == 200, again.text
    order = again.json()["order"]
    assert order["jsapi"]["package"].startswith("prepay_id=")
    with pay_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)) == 1
        db.session.remove()
    assert _sandbox(live_server.url, f"/{order['out_trade_no']}", {"action": "pay"}).status_code == 200

    # The query is down too: 503, nothing changes.
    _sandbox(live_server.url, "/_ctl/faults", {"drop_notifications": True, "fail_500": 1})
    refused = _post(student, f"{API}/{sid}/refresh")
    assert refused.status_code == 503 and refused.json()["submission_id"] == sid
    assert student.get(f"{API}/{sid}").json()["status"] == "awaiting_payment"


def test_refresh_applies_a_payment_whose_notification_was_dropped(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-drop")
    _sandbox(live_server.url, "/_ctl/faults", {"drop_notifications": True})
    body = _post(student, API, {"photo_id": photo_id}).json()
    sid = body["id"]
    unpaid = _post(student, f"{API}/{sid}/refresh")
    assert unpaid.status_code == 200 and unpaid.json()["status"] == "awaiting_payment"
    paid = _sandbox(
        live_server.url, f"/{body['order']['out_trade_no']}", {"action": "pay", "openid": "o-sub-drop"}
    )
    assert paid.status_code == 200
    assert _deliver(pay_app) == []
    assert student.get(f"{API}/{sid}").json()["status"] == "awaiting_payment"
    refreshed = _post(student, f"{API}/{sid}/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["status"] == "verifying"
    # Asking again changes nothing more.
    assert _post(student, f"{API}/{sid}/refresh").json()["status"] == "verifying"
    with pay_app.app_context():
        order = db.session.scalars(select(PaymentOrder)).one()
        assert order.status == "paid" and order.transaction_id
        db.session.remove()


def test_an_expired_order_is_renewed_on_request(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-exp")
    body = _post(student, API, {"photo_id": photo_id, "channel": "native"}).json()
    sid, first = body["id"], body["order"]
    with pay_app.app_context():
        order = db.session.scalars(select(PaymentOrder)).one()
        order.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        db.session.remove()
    stale = student.get(f"{API}/{sid}").json()
    assert stale["status"] == "awaiting_payment" and stale["order"] is None
    assert student.get(first["qr_url"]).status_code == 404
    renewed = student.get(f"{API}/{sid}?renew=1").json()["order"]
    assert renewed["out_trade_no"] != first["out_trade_no"]
    assert renewed["code_url"] != first["code_url"] and renewed["channel"] == "native"
    assert student.get(renewed["qr_url"]).status_code == 200
    # Renewing again while the new one is valid keeps it.
    assert student.get(f"{API}/{sid}?renew=1").json()["order"]["out_trade_no"] == renewed["out_trade_no"]
    # Switching to JSAPI (the page opened inside WeChat) gives a JSAPI order.
    jsapi = student.get(f"{API}/{sid}?renew=1&channel=jsapi").json()["order"]
    assert jsapi["channel"] == "jsapi" and jsapi["jsapi"]


def test_the_endpoints_are_documented(pay_app: Flask, live_server: Any) -> None:
    document = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=10).json()
    paths = document["paths"]
    assert "post" in paths["/api/v1/me/submissions"]
    assert "get" in paths["/api/v1/me/submissions/{submission_id}"]
    assert "post" in paths["/api/v1/me/submissions/{submission_id}/refresh"]
    assert "get" in paths["/api/v1/me/submissions/{submission_id}/qr.png"]
    responses = paths["/api/v1/me/submissions"]["post"]["responses"]
    assert {"201", "422", "503"} <= set(responses)


def test_a_photo_a_reviewer_returned_is_refused_naming_photo_id(pay_app: Flask, live_server: Any) -> None:
    student, photo_id = _ready(pay_app, live_server.url, "o-sub-returned")
    created = _post(student, API, {"photo_id": photo_id})
    assert created.status_code == 201, created.text
    with pay_app.app_context():
        attempt = db.session.get(Submission, created.json()["id"])
        assert attempt is not None
        attempt.status = SubmissionStatus.RETURNED
        attempt.status_reason = "人像不清晰"
        db.session.commit()
        db.session.remove()

    [error] = _errors(_post(student, API, {"photo_id": photo_id}))
    assert error["field"] == "photo_id"
    assert "已被审核老师驳回" in error["message"] and "人像不清晰" in error["message"]
    assert _count(pay_app, Submission) == 1
    latest = student.get("/api/v1/me/photos/latest")
    assert latest.json()["rejected"] == {
        "status_label": "驳回",
        "reason": "人像不清晰",
        "decided_at": None,
    }
