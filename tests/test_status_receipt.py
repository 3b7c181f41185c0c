"""/h5/status for every state, the receipt (approved only) and /verify/<token>, through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.services import receipts
from models import Submission, SubmissionStatus, User
from tests.factories import ID_NUMBER, NOW, STUDENT_NAME, make_batch, make_student


def sign_in(client: FlaskClient, user_id: int) -> None:
    with client.session_transaction() as sess:
        sess["user_id"] = user_id


def page(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


VERIFY_URL = re.compile(r'data-verify-url="([^"]+)"')


@pytest.mark.parametrize(
    ("status", "reason", "expected", "absent"),
    [
        (SubmissionStatus.PENDING_REVIEW, None, ["未审核", "7–10 天"], ["回执单", "修改后重新提交"]),
        (SubmissionStatus.IN_REVIEW, None, ["审核中", "正在审核"], ["回执单", "修改后重新提交"]),
        (SubmissionStatus.APPROVED, None, ["通过", 'href="/h5/receipt"'], ["修改后重新提交", "最终结果"]),
        (
            SubmissionStatus.RETURNED,
            "背景颜色不符",
            ["驳回", "背景颜色不符", "修改后重新提交", 'href="/h5/photo"'],
            ["/h5/receipt", "最终结果"],
        ),
        (
            SubmissionStatus.REFUSED,
            "非本人近期照片",
            ["不通过", "非本人近期照片", "最终结果"],
            ["/h5/receipt", "修改后重新提交"],
        ),
        (
            SubmissionStatus.VERIFY_FAILED,
            "姓名与证件号码不一致",
            ["身份核验失败", "姓名与证件号码不一致", "/h5/bind"],
            ["/h5/receipt"],
        ),
        (SubmissionStatus.AWAITING_PAYMENT, None, ["待缴费", "请完成缴费"], ["/h5/receipt"]),
    ],
)
def test_status_page_for_each_state(
    app: Flask,
    client: FlaskClient,
    status: SubmissionStatus,
    reason: str | None,
    expected: list[str],
    absent: list[str],
) -> None:
    with app.app_context():
        student = make_student(make_batch(), status, reason=reason)
    sign_in(client, student.user_id)
    html = page(client, "/h5/status")
    assert f'data-status="{status.value}"' in html
    for text in expected:
        assert text in html, text
    for text in absent:
        assert text not in html, text


def test_status_requires_sign_in(client: FlaskClient) -> None:
    response = client.get("/h5/status")
    assert response.status_code == 302
    assert "next=/h5/status" in response.location


def test_returned_after_the_batch_closed_offers_no_resubmit(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(make_batch(open_=False), SubmissionStatus.RETURNED, reason="背景颜色不符")
    sign_in(client, student.user_id)
    html = page(client, "/h5/status")
    assert "已截止" in html and "修改后重新提交" not in html


def test_history_lists_every_attempt_newest_first(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        batch_id = make_batch()
        student = make_student(batch_id, SubmissionStatus.RETURNED, reason="背景颜色不符")
        first = db.session.get(Submission, student.submission_id)
        assert first is not None
        second = Submission(
            user_id=student.user_id,
            batch_id=batch_id,
            photo_id=first.photo_id,
            identity_id=first.identity_id,
            status=SubmissionStatus.PENDING_REVIEW,
            created_at=NOW - timedelta(days=1),
        )
        db.session.add(second)
        db.session.commit()
    sign_in(client, student.user_id)
    html = page(client, "/h5/status")
    assert 'data-status="pending_review"' in html.split('data-testid="status"')[1].split(">")[0]
    states = re.findall(r'data-testid="attempt" data-status="(\w+)"', html)
    assert states == ["pending_review", "returned"]
    assert "背景颜色不符" in html


def test_status_page_without_any_attempt_shows_the_next_step(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        user = User(openid="o-new")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    sign_in(client, user_id)
    html = page(client, "/h5/status")
    assert 'data-step="bind"' in html and "实名绑定" in html


def test_receipt_for_approved_student_is_masked_and_verifies(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED)
    sign_in(client, student.user_id)
    html = page(client, "/h5/receipt")
    assert "张*丰" in html and STUDENT_NAME not in html
    assert "1101**********002X" in html and ID_NUMBER not in html
    assert "湖南师范大学" in html and "成人教育 10542 批次" in html
    assert "<svg" in html and "@media print" in html
    url = VERIFY_URL.search(html)
    assert url
    assert url.group(1).startswith(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/verify/")
    path = "/verify/" + url.group(1).rsplit("/verify/", 1)[1]
    client.delete_cookie("session")
    verdict = page(client, path)  # public: no sign-in needed
    assert 'data-genuine="1"' in verdict and "回执有效" in verdict
    assert "张*丰" in verdict and "1101**********002X" in verdict and ID_NUMBER not in verdict
    assert "成人教育 10542 批次" in verdict


@pytest.mark.parametrize(
    "status",
    [
        SubmissionStatus.PENDING_REVIEW,
        SubmissionStatus.RETURNED,
        SubmissionStatus.REFUSED,
        SubmissionStatus.VERIFYING,
    ],
)
def test_no_receipt_unless_approved(app: Flask, client: FlaskClient, status: SubmissionStatus) -> None:
    with app.app_context():
        student = make_student(make_batch(), status, reason="原因")
    sign_in(client, student.user_id)
    html = page(client, "/h5/receipt", 404)
    assert "审核通过后才能打印回执单" in html and "<svg" not in html


def test_forged_and_tampered_tokens_are_invalid(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED)
        other = make_student(
            make_batch("10699", "西北工业大学"),
            SubmissionStatus.APPROVED,
            openid="o-2",
            id_number="110105194912310037",
        )
        genuine = receipts.make_token(app.config["SECRET_KEY"], student.submission_id)
        forged = receipts.make_token("not-the-secret-key", student.submission_id)
    assert 'data-genuine="1"' in page(client, f"/verify/{genuine}")
    payload, signature = genuine.rsplit(".", 1)
    # Another attempt's id under the genuine signature, a flipped signature, a foreign key, garbage.
    swapped = (
        receipts.make_token(app.config["SECRET_KEY"], other.submission_id).split(".")[0] + "." + signature
    )
    flipped = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for token in (forged, swapped, flipped, "abc", payload):
        html = page(client, f"/verify/{token}", 404)
        assert "无效的回执" in html and 'data-genuine="0"' in html and "张*丰" not in html


def test_token_of_an_attempt_no_longer_approved_is_invalid(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED)
        token = receipts.make_token(app.config["SECRET_KEY"], student.submission_id)
        found = db.session.get(Submission, student.submission_id)
        assert found is not None
        found.status = SubmissionStatus.REFUNDED
        db.session.commit()
    assert "无效的回执" in page(client, f"/verify/{token}", 404)


def test_receipt_pdf_for_approved_only(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        approved = make_student(make_batch(), SubmissionStatus.APPROVED)
        waiting = make_student(
            make_batch("10699", "西北工业大学"),
            SubmissionStatus.PENDING_REVIEW,
            openid="o-wait",
            id_number="110105194912310037",
        )
    sign_in(client, approved.user_id)
    response = client.get("/h5/receipt.pdf")
    from app.h5.status import _cjk_font

    with app.app_context():
        font = _cjk_font()
    if font is None:
        # No CJK font on this machine (CI installs fonts-noto-cjk): the route says so and points to
        # the printable page instead of producing a PDF of empty boxes.
        assert response.status_code == 503 and "打印回执单" in response.get_data(as_text=True)
    else:
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        body = response.get_data()
        assert (
            body.startswith(b"%PDF-")
            and b"/CIDFontType0C" in body
            and b"NotoSansCJKSC" in body
            and b"/Image" in body
        )
        assert ID_NUMBER.encode() not in body
    sign_in(client, waiting.user_id)
    assert client.get("/h5/receipt.pdf").status_code == 404


def test_receipt_qr_encodes_the_verify_url(app: Flask, client: FlaskClient) -> None:
    from app.h5.status import _qr_svg

    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED)
    sign_in(client, student.user_id)
    html = page(client, "/h5/receipt")
    url = VERIFY_URL.search(html)
    assert url
    with app.app_context():
        assert str(_qr_svg(url.group(1))) in html


def test_without_a_cjk_font_the_pdf_points_to_the_printable_page(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.h5.status as status_views

    monkeypatch.setattr(status_views, "CJK_FONTS", ())
    app.config["RECEIPT_FONT_PATH"] = None
    with app.app_context():
        approved = make_student(make_batch(), SubmissionStatus.APPROVED)
    sign_in(client, approved.user_id)
    response = client.get("/h5/receipt.pdf")
    assert response.status_code == 503 and "打印回执单" in response.get_data(as_text=True)
