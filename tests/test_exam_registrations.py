"""报考 (docs/exams.md) through HTTP: GET/PUT /api/v1/me/registration and every rule (no course, a clash, a
course outside the major, a full site also when two take its last seat at once, a special major without
approved materials), the order's amount = the chosen courses' sum and the lock it sets (409 after it), the
checklist's 报考 step, and `flask exams cancel-course`: one course's fee back through WeChat Pay's partial
refund, once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pay_students import pay_at_sandbox, sync_app
from sqlalchemy import select

from app.extensions import db
from app.integrations import pay_client, redis_client
from app.jobs.worker import run_due
from app.sandbox.pay import notifications as sandbox_notify
from app.services import batch_forms, exam_catalog, exam_registrations, payment_sync, steps
from app.services.localtime import BEIJING
from models import (
    Batch,
    Document,
    Flow,
    OrderStatus,
    OutboxItem,
    PaymentOrder,
    Refund,
    RefundStatus,
    Submission,
    SubmissionStatus,
    utcnow,
)
from models.exam import ExamCourse, ExamRegistration, ExamSite
from tests.factories import NOW, make_flow_batch, make_student, sign_in_student

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "app" / "data" / "exam_catalogs" / "xj-zikao"
FORM = ROOT / "app" / "data" / "batch_forms" / "xj-zikao.yaml"
FOUR = ["00024", "00018", "00031", "00144"]  # the manual's pay page: 140 元
API = "/api/v1/me/registration"


def _batch(app: Flask, *, capacity: int | None = None) -> int:
    """新疆自考's batch with course selection and the demo catalogue (a site of `capacity` seats)."""
    with app.app_context():
        batch_id = make_flow_batch(
            Flow.REVIEW_FIRST, code="xj-zikao", school_name="新疆自考", exam_selection=True, fee_fen=3500
        )
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        catalog = exam_catalog.parse(exam_catalog.read_dir(DEMO))
        if capacity is not None:
            catalog.sites[0] = exam_catalog.SiteRow(**{**catalog.sites[0].__dict__, "capacity": capacity})
        exam_catalog.replace_catalog(db.session, batch, catalog)
        db.session.remove()
        return batch_id


_SEQ = iter(range(100, 999))


def _id_number() -> str:
    """A resident ID number of its own for each candidate (the check digit as GB 11643 computes it)."""
    body = f"65010219900101{next(_SEQ):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _candidate(
    app: Flask, batch_id: int, openid: str, status: SubmissionStatus = SubmissionStatus.APPROVED_UNPAID
) -> Any:
    with app.app_context():
        attempt = make_student(batch_id, status, openid=openid, id_number=_id_number())
        db.session.remove()
        return attempt


def _client(app: Flask, user_id: int) -> tuple[FlaskClient, dict[str, str]]:
    client = app.test_client()
    token = sign_in_student(app, client, user_id)
    return client, {"X-CSRFToken": token}


def _choice(courses: list[str] = FOUR, site: str = "650102", major: str = "530601") -> dict[str, Any]:
    return {"site_code": site, "major_code": major, "course_codes": courses, "pledge": True}


def _errors(answer: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.get_json()["errors"]}


