from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from app.extensions import db
from app.services import staff
from app.services.demo_data import SCHOOLS
from media.spec import PhotoSpec
from models import Batch, School, Staff, StaffRole


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
                assert batch.fee_fen == 200
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
