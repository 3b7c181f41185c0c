"""The staff side of the batch workflows (pay_first / review_first / free; lock_on=confirm; 承诺 and
signature): the queue, the dashboard, the export and the decision page, and the receipt's gating,
signature and after-approval text. Services first, then the pages through HTTP."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.services import dashboard, exports, receipts, reviews
from models import Batch, Flow, LockOn, Submission, SubmissionStatus
from models.submission import OrderStatus, PaymentOrder
from tests.factories import (
    NOW,
    Desk,
    make_batch,
    make_desk,
    make_student,
    make_waiting,
    signature_png,
)
from tests.staff_pages import sign_in as staff_sign_in

S = SubmissionStatus
PLEDGE = "本人承诺所填信息真实准确，照片为本人近期免冠照片。"
AFTER = "请于11月30日前将纸质照片邮寄至继续教育学院。"


def _id(n: int) -> str:
    """A distinct 18-character ID number per student (the export names files by it)."""
    return f"1101051949123{n:04d}X"


def confirm_batch() -> int:
    """湖南师范大学's workflow: pay first, the data frozen at the student's signed confirmation."""
    return make_batch(
        name="学位照片 确认批次", lock_on=LockOn.CONFIRM, pledge=PLEDGE, signature=True, after_approval=AFTER
    )


def review_first_batch(code: str = "10495", school: str = "武汉轻工大学") -> int:
    return make_batch(
        code,
        school,
        name="自考 先审后缴批次",
        flow=Flow.REVIEW_FIRST,
        pay_opens_at=NOW - timedelta(days=1),
        pay_closes_at=NOW + timedelta(days=5),
    )


def free_batch() -> int:
    return make_batch("11551", "重庆科技学院", name="免费批次", flow=Flow.FREE, fee_fen=0)


# --- the export --------------------------------------------------------------------------------


def test_export_takes_only_attempts_whose_flow_is_complete(app: Flask) -> None:
    with app.app_context():
        plain = make_batch()
        confirm = confirm_batch()
        later = review_first_batch()
        make_student(plain, S.APPROVED, openid="o1", id_number=_id(1))
        make_student(confirm, S.APPROVED, openid="o2", id_number=_id(2), signed=True, confirmed=True)
        make_student(confirm, S.APPROVED, openid="o3", id_number=_id(3), signed=True)  # not confirmed
        make_student(later, S.APPROVED, openid="o4", id_number=_id(4))  # paid in its window
        make_student(later, S.APPROVED_UNPAID, openid="o5", id_number=_id(5))
        make_student(later, S.VOID, openid="o6", id_number=_id(6))
        found = exports.counts(db.session)
        assert found == {plain: 1, confirm: 1, later: 1}
        assert exports.counts(db.session, [confirm]) == {confirm: 1}
        staff_id = _admin_id()
        made = exports.export_batch(db.session, pii_keyring(), photo_storage(), staff_id, confirm)
        names = zipfile.ZipFile(io.BytesIO(b"".join(made.chunks))).namelist()
        assert sorted(names) == sorted(["manifest.csv", f"{_id(2)}.jpg"])
        made = exports.export_batch(db.session, pii_keyring(), photo_storage(), staff_id, later)
        names = zipfile.ZipFile(io.BytesIO(b"".join(made.chunks))).namelist()
        assert sorted(names) == sorted(["manifest.csv", f"{_id(4)}.jpg"])


def _admin_id() -> int:
    from models import Staff, StaffRole

    staff = Staff(username="boss", password_hash="x", role=StaffRole.ADMIN)
    db.session.add(staff)
    db.session.commit()
    return staff.id


def test_the_count_beside_the_export_link_is_what_the_zip_holds(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    with app.app_context():
        confirm = confirm_batch()
        make_student(confirm, S.APPROVED, openid="o1", id_number=_id(1), signed=True, confirmed=True)
        make_student(confirm, S.APPROVED, openid="o2", id_number=_id(2), signed=True)
    staff_sign_in(client, "admin")
    html = client.get(f"/review/?batch={confirm}").get_data(as_text=True)
    shown = re.search(r'data-count="(\d+)">导出本批次通过照片', html)
    assert shown and shown.group(1) == "1"
    board = client.get("/review/dashboard").get_data(as_text=True)
    assert f'href="/review/export?batch={confirm}" data-count="1"' in board
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/review/export?batch={confirm}").get_data()))
    assert len([n for n in archive.namelist() if n.endswith(".jpg")]) == 1
    assert desk.batch_a != confirm


# --- the dashboard -------------------------------------------------------------------------------


def test_dashboard_counts_the_new_states_and_approvals_awaiting_the_fee(app: Flask) -> None:
    with app.app_context():
        later = review_first_batch()
        free = free_batch()
        make_student(later, S.APPROVED, openid="o1", id_number=_id(1))
        make_student(later, S.APPROVED_UNPAID, openid="o2", id_number=_id(2))
        make_student(later, S.APPROVED_UNPAID, openid="o3", id_number=_id(3))
        make_student(later, S.VOID, openid="o4", id_number=_id(4))
        make_student(later, S.RETURNED, openid="o5", id_number=_id(5), reason="背景颜色不符")
        make_student(later, S.PENDING_REVIEW, openid="o6", id_number=_id(6))
        make_student(free, S.PENDING_REVIEW, openid="o7", id_number=_id(7))
        board = dashboard.build(db.session, None)
        rows = {row.batch_id: row for row in board.batches}
        row = rows[later]
        assert row.counts == {
            "approved": 1,
            "approved_unpaid": 2,
            "void": 1,
            "returned": 1,
            "pending_review": 1,
        }
        # What review passed (the fee lapsing later is not the review's outcome) over all decisions.
        assert (row.total, row.approved, row.decided) == (6, 4, 5)
        assert board.decided_in_period == 5
        assert row.flow_label == "先审后缴" and row.pay_window is not None
        assert rows[free].flow_label == "免费" and rows[free].pay_window is None
        assert rows[free].counts == {"pending_review": 1}
        assert ("approved_unpaid", "审核通过，待缴费") in board.columns
        assert ("void", "逾期未缴费，报名无效") in board.columns


def test_the_wait_for_a_review_first_decision_starts_at_submission(app: Flask) -> None:
    with app.app_context():
        later = review_first_batch()
        student = make_student(later, S.APPROVED, openid="o1", id_number=_id(1))
        sub = db.session.get(Submission, student.submission_id)
        assert sub is not None
        # Submitted, approved 10 hours later, paid the next day: the review took 10 hours.
        sub.created_at = NOW - timedelta(days=2)
        sub.decided_at = sub.created_at + timedelta(hours=10)
        sub.paid_at = sub.decided_at + timedelta(days=1)
        db.session.commit()
        assert dashboard.build(db.session, None).median_hours == 10.0


def test_dashboard_page_shows_the_new_states_the_flow_and_the_pay_window(
    app: Flask, client: FlaskClient
) -> None:
    make_desk(app)
    with app.app_context():
        later = review_first_batch("10542", "湖南师范大学")
        make_student(later, S.APPROVED_UNPAID, openid="o1", id_number=_id(1))
        make_student(later, S.VOID, openid="o2", id_number=_id(2))
    staff_sign_in(client, "rev-a")
    html = client.get("/review/dashboard").get_data(as_text=True)
    row = re.search(rf'<tr data-batch="{later}">(.*?)</tr>', html, re.S)
    assert row
    assert 'data-state="approved_unpaid">1<' in row.group(1)
    assert 'data-state="void">1<' in row.group(1)
    assert "先审后缴" in row.group(1) and "data-pay-window" in row.group(1)
    assert "<th>审核通过，待缴费</th>" in html and "<th>逾期未缴费，报名无效</th>" in html


# --- the queue -------------------------------------------------------------------------------


def _desk_with_flows(app: Flask) -> tuple[Desk, dict[str, int]]:
    """School B's batch reviews first; its attempts in each state the queue distinguishes."""
    desk = make_desk(app)
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_b)
        assert batch is not None
        batch.flow = Flow.REVIEW_FIRST
        batch.pay_opens_at, batch.pay_closes_at = NOW - timedelta(days=1), NOW + timedelta(days=5)
        db.session.commit()
    ids = {}
    for i, status in enumerate((S.PENDING_REVIEW, S.APPROVED_UNPAID, S.VOID, S.APPROVED)):
        sub_id = make_waiting(app, desk.batch_b, f"o-b{i}", NOW - timedelta(days=3, hours=i), name="李四")
        with app.app_context():
            sub = db.session.get(Submission, sub_id)
            assert sub is not None
            sub.status, sub.paid_at = status, None  # nothing paid before review
            if status != S.PENDING_REVIEW:
                sub.decided_at = NOW - timedelta(hours=i)
            db.session.commit()
        ids[status.value] = sub_id
    return desk, ids