def test_a_candidate_chooses_site_major_and_courses(app: Flask) -> None:
    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-reg-1")
    client, headers = _client(app, attempt.user_id)
    before = client.get(API)
    assert before.status_code == 200
    assert before.get_json()["course_codes"] == [] and before.get_json()["editable"] is True

    # 本人担保以上信息真实准确 is part of the choice: without it nothing is saved.
    unpledged = client.put(API, json={**_choice(), "pledge": False}, headers=headers)
    assert unpledged.status_code == 422
    assert _errors(unpledged) == {"pledge": "请勾选「本人担保以上信息真实准确」后再提交"}
    assert client.get(API).get_json()["course_codes"] == []

    saved = client.put(API, json=_choice(), headers=headers)
    assert saved.status_code == 200, saved.get_json()
    with app.app_context():
        registration = db.session.scalar(
            select(ExamRegistration).where(ExamRegistration.user_id == attempt.user_id)
        )
        assert registration is not None and registration.pledged_at is not None
        db.session.remove()
    body = saved.get_json()
    assert body["course_codes"] == FOUR  # in exam order
    assert body["total_fen"] == 14000 and body["total_label"] == "140 元"
    assert body["courses"][0] == {
        "code": "00024",
        "name": "普通逻辑",
        "exam_time": "2021年04月01日 上午",
        "exam_time_range": "2021-04-01 09:00–11:30",
        "fee_fen": 3500,
        "cancelled": False,
    }
    assert body["pay_url"] == f"/h5/pay/{attempt.submission_id}"
    # Changing before the order: one course fewer, another site.
    changed = client.put(API, json=_choice(FOUR[:3], site="650103"), headers=headers)
    assert changed.status_code == 200 and changed.get_json()["total_fen"] == 10500
    assert client.get(API).get_json()["site_code"] == "650103"
    with app.app_context():
        checklist = steps.of(db.session, attempt.user_id, NOW)
        keys = [s.key for s in checklist]
        assert keys.index("review") < keys.index("exam") < keys.index("pay")
        exam = next(s for s in checklist if s.key == "exam")
        assert exam.status == "done" and exam.label == "报考" and exam.url == "/h5/registration"
        db.session.remove()
    page = client.get("/h5/registration")
    assert page.status_code == 200 and "本人担保以上信息真实准确" in page.get_data(as_text=True)


def test_the_checklist_asks_for_the_courses_after_approval(app: Flask) -> None:
    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-reg-step")
    with app.app_context():
        checklist = steps.of(db.session, attempt.user_id, NOW)
        current = steps.current(checklist)
        assert current is not None and current.key == "exam" and "选择考点" in current.hint
        assert next(s for s in checklist if s.key == "pay").status == "todo"
        db.session.remove()


@pytest.mark.parametrize(
    ("choice", "field", "message"),
    [
        (_choice([]), "course_codes", "每次报考至少选择一门课程"),
        (
            _choice(["00031", "00145"]),
            "course_codes",
            "「心理学」（2021-04-11 09:00–11:30）与「生产与作业管理」（2021-04-11 09:00–11:30）"
            "考试时间冲突，只能选择其中一门",
        ),
        (_choice(["03179"]), "course_codes", "「生物化学（三）」（03179）不属于所选专业「工商企业管理」"),
        (_choice(["99999"]), "course_codes", "找不到课程：99999"),
        (_choice(site=""), "site_code", "请选择考点"),
        (_choice(site="000000"), "site_code", "找不到这个考点，请重新选择"),
        (_choice(major=""), "major_code", "请选择报考专业"),
        (
            _choice(["00024"], major="100701"),
            "major_code",
            "「护理学」为特殊专业，须在注册时上传相关材料并审核通过后方可报考",
        ),
    ],
)
def test_each_rule_is_refused_at_its_field(
    app: Flask, choice: dict[str, Any], field: str, message: str
) -> None:
    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-rule")
    client, headers = _client(app, attempt.user_id)
    answer = client.put(API, json=choice, headers=headers)
    assert answer.status_code == 422
    assert _errors(answer)[field] == message
    with app.app_context():
        assert db.session.scalar(select(ExamRegistration)) is None
        db.session.remove()


def test_public_courses_are_open_to_every_major(app: Flask) -> None:
    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-public")
    client, headers = _client(app, attempt.user_id)
    # 100701 would need materials; the public courses with the 工商 major's own pass.
    assert client.put(API, json=_choice(["00024", "00018", "00154"]), headers=headers).status_code == 200


def test_a_special_major_needs_its_materials_seen_by_the_reviewer(app: Flask) -> None:
    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-nurse")
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        definition = batch_forms.parse(FORM.read_bytes()).model_copy(update={"batch": batch.name})
        batch.form = batch_forms.to_data(definition)
        submission = db.session.get(Submission, attempt.submission_id)
        assert submission is not None
        # Uploaded after the approved attempt was submitted: the reviewer never saw it.
        late = Document(
            user_id=attempt.user_id,
            batch_id=batch_id,
            slot="special_100701",
            storage_key="late",
            kind="pdf",
            mime_type="application/pdf",
            bytes=100,
            created_at=submission.created_at + timedelta(hours=1),
        )
        db.session.add(late)
        db.session.commit()
        db.session.remove()
    client, headers = _client(app, attempt.user_id)
    nursing = _choice(["00024", "03179"], major="100701")
    refused = client.put(API, json=nursing, headers=headers)
    assert refused.status_code == 422 and "特殊专业" in _errors(refused)["major_code"]
    with app.app_context():
        doc = db.session.scalar(select(Document).where(Document.storage_key == "late"))
        submission = db.session.get(Submission, attempt.submission_id)
        assert doc is not None and submission is not None
        doc.created_at = submission.created_at - timedelta(hours=1)
        db.session.commit()
        db.session.remove()
    assert client.put(API, json=nursing, headers=headers).status_code == 200


