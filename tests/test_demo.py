from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from app.extensions import db
from app.services import demo_data, staff
from app.services.demo_data import SCHOOLS
from app.services.localtime import BEIJING
from media.spec import PhotoSpec
from models import Batch, Flow, LockOn, School, Staff, StaffRole


def _counts() -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(School)) or 0,
        db.session.scalar(select(func.count()).select_from(Batch)) or 0,
    )


def test_demo_load_is_idempotent_and_prints_the_admin_login(app: Flask, runner: FlaskCliRunner) -> None:
    app.config["DEMO_STAFF_PASSWORD"] = "demo-password-123"
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "admin / demo-password-123" in first.output
    assert "/healthz" in first.output
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        assert _counts() == (len(SCHOOLS), 2 * len(SCHOOLS))
        admin = db.session.scalar(select(Staff).where(Staff.username == "admin"))
        assert admin is not None and admin.role == StaffRole.ADMIN
        assert staff.check_password(admin, "demo-password-123")
        assert not staff.check_password(admin, "wrong-password")
        assert "demo-password-123" not in admin.password_hash


def test_generated_password_is_kept_between_runs(app: Flask, runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["demo", "load"])
    password = first.output.split("admin / ")[1].split()[0]
    second = runner.invoke(args=["demo", "load"])
    assert f"admin / {password}" in second.output
    with app.app_context():
        admin = db.session.scalar(select(Staff).where(Staff.username == "admin"))
        assert admin is not None and staff.check_password(admin, password)


def test_each_school_has_an_open_and_a_closed_batch_with_its_manual_spec(
    app: Flask, runner: FlaskCliRunner
) -> None:
    runner.invoke(args=["demo", "load"])
    now = datetime.now(UTC)
    with app.app_context():
        for school in db.session.scalars(select(School)):
            states = sorted(batch.is_open(now) for batch in school.batches)
            assert states == [False, True], school.name
            for batch in school.batches:
                # Free batches take nothing; every other one its manual's (or the example) fee.
                assert (batch.fee_fen == 0) == (batch.flow == Flow.FREE), school.name
                PhotoSpec.model_validate(batch.photo_spec)
        hunnu = db.session.scalar(select(School).where(School.code == "10542"))
        assert hunnu is not None
        spec = PhotoSpec.model_validate(hunnu.batches[0].photo_spec)
        assert (spec.width, spec.height, spec.min_bytes, spec.max_bytes) == (480, 640, 100 * 1024, 200 * 1024)
        assert spec.describe() == "480×640 像素，JPG 格式，100–200 KB，浅蓝色背景"


def test_in_the_sandbox_demo_load_queues_the_menu_push_the_worker_runs(
    app: Flask, runner: FlaskCliRunner
) -> None:
    from app.integrations import redis_client
    from app.jobs.worker import run_due
    from app.sandbox import state

    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    assert run_due(app) == 1
    with app.app_context():
        pushed = [c["path"] for c in state.calls(redis_client(), "/cgi-bin/menu/")]
    assert any(p.endswith("/menu/create") for p in pushed)
    assert any(p.endswith("/menu/addconditional") for p in pushed)


# The load time: 2026-12-07 15:30 Beijing; batches are placed relative to that day's 00:00.
LOADED = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)
DAY = datetime(2026, 12, 7, tzinfo=BEIJING)


def _open_batch(code: str) -> Batch:
    """The demo school's batch open at the load time."""
    school = db.session.scalar(select(School).where(School.code == code))
    assert school is not None, code
    [batch] = [b for b in school.batches if b.is_open(LOADED)]
    return batch