def test_queue_service_lists_unpaid_review_first_attempts_and_the_new_states(app: Flask) -> None:
    _, ids = _desk_with_flows(app)
    with app.app_context():
        waiting = reviews.queue(db.session, school_ids=None)
        assert ids["pending_review"] in [i.id for i in waiting.items]
        item = next(i for i in waiting.items if i.id == ids["pending_review"])
        assert item.flow_label == "先审后缴"
        unpaid = reviews.queue(db.session, school_ids=None, status=S.APPROVED_UNPAID)
        assert [i.id for i in unpaid.items] == [ids["approved_unpaid"]]
        assert unpaid.items[0].status_label == "审核通过，待缴费"
        voided = reviews.queue(db.session, school_ids=None, status=S.VOID)
        assert [i.id for i in voided.items] == [ids["void"]]
        assert voided.items[0].decided_at is not None  # who approved it stays shown


def test_queue_page_filters_the_new_states_and_labels_the_flow(app: Flask, client: FlaskClient) -> None:
    _, ids = _desk_with_flows(app)
    staff_sign_in(client, "admin")
    html = client.get("/review/").get_data(as_text=True)
    assert '<option value="approved_unpaid"' in html and ">审核通过，待缴费</option>" in html
    assert '<option value="void"' in html and ">逾期未缴费，报名无效</option>" in html
    assert f'data-id="{ids["pending_review"]}"' in html
    # School A pays first, school B reviews first: the rows say which.
    assert 'data-flow="先审后缴"' in html

    def rows(state: str) -> list[str]:
        page = client.get(f"/review/?state={state}").get_data(as_text=True)
        return re.findall(r'<tr data-id="(\d+)"', page)

    assert rows("approved_unpaid") == [str(ids["approved_unpaid"])]
    assert rows("void") == [str(ids["void"])]
    decided = rows("decided")
    assert str(ids["approved_unpaid"]) in decided and str(ids["approved"]) in decided
    assert str(ids["pending_review"]) not in decided


