"""The batch workflows over HTTP, as the student's pages call them: 须知 (我已阅读), 提交审核 in free and
review_first batches, the fee after 通过 within the pay window, the pledge and signature at
submission, and the final confirmation where the batch ends with one.

Students sign in through the sandbox's OAuth2 flow; WeChat Pay is the sandbox emulator over real
HTTP (its orders are kept in Redis, so "never called" is "no order there"); decisions are made
with the reviews service directly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.integrations import redis_client
from app.sandbox.pay import notifications as sandbox_notify
from app.sandbox.pay import orders as sandbox_orders
from app.services import reviews, wording
from app.services.pii import mask_id_number
from app.services.pushes import ResultPush
from models import Batch, Flow, LockOn, PaymentOrder, StaffRole, Submission, SubmissionStatus
from tests.factories import (
    NOTICE,
    NOW,
    PLEDGE,
    add_staff,
    make_flow_batch,
    make_linked_student,
    signature_data_url,
)
from tests.pay_students import set_pay_faults
from tests.photo_students import NUMBERS, Student

API = "/api/v1/me/submissions"


@pytest.fixture
def pay_app(app_factory: Any) -> Flask:
    app: Flask = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    return app


def _student(
    app: Flask, base: str, batch_id: int, openid: str, number: str = NUMBERS[0]
) -> tuple[Student, int]:
    with app.app_context():
        user_id, photo_id = make_linked_student(batch_id, openid, id_number=number)
        db.session.remove()
    return Student(base, openid, user_id), photo_id


def _batch(app: Flask, flow: Flow, **fields: Any) -> int:
    with app.app_context():
        batch_id = make_flow_batch(flow, **fields)
        db.session.remove()
        return batch_id


def _post(student: Student, path: str, body: Any = None) -> requests.Response:
    headers = {"X-CSRFToken": student.token}
    return student.http.post(f"{student.base}{path}", json=body, headers=headers, timeout=20)


def _errors(response: requests.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, str]] = response.json()["errors"]
    return errors


def _approve(app: Flask, submission_id: int) -> None:
    with app.app_context():
        admin = add_staff(f"admin-{submission_id}", StaffRole.ADMIN, [])
        db.session.commit()
        reviews.decide(
            db.session, admin, submission_id, "approve", None, NOW, push=ResultPush.from_config(app.config)
        )
        db.session.remove()


def _sandbox_orders(app: Flask) -> int:
    with app.app_context():
        return int(redis_client().scard(sandbox_orders.ORDERS))


def _count_orders(app: Flask) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(PaymentOrder))
        db.session.remove()
        return int(n or 0)


def test_the_notice_is_read_before_uploading_and_submitting(pay_app: Flask, live_server: Any) -> None:
    batch_id = _batch(pay_app, Flow.FREE, notice=NOTICE)
    student, photo_id = _student(pay_app, live_server.url, batch_id, "o-flow-notice")

    notice = student.get("/api/v1/me/notice").json()
    assert notice["text"] == NOTICE and notice["acknowledged_at"] is None
    # The photo page sends the student to the notice first, and submitting is refused.
    photo_page = student.get("/h5/photo").text
    assert 'data-state="need-notice"' in photo_page and 'href="/h5/notice"' in photo_page
    [error] = _errors(_post(student, API, {"photo_id": photo_id}))
    assert error["field"] == "notice" and "须知" in error["message"]
    page = student.get("/h5/notice")
    assert page.status_code == 200
    assert (
        'data-state="pending"' in page.text
        and "我已阅读" in page.text
        and "提交后请留意公众号通知" in page.text
    )

    read = _post(student, "/api/v1/me/notice")
    assert read.status_code == 200, read.text
    first = read.json()["acknowledged_at"]
    assert first is not None
    assert _post(student, "/api/v1/me/notice").json()["acknowledged_at"] == first  # once per link
    assert 'data-state="read"' in student.get("/h5/notice").text
    assert 'data-state="ready"' in student.get("/h5/photo").text
    assert _post(student, API, {"photo_id": photo_id}).status_code == 201


def test_a_batch_without_a_notice_says_so(pay_app: Flask, live_server: Any) -> None:
    batch_id = _batch(pay_app, Flow.FREE)
    student, _ = _student(pay_app, live_server.url, batch_id, "o-flow-no-notice")
    page = student.get("/h5/notice").text
    assert 'data-state="none"' in page and "没有需要阅读的须知" in page and 'href="/h5/photo"' in page


def test_free_submission_creates_no_order_and_never_calls_wechat_pay(
    pay_app: Flask, live_server: Any
) -> None:
    batch_id = _batch(pay_app, Flow.FREE, after_approval="请于11月30日前邮寄两张纸质照片至继续教育学院。")
    student, photo_id = _student(pay_app, live_server.url, batch_id, "o-flow-free")
    page = student.get("/h5/photo").text
    assert 'data-flow="free"' in page and "提交审核" in page and "免费" in page
    # Any call to WeChat Pay would now fail: the submission must not make one.
    set_pay_faults(pay_app, fail_500=5)

    created = _post(student, API, {"photo_id": photo_id})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["order"], body["fee_fen"]) == ("pending_review", None, 0)
    assert _count_orders(pay_app) == 0 and _sandbox_orders(pay_app) == 0
    # Nothing to pay, ever: renewing makes no order either.
    assert student.get(f"{API}/{body['id']}?renew=1").json()["order"] is None

    _approve(pay_app, body["id"])
    done = student.get(f"{API}/{body['id']}").json()
    assert done["status"] == "approved"
    assert _count_orders(pay_app) == 0 and _sandbox_orders(pay_app) == 0
    status = student.get("/h5/status").text
    assert 'data-testid="after-approval"' in status and "邮寄两张纸质照片" in status
    assert 'data-testid="receipt-link"' in status


def test_review_first_submit_then_approval_then_pay_in_the_window(pay_app: Flask, live_server: Any) -> None:
    batch_id = _batch(pay_app, Flow.REVIEW_FIRST)
    student, photo_id = _student(pay_app, live_server.url, batch_id, "o-flow-rf")
    with pay_app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None and batch.pay_opens_at and batch.pay_closes_at
        window = wording.window_text(batch.pay_opens_at, batch.pay_closes_at)
        db.session.remove()
    page = student.get("/h5/photo").text
    assert 'data-flow="review_first"' in page and "提交审核" in page and window in page

    created = _post(student, API, {"photo_id": photo_id})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["order"] is None and _sandbox_orders(pay_app) == 0

    _approve(pay_app, sid)
    waiting = student.get(f"{API}/{sid}").json()
    assert waiting["status"] == "approved_unpaid" and waiting["pay_window"] == window
    assert waiting["next_step"]["path"] == f"/h5/pay/{sid}"
    status = student.get("/h5/status").text
    assert (
        'data-testid="approved-unpaid"' in status and f'href="/h5/pay/{sid}"' in status and window in status
    )
    pay_page = student.get(f"/h5/pay/{sid}").text
    assert (
        "审核通过，请在缴费时间内缴费" in pay_page and window in pay_page and 'data-window="open"' in pay_page
    )

    ordered = student.get(f"{API}/{sid}?renew=1&channel=native")
    assert ordered.status_code == 200, ordered.text
    order = ordered.json()["order"]
    assert order["amount_fen"] == 200 and order["code_url"]
    scan = {"code_url": order["code_url"], "openid": "o-flow-rf"}
    assert requests.post(f"{live_server.url}/_sandbox/pay/scan", json=scan, timeout=10).status_code == 200
    with pay_app.app_context():
        assert [d["status"] for d in sandbox_notify.deliver_due_notifications(redis_client())] == [204]
    assert student.get(f"{API}/{sid}").json()["status"] == "approved"


@pytest.mark.parametrize("when", ["not_yet", "closed"])
def test_paying_outside_the_pay_window_is_refused_naming_it(
    pay_app: Flask, live_server: Any, when: str
) -> None:
    batch_id = _batch(pay_app, Flow.REVIEW_FIRST, pay_open=False)
    student, photo_id = _student(pay_app, live_server.url, batch_id, f"o-flow-win-{when}")
    sid = _post(student, API, {"photo_id": photo_id}).json()["id"]
    _approve(pay_app, sid)
    with pay_app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        if when == "closed":
            batch.pay_opens_at = NOW - timedelta(days=10)
            batch.pay_closes_at = NOW - timedelta(days=1)
            db.session.commit()
        assert batch.pay_opens_at and batch.pay_closes_at
        window = wording.window_text(batch.pay_opens_at, batch.pay_closes_at)
        db.session.remove()

    [error] = _errors(student.get(f"{API}/{sid}?renew=1&channel=native"))
    assert f"缴费时间为{window}" in error["message"]
    assert ("已截止" in error["message"]) == (when == "closed")
    assert _count_orders(pay_app) == 0 and _sandbox_orders(pay_app) == 0
    page = student.get(f"/h5/pay/{sid}").text
    assert f'data-window="{when}"' in page and f"缴费时间为{window}" in page


def test_the_pledge_and_signature_at_submission(pay_app: Flask, live_server: Any) -> None:
    batch_id = _batch(pay_app, Flow.FREE, pledge=PLEDGE, signature=True)
    student, photo_id = _student(pay_app, live_server.url, batch_id, "o-flow-pledge")
    page = student.get("/h5/photo").text
    assert PLEDGE in page and 'id="signature-pad"' in page and "清除" in page

    [error] = _errors(_post(student, API, {"photo_id": photo_id, "signature": signature_data_url()}))
    assert error["field"] == "pledge" and "承诺" in error["message"]
    [error] = _errors(_post(student, API, {"photo_id": photo_id, "pledge": True}))
    assert error["field"] == "signature" and "签名" in error["message"]
    blank = {"photo_id": photo_id, "pledge": True, "signature": signature_data_url(ink=False)}
    [error] = _errors(_post(student, API, blank))
    assert error["field"] == "signature" and "签名" in error["message"]
    garbage = {"photo_id": photo_id, "pledge": True, "signature": "data:image/png;base64,@@@"}
    assert _errors(_post(student, API, garbage))[0]["field"] == "signature"

    signed = {"photo_id": photo_id, "pledge": True, "signature": signature_data_url()}
    created = _post(student, API, signed)
    assert created.status_code == 201, created.text
    with pay_app.app_context():
        attempt = db.session.get(Submission, created.json()["id"])
        assert attempt is not None and attempt.pledged_at is not None and attempt.signature_key
        db.session.remove()


def test_the_final_confirmation_after_approval(pay_app: Flask, live_server: Any) -> None:
    batch_id = _batch(pay_app, Flow.FREE, lock_on=LockOn.CONFIRM, pledge=PLEDGE, signature=True)
    student, photo_id = _student(pay_app, live_server.url, batch_id, "o-flow-confirm")
    # The pledge is made at the confirmation here, not at submission.
    assert PLEDGE not in student.get("/h5/photo").text
    created = _post(student, API, {"photo_id": photo_id})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    signed = {"pledge": True, "signature": signature_data_url()}
    assert _errors(_post(student, f"{API}/{sid}/confirm", signed))[0]["field"] == "_"  # not approved yet
    assert 'data-state="not-now"' in student.get(f"/h5/confirm/{sid}").text

    _approve(pay_app, sid)
    approved = student.get(f"{API}/{sid}").json()
    assert approved["next_step"]["path"] == f"/h5/confirm/{sid}" and approved["confirmed_at"] is None
    status = student.get("/h5/status").text
    assert 'data-testid="confirm-pending"' in status and f'href="/h5/confirm/{sid}"' in status
    assert 'data-testid="receipt-link"' not in status
    page = student.get(f"/h5/confirm/{sid}").text
    assert 'data-state="pending"' in page and "确认提交" in page and PLEDGE in page
    assert "张三丰" in page and mask_id_number(NUMBERS[0]) in page and NUMBERS[0] not in page

    assert _errors(_post(student, f"{API}/{sid}/confirm", {"pledge": True}))[0]["field"] == "signature"
    confirmed = _post(student, f"{API}/{sid}/confirm", signed)
    assert confirmed.status_code == 200, confirmed.text
    at = confirmed.json()["confirmed_at"]
    assert at is not None
    assert _post(student, f"{API}/{sid}/confirm", signed).json()["confirmed_at"] == at  # harmless twice
    page = student.get(f"/h5/confirm/{sid}").text
    assert 'data-state="confirmed"' in page and 'href="/h5/receipt"' in page
    status = student.get("/h5/status").text
    assert 'data-testid="confirm-pending"' not in status and 'data-testid="receipt-link"' in status

    # Another student's attempt is not found.
    other, _ = _student(pay_app, live_server.url, batch_id, "o-flow-confirm-2", NUMBERS[2])
    assert other.get(f"/h5/confirm/{sid}").status_code == 404


def test_void_after_the_pay_window_closed(pay_app: Flask, live_server: Any) -> None:
    batch_id = _batch(pay_app, Flow.REVIEW_FIRST)
    student, photo_id = _student(pay_app, live_server.url, batch_id, "o-flow-void")
    sid = _post(student, API, {"photo_id": photo_id}).json()["id"]
    _approve(pay_app, sid)
    with pay_app.app_context():
        attempt = db.session.get(Submission, sid)
        assert attempt is not None
        attempt.status = SubmissionStatus.VOID
        db.session.commit()
        db.session.remove()
    status = student.get("/h5/status").text
    assert 'data-testid="void-notice"' in status and "逾期未缴费，报名无效" in status
    assert 'id="pay-page"' in student.get(f"/h5/pay/{sid}").text
