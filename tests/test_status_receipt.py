"""/h5/status for every state, the receipt (approved only) and /verify/<token>, through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.services import receipts
from app.services.localtime import BEIJING
from models import Batch, Submission, SubmissionStatus, User
from tests.factories import ID_NUMBER, NOW, STUDENT_NAME, jpeg, make_batch, make_desk, make_student
from tests.staff_pages import sign_in as staff_sign_in

OTHER_ID = "110105194912310037"


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
    from app.h5.printing import cjk_font

    with app.app_context():
        font = cjk_font()
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
    from app.h5.printing import qr_svg

    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED)
    sign_in(client, student.user_id)
    html = page(client, "/h5/receipt")
    url = VERIFY_URL.search(html)
    assert url
    with app.app_context():
        assert str(qr_svg(url.group(1))) in html


def test_without_a_cjk_font_the_pdf_points_to_the_printable_page(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.h5.printing as printing

    monkeypatch.setattr(printing, "CJK_FONTS", ())
    app.config["RECEIPT_FONT_PATH"] = None
    with app.app_context():
        approved = make_student(make_batch(), SubmissionStatus.APPROVED)
    sign_in(client, approved.user_id)
    response = client.get("/h5/receipt.pdf")
    assert response.status_code == 503 and "打印回执单" in response.get_data(as_text=True)


# --- the receipt's wording, number and photo -------------------------------------------------------


def _receipt_html(client: FlaskClient) -> tuple[str, str]:
    html = page(client, "/h5/receipt")
    url = VERIFY_URL.search(html)
    assert url
    return html, "/verify/" + url.group(1).rsplit("/verify/", 1)[1]


def test_title_and_note_come_from_the_batch(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        default = make_student(make_batch(), SubmissionStatus.APPROVED)
        freshman_batch = make_batch("10699", "西北工业大学")
        batch = db.session.get(Batch, freshman_batch)
        assert batch is not None
        batch.receipt_title, batch.receipt_note = "新生入学照片审核回执单", "新生报到时出示本回执。"
        db.session.commit()
        freshman = make_student(freshman_batch, SubmissionStatus.APPROVED, openid="o-new", id_number=OTHER_ID)
    sign_in(client, default.user_id)
    html, _ = _receipt_html(client)
    assert "学位证书照片审核回执单" in html and "领取学位证时出示本回执" in html
    sign_in(client, freshman.user_id)
    html, path = _receipt_html(client)
    assert "新生入学照片审核回执单" in html and "新生报到时出示本回执。" in html
    assert "学位证" not in html
    assert "新生入学照片审核回执单" in page(client, path)


def test_the_receipt_number_is_random_stored_and_not_the_id(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED)
    sign_in(client, student.user_id)
    html, path = _receipt_html(client)
    with app.app_context():
        stored = db.session.get(Submission, student.submission_id)
        assert stored is not None and stored.receipt_no is not None
        number = stored.receipt_no
    assert re.fullmatch(r"\d{8}-[0-9A-HJKMNP-TV-Z]{8}", number)
    assert number.startswith(stored.decided_at.astimezone(BEIJING).strftime("%Y%m%d"))
    assert f'data-testid="receipt-no">{number}<' in html
    assert f">{student.submission_id}<" not in html
    # The same number every time, on the page, at /verify and in the PDF's file name.
    assert number in page(client, "/h5/receipt") and number in page(client, path)
    pdf = client.get("/h5/receipt.pdf")
    if pdf.status_code == 200:
        assert number in pdf.headers["Content-Disposition"]
    # Random: two receipts decided the same day share only the date.
    numbers = {receipts.new_number(NOW) for _ in range(200)}
    assert len(numbers) == 200


def test_number_lookup_normalizes_what_staff_type() -> None:
    assert receipts.normalize_number("20261207-k7q2m9xt") == "20261207-K7Q2M9XT"
    assert receipts.normalize_number(" 20261207 K7Q2 M9XT ") == "20261207-K7Q2M9XT"
    assert receipts.normalize_number("20261207-O1LI0000") == "20261207-01110000"
    assert receipts.normalize_number("12345") is None
    assert receipts.normalize_number("20261207-K7Q2M9XU") is None  # U is not in the alphabet


def test_the_receipt_and_verify_show_the_approved_photo(app: Flask, client: FlaskClient) -> None:
    photo = jpeg((10, 120, 200))
    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.APPROVED, photo_bytes=photo)
    sign_in(client, student.user_id)
    html, path = _receipt_html(client)
    token = path.rsplit("/", 1)[1]
    assert f'src="/verify/{token}/photo"' in html
    client.delete_cookie("session")
    assert f'src="/verify/{token}/photo"' in page(client, path)
    response = client.get(f"/verify/{token}/photo")  # whoever holds the receipt: it shows the face too
    assert response.status_code == 200 and response.data == photo and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert client.get(f"/verify/{token[:-2]}xx/photo").status_code == 404
    with app.app_context():
        found = db.session.get(Submission, student.submission_id)
        assert found is not None
        found.status = SubmissionStatus.REFUNDED
        db.session.commit()
    assert client.get(f"/verify/{token}/photo").status_code == 404


def test_verify_shows_the_full_name_only_to_staff_who_cover_the_school(
    app: Flask, client: FlaskClient
) -> None:
    desk = make_desk(app)
    with app.app_context():
        student = make_student(desk.batch_a, SubmissionStatus.APPROVED)
        token = receipts.make_token(app.config["SECRET_KEY"], student.submission_id)
    path = f"/verify/{token}"
    public = page(client, path)
    assert "张*丰" in public and STUDENT_NAME not in public and 'data-full="0"' in public
    assert "/review/submissions/" not in public
    staff_sign_in(client, "rev-b")  # another school's reviewer
    assert STUDENT_NAME not in page(client, path)
    for username in ("rev-a", "admin"):
        client.delete_cookie("session")
        staff_sign_in(client, username)
        html = page(client, path)
        assert STUDENT_NAME in html and 'data-full="1"' in html
        assert f'href="/review/submissions/{student.submission_id}"' in html
        assert ID_NUMBER not in html  # the number stays masked: the face and the name identify


def test_staff_find_an_attempt_by_its_receipt_number(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    with app.app_context():
        student = make_student(desk.batch_a, SubmissionStatus.APPROVED)
    sign_in(client, student.user_id)
    page(client, "/h5/receipt")
    with app.app_context():
        stored = db.session.get(Submission, student.submission_id)
        assert stored is not None and stored.receipt_no
        number = stored.receipt_no
    client.delete_cookie("session")
    assert client.get(f"/review/receipts?no={number}").status_code in (302, 303)  # to the login page
    staff_sign_in(client, "rev-a")
    assert "查回执" in page(client, "/review/receipts")
    response = client.get("/review/receipts", query_string={"no": number.lower().replace("-", " ")})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/review/submissions/{student.submission_id}")
    # The database id is not a receipt number; another school's reviewer finds nothing.
    assert "没有找到回执编号" in page(client, f"/review/receipts?no={student.submission_id}", 404)
    client.delete_cookie("session")
    staff_sign_in(client, "rev-b")
    assert "没有找到回执编号" in page(client, f"/review/receipts?no={number}", 404)


def test_the_pdf_carries_the_photo_the_number_and_the_batch_wording(app: Flask, client: FlaskClient) -> None:
    from app.h5.printing import cjk_font

    with app.app_context():
        if cjk_font() is None:
            pytest.skip("no CJK font here: the PDF route answers 503 (tested above)")
        student = make_student(make_batch(), SubmissionStatus.APPROVED, photo_bytes=jpeg((10, 120, 200)))
    sign_in(client, student.user_id)
    response = client.get("/h5/receipt.pdf")
    assert response.status_code == 200
    body = response.get_data()
    assert body.count(b"/Subtype /Image") == 2  # the photo and the QR code
    with app.app_context():
        stored = db.session.get(Submission, student.submission_id)
        assert stored is not None and stored.receipt_no
    assert f"receipt-{stored.receipt_no}.pdf" in response.headers["Content-Disposition"]