def test_a_full_site_is_refused_and_the_own_seat_kept(app: Flask) -> None:
    batch_id = _batch(app, capacity=1)
    first = _candidate(app, batch_id, "o-seat-1")
    second = _candidate(app, batch_id, "o-seat-2")
    one, one_headers = _client(app, first.user_id)
    two, two_headers = _client(app, second.user_id)
    assert one.put(API, json=_choice(), headers=one_headers).status_code == 200
    full = two.put(API, json=_choice(), headers=two_headers)
    assert full.status_code == 422
    assert _errors(full)["site_code"] == "考点「乌鲁木齐市第一中学考点」名额已满，请选择其他考点"
    # The one who holds the seat may still change the courses.
    assert one.put(API, json=_choice(["00024"]), headers=one_headers).status_code == 200
    catalog = one.get(f"/api/v1/batches/{batch_id}/catalog").get_json()
    assert catalog["districts"][0]["counties"][0]["sites"][0]["seats_left"] == 0


def test_two_candidates_taking_the_last_seat_at_once_do_not_both_get_it(app: Flask) -> None:
    batch_id = _batch(app, capacity=1)
    attempts = [_candidate(app, batch_id, f"o-race-{i}") for i in range(2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def take(user_id: int) -> None:
        with app.app_context():
            start.wait()
            try:
                exam_registrations.choose(
                    db.session, user_id, "650102", "530601", ["00024"], utcnow(), pledged=True
                )
                outcomes.append("seated")
            except exam_registrations.RegistrationInvalidError as exc:
                outcomes.append(dict(exc.problems)["site_code"])
            finally:
                db.session.remove()

    threads = [threading.Thread(target=take, args=(a.user_id,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["seated", "考点「乌鲁木齐市第一中学考点」名额已满，请选择其他考点"]
    with app.app_context():
        assert len(db.session.scalars(select(ExamRegistration)).all()) == 1
        db.session.remove()


def test_nothing_to_choose_before_approval_or_in_a_batch_without_selection(app: Flask) -> None:
    batch_id = _batch(app)
    waiting = _candidate(app, batch_id, "o-waiting", SubmissionStatus.PENDING_REVIEW)
    client, headers = _client(app, waiting.user_id)
    assert client.get(API).status_code == 409
    refused = client.put(API, json=_choice(), headers=headers)
    assert refused.status_code == 409 and _errors(refused)["_"] == "注册信息审核通过后才能报考。"
    assert "注册信息审核通过后才能报考" in client.get("/h5/registration").get_data(as_text=True)
    with app.app_context():
        plain = make_flow_batch(Flow.REVIEW_FIRST, code="10496")
        other = make_student(
            plain, SubmissionStatus.APPROVED_UNPAID, openid="o-plain", id_number=_id_number()
        )
        db.session.remove()
    other_client, _ = _client(app, other.user_id)
    assert _errors(other_client.get(API))["_"] == "你所关联的批次不需要报考课程。"


def _order(app: Flask, client: FlaskClient, submission_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/me/submissions/{submission_id}?renew=1&channel=native")
    assert answer.status_code == 200, answer.get_json()
    order: dict[str, Any] = answer.get_json()["order"]
    return order


def test_the_order_is_the_sum_of_the_courses_and_locks_the_choice(app_factory: Any) -> None:
    app = sync_app(app_factory)
    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-order")
    client, headers = _client(app, attempt.user_id)
    # No order before the courses are chosen.
    early = client.get(f"/api/v1/me/submissions/{attempt.submission_id}?renew=1&channel=native")
    assert early.status_code == 422 and "请先完成报考" in early.get_json()["errors"][0]["message"]
    assert client.get(f"/h5/pay/{attempt.submission_id}").headers["Location"] == "/h5/registration"

    assert client.put(API, json=_choice(), headers=headers).status_code == 200
    order = _order(app, client, attempt.submission_id)
    assert order["amount_fen"] == 14000  # not the batch's 35 元
    with app.app_context():
        registration = db.session.scalar(select(ExamRegistration))
        assert registration is not None and registration.locked_at is not None
        assert registration.submission_id == attempt.submission_id
        db.session.remove()
    locked = client.put(API, json=_choice(["00024"]), headers=headers)
    assert locked.status_code == 409
    assert _errors(locked)["_"] == "缴费订单生成后不能增、减或修改已填报课程"
    view = client.get(API).get_json()
    assert view["editable"] is False and view["locked_message"] == "缴费订单生成后不能增、减或修改已填报课程"
    page = client.get(f"/h5/pay/{attempt.submission_id}").get_data(as_text=True)
    assert (
        "收费内容" in page and "2021年04月01日 上午" in page and "140 元" in page and "企业管理概论" in page
    )
    # A renewed order (the QR code expired) charges the same sum.
    with app.app_context():
        first = db.session.scalars(select(PaymentOrder)).one()
        first.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        db.session.remove()
    assert _order(app, client, attempt.submission_id)["amount_fen"] == 14000


def _paid(app: Flask, openid: str, batch_id: int, courses: list[str] = FOUR) -> tuple[Any, str]:
    attempt = _candidate(app, batch_id, openid)
    client, headers = _client(app, attempt.user_id)
    assert client.put(API, json=_choice(courses), headers=headers).status_code == 200
    out_trade_no = _order(app, client, attempt.submission_id)["out_trade_no"]
    pay_at_sandbox(app, out_trade_no, openid)
    with app.app_context():
        assert payment_sync.sync_order(db.session, pay_client(), out_trade_no) == "paid"
        db.session.remove()
    return attempt, out_trade_no


def test_cancelling_a_course_refunds_its_fee_once_through_a_partial_refund(app_factory: Any) -> None:
    app = sync_app(app_factory)
    batch_id = _batch(app)
    holder, out_trade_no = _paid(app, "o-cancel-1", batch_id)
    other, _ = _paid(app, "o-cancel-2", batch_id, ["00024"])  # does not hold the course
    chosen_only = _candidate(app, batch_id, "o-cancel-4")  # holds it, no order yet
    chooser, chooser_headers = _client(app, chosen_only.user_id)
    assert chooser.put(API, json=_choice(), headers=chooser_headers).status_code == 200
    ordered = _candidate(app, batch_id, "o-cancel-5")  # holds it, ordered, not paid
    orderer, orderer_headers = _client(app, ordered.user_id)
    assert orderer.put(API, json=_choice(), headers=orderer_headers).status_code == 200
    _order(app, orderer, ordered.submission_id)
    with app.app_context():
        assert db.session.get(Submission, holder.submission_id).status == SubmissionStatus.APPROVED  # type: ignore[union-attr]
        db.session.remove()
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["exams", "cancel-course", str(batch_id), "00144", "--reason", "考试安排调整"]
    )
    assert result.exit_code == 0, result.output
    assert "课程 00144「企业管理概论」已取消" in result.output and "退款 1 笔，共 35 元" in result.output
    assert "未下单的报考 1 份已去掉该课程" in result.output
    assert "已下单未缴费 1 份：缴费后请再运行本命令退费" in result.output
    assert chooser.get(API).get_json()["total_fen"] == 10500
    # The open order still charges the course, so the course stays in it until it is paid.
    assert orderer.get(API).get_json()["total_fen"] == 14000
    again = runner.invoke(args=["exams", "cancel-course", f"xj-zikao:{_name(app, batch_id)}", "00144"])
    assert again.exit_code == 0 and "此前已取消" in again.output and "退款 0 笔" in again.output
    assert "已下单未缴费 1 份" in again.output

    while run_due(app):
        pass
    with app.app_context():
        sandbox_notify.deliver_due_notifications(redis_client())  # REFUND.SUCCESS: applied once more, a no-op
        refund = db.session.scalars(select(Refund)).one()
        assert refund.amount_fen == 3500 and refund.status == RefundStatus.SUCCEEDED
        order = db.session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no))
        assert order is not None and order.amount_fen == 14000
        assert order.status == OrderStatus.PAID  # 105 元 of it stays paid
        at_wechat = pay_client().query_refund(refund.out_refund_no)
        assert (at_wechat.refund_fen, at_wechat.total_fen, at_wechat.status) == (3500, 14000, "SUCCESS")
        course = db.session.scalar(select(ExamCourse).where(ExamCourse.code == "00144"))
        assert (
            course is not None and course.cancelled_at is not None and course.cancel_reason == "考试安排调整"
        )
        texts = [i.payload.get("text", "") for i in db.session.scalars(select(OutboxItem))]
        assert any("企业管理概论" in t and "35 元" in t and "考试安排调整" in t for t in texts)
        assert db.session.get(Submission, holder.submission_id).status == SubmissionStatus.APPROVED  # type: ignore[union-attr]
        db.session.remove()
    # The day's trade bill agrees: two payments of 140 and 35 元, one refund of 35 元.
    today = datetime.now(BEIJING).date().isoformat()
    bill = runner.invoke(args=["pay", "reconcile", today])
    assert bill.exit_code == 0 and "支付 2 笔，退款 1 笔" in bill.output and "无差异" in bill.output, (
        bill.output
    )
    client, _ = _client(app, holder.user_id)
    view = client.get(API).get_json()
    assert [c["cancelled"] for c in view["courses"]] == [False, False, False, True]
    assert view["total_fen"] == 10500
    # Nobody chooses a cancelled course any more.
    newcomer = _candidate(app, batch_id, "o-cancel-3")
    fresh, fresh_headers = _client(app, newcomer.user_id)
    refused = fresh.put(API, json=_choice(["00144"]), headers=fresh_headers)
    assert _errors(refused)["course_codes"] == "「企业管理概论」（00144）已取消考试，不能报考"
    assert other.user_id != holder.user_id


def _name(app: Flask, batch_id: int) -> str:
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        name = batch.name
        db.session.remove()
        return name


def test_an_unknown_course_or_batch_is_refused(app: Flask) -> None:
    batch_id = _batch(app)
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["exams", "cancel-course", str(batch_id), "99999"])
    assert missing.exit_code == 1 and "本批次没有代码为 99999 的课程" in missing.output
    nobatch = runner.invoke(args=["exams", "cancel-course", "xj-zikao:没有", "00024"])
    assert nobatch.exit_code == 1 and "找不到批次" in nobatch.output
    with app.app_context():
        assert db.session.scalar(select(ExamSite).where(ExamSite.batch_id == batch_id)) is not None
        db.session.remove()


def test_the_approval_points_to_the_courses_first(app: Flask) -> None:
    from app.services import enrollments, wording

    batch_id = _batch(app)
    attempt = _candidate(app, batch_id, "o-approved-words")
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        approved = SubmissionStatus.APPROVED_UNPAID
        assert wording.result_path(approved, batch, attempt.submission_id) == "/h5/registration"
        assert "选择考点、专业和报考课程" in wording.result_next_step(approved, batch)
        fee = enrollments.fee_of_sender(db.session, "o-approved-words")
        assert fee is not None and "按报考课程计算" in wording.fee_line(fee)
        db.session.remove()


def test_a_full_refund_after_a_cancelled_course_returns_what_is_left(app_factory: Any) -> None:
    app = sync_app(app_factory)
    batch_id = _batch(app)
    _, out_trade_no = _paid(app, "o-rest", batch_id)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["exams", "cancel-course", str(batch_id), "00144"]).exit_code == 0
    _refunds_done(app)
    rest = runner.invoke(args=["pay", "refund", out_trade_no, "--reason", "考生放弃考试"])
    assert rest.exit_code == 0, rest.output
    assert "金额 105.00 元" in rest.output
    _refunds_done(app)
    with app.app_context():
        refunds = sorted(r.amount_fen for r in db.session.scalars(select(Refund)))
        assert refunds == [3500, 10500]
        order = db.session.scalar(select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no))
        assert order is not None and order.status == OrderStatus.REFUNDED
        db.session.remove()
    again = runner.invoke(args=["pay", "refund", out_trade_no, "--reason", "再退一次"])
    assert again.exit_code == 1 and "该订单已退款" in again.output


def _refunds_done(app: Flask) -> None:
    """The worker sends the refunds (WeChat Pay answers PROCESSING), then REFUND.SUCCESS arrives."""
    while run_due(app):
        pass
    with app.app_context():
        sandbox_notify.deliver_due_notifications(redis_client())