def test_a_reviewer_of_one_flow_sees_no_flow_labels(app: Flask, client: FlaskClient) -> None:
    _desk_with_flows(app)
    staff_sign_in(client, "rev-a")  # school A only: every batch pays first
    html = client.get("/review/?state=all").get_data(as_text=True)
    assert "data-flow=" not in html


# --- the decision page ---------------------------------------------------------------------------


def test_decision_page_shows_the_flow_pledge_signature_and_pay_window(
    app: Flask, client: FlaskClient
) -> None:
    _, ids = _desk_with_flows(app)
    unpaid = ids["approved_unpaid"]
    with app.app_context():
        sub = db.session.get(Submission, unpaid)
        assert sub is not None
        batch = sub.batch
        batch.pledge, batch.signature = PLEDGE, True
        sub.pledged_at = NOW - timedelta(days=3)
        sub.signature_key = photo_storage().put(signature_png(), "image/png")
        db.session.add(
            PaymentOrder(
                submission_id=unpaid,
                out_trade_no="T-unpaid-1",
                channel="jsapi",
                amount_fen=200,
                status=OrderStatus.OPEN,
                expires_at=NOW + timedelta(hours=2),
            )
        )
        db.session.commit()
    staff_sign_in(client, "rev-b")
    html = client.get(f"/review/submissions/{unpaid}").get_data(as_text=True)
    assert '<dd id="flow-label">先审后缴</dd>' in html
    assert "已承诺" in html
    assert f'src="/review/submissions/{unpaid}/signature"' in html
    assert 'id="pay-window"' in html and "有待支付的订单" in html
    png = client.get(f"/review/submissions/{unpaid}/signature")
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data == signature_png()
    # Unsigned attempts and other schools' staff find nothing.
    assert client.get(f"/review/submissions/{ids['void']}/signature").status_code == 404
    other = client.application.test_client()
    staff_sign_in(other, "rev-a")
    assert other.get(f"/review/submissions/{unpaid}/signature").status_code == 404