def test_each_demo_school_has_its_manuals_workflow(app: Flask) -> None:
    with app.app_context():
        demo_data.load_schools(db.session, LOADED)

        hunnu = _open_batch("10542")  # 湖南师范大学: 技术服务费 2 元/次, confirmation with a signature
        assert (hunnu.flow, hunnu.fee_fen, hunnu.fee_per_attempt) == (Flow.PAY_FIRST, 200, True)
        assert hunnu.verify_identity and hunnu.lock_on == LockOn.CONFIRM and hunnu.signature
        assert hunnu.pledge is not None and "学生需对上传证件的真实有效性负责" in hunnu.pledge
        assert hunnu.pay_opens_at is None and hunnu.pay_is_open(LOADED)
        assert hunnu.notice is not None and "技术服务费 2 元/次" in hunnu.notice
        assert hunnu.receipt_title == "学位证书照片审核回执单"

        whpu = _open_batch("10496")  # 武汉轻工大学: 审核通过的学生才能缴费, within the pay window
        assert (whpu.flow, whpu.lock_on, whpu.verify_identity) == (Flow.REVIEW_FIRST, LockOn.PAY, True)
        assert whpu.fee_fen > 0 and whpu.notice is not None and "示例金额" in whpu.notice
        # Open from the load day for four weeks, until 20:00 as in the manual, inside sign-up.
        assert whpu.pay_opens_at == DAY
        assert whpu.pay_closes_at == DAY + timedelta(days=28, hours=20)
        assert whpu.opens_at <= whpu.pay_opens_at and whpu.pay_closes_at < whpu.closes_at
        assert whpu.pay_is_open(LOADED) and not whpu.pay_is_open(DAY + timedelta(days=29))
        assert "考试" in whpu.receipt_title

        xj = _open_batch("xj-zikao")  # 新疆自考: 审核通过则无法再修改任何信息; 我担保以上信息真实准确
        assert (xj.flow, xj.lock_on, xj.verify_identity) == (Flow.REVIEW_FIRST, LockOn.APPROVE, True)
        assert xj.pledge == "我担保以上信息真实准确" and not xj.signature
        assert (xj.pay_opens_at, xj.pay_closes_at) == (xj.opens_at, xj.closes_at)
        assert xj.fee_fen == 3500 and xj.notice is not None and "示例" in xj.notice
        assert xj.pay_is_open(LOADED)

        for code in ("10699", "11551"):  # 西北工业大学, 重庆科技学院: no fee at all
            free = _open_batch(code)
            assert (free.flow, free.fee_fen, free.lock_on) == (Flow.FREE, 0, LockOn.APPROVE)
            assert not free.takes_fee and not free.verify_identity and free.notice
            assert free.pay_opens_at is None and free.pay_closes_at is None and free.pledge is None
        nwpu = _open_batch("10699")
        assert nwpu.receipt_title == "新生入学照片审核回执单" and nwpu.after_approval is None
        cqust = _open_batch("11551")
        assert cqust.after_approval is not None
        for words in ("蓝底两寸带背胶", "背面写明专业+姓名", "顺丰寄付", "重庆市沙坪坝区大学城东路20号"):
            assert words in cqust.after_approval, words
        assert cqust.notice is not None and "超过信息采集时间学员无法进行再次提交" in cqust.notice

        # Every open batch opened 30 days before the load day and closes about six months after it.
        for batch in db.session.scalars(select(Batch)):
            if batch.is_open(LOADED):
                assert batch.opens_at == DAY - timedelta(days=30)
                assert batch.closes_at == DAY + timedelta(days=181, seconds=-1)
            else:
                assert batch.closes_at < DAY - timedelta(days=58)
                assert (batch.flow == Flow.REVIEW_FIRST) == (batch.pay_opens_at is not None)


def test_the_demo_workflows_are_kept_when_loaded_again_later(app: Flask) -> None:
    with app.app_context():
        demo_data.load_schools(db.session, LOADED)
        later = LOADED + timedelta(days=40)
        demo_data.load_schools(db.session, later)
        # The windows move with the load time; the workflow stays (here a new term's batch opens).
        school = db.session.scalar(select(School).where(School.code == "10496"))
        assert school is not None
        [batch] = [b for b in school.batches if b.is_open(later)]
        assert batch.pay_is_open(later) and batch.flow == Flow.REVIEW_FIRST