# --- the receipt ---------------------------------------------------------------------------------


def _student_client(client: FlaskClient, user_id: int) -> None:
    with client.session_transaction() as sess:
        sess["user_id"] = user_id


def test_receipt_in_a_confirm_batch_waits_for_the_confirmation(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(confirm_batch(), S.APPROVED, signed=True)
        assert receipts.for_student(db.session, pii_keyring(), "k", student.user_id) is None
        page = receipts.page_for_student(db.session, pii_keyring(), "k", student.user_id)
        assert page.receipt is None and page.confirm_url == f"/h5/confirm/{student.submission_id}"
        token = receipts.make_token(app.config["SECRET_KEY"], student.submission_id)
    _student_client(client, student.user_id)
    response = client.get("/h5/receipt")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "请先确认信息并签名" in html and f'href="/h5/confirm/{student.submission_id}"' in html
    assert "<svg" not in html  # no QR code: no receipt yet
    assert client.get("/h5/receipt.pdf").status_code == 404
    # Its token (were it known) is no receipt yet, and opens neither the photo nor the signature.
    assert client.get(f"/verify/{token}").status_code == 404
    assert client.get(f"/verify/{token}/signature").status_code == 404
    assert client.get(f"/verify/{token}/photo").status_code == 404


def test_confirmed_receipt_prints_the_pledge_signature_and_after_approval(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        student = make_student(confirm_batch(), S.APPROVED, signed=True, confirmed=True)
        found = receipts.for_student(db.session, pii_keyring(), app.config["SECRET_KEY"], student.user_id)
        assert found is not None
        assert found.pledge == PLEDGE and found.signed and found.pledged_at is not None
        assert found.confirmed_at is not None and found.after_approval == AFTER
        sub = db.session.get(Submission, student.submission_id)
        assert sub is not None and sub.signature_key is not None
        key = sub.signature_key
    _student_client(client, student.user_id)
    html = client.get("/h5/receipt").get_data(as_text=True)
    assert PLEDGE in html and AFTER in html and "承诺时间" in html and "确认时间" in html
    src = re.search(r'data-testid="receipt-signature" src="([^"]+)"', html)
    assert src and src.group(1) == f"/verify/{found.token}/signature"
    assert key not in html  # no storage key on the page or in a URL
    client.delete_cookie("session")
    png = client.get(src.group(1))  # the token alone opens it, like the photo
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data == signature_png()
    assert png.headers["Cache-Control"] == "private, no-store"
    verdict = client.get(f"/verify/{found.token}").get_data(as_text=True)
    assert 'data-genuine="1"' in verdict and 'data-testid="verify-signature"' in verdict


def test_review_first_receipt_exists_once_approved_that_is_paid(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        later = review_first_batch()
        unpaid = make_student(later, S.APPROVED_UNPAID, openid="o1", id_number=_id(1))
        paid = make_student(later, S.APPROVED, openid="o2", id_number=_id(2))
        voided = make_student(later, S.VOID, openid="o3", id_number=_id(3))
    for student, code in ((unpaid, 404), (voided, 404), (paid, 200)):
        _student_client(client, student.user_id)
        response = client.get("/h5/receipt")
        assert response.status_code == code, student
    html = response.get_data(as_text=True)
    assert 'data-testid="receipt-no"' in html
    assert 'data-testid="receipt-signature"' not in html and 'data-testid="receipt-after"' not in html
    with app.app_context():
        token = receipts.make_token(app.config["SECRET_KEY"], paid.submission_id)
        assert receipts.signature(db.session, photo_storage(), app.config["SECRET_KEY"], token) is None


def test_confirmed_receipt_pdf_carries_the_signature(app: Flask, client: FlaskClient) -> None:
    from app.h5.printing import cjk_font

    with app.app_context():
        student = make_student(confirm_batch(), S.APPROVED, signed=True, confirmed=True)
        font = cjk_font()
    _student_client(client, student.user_id)
    response = client.get("/h5/receipt.pdf")
    if font is None:  # no CJK font here: the route points to the printable page (CI has one)
        assert response.status_code == 503
        return
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    # The photo (a placeholder that does not decode: an empty frame) is no image there; the QR code
    # is one, the signature another with its transparency as a soft mask.
    body = response.get_data()
    assert body.count(b"/Subtype /Image") == 3 and b"/SMask" in body
