"""The student's home page (/h5/): the steps, where the student stands, and what can still change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.services import progress, wording


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    hint: str
    url: str


# The order a student goes through (湖南师范大学's order): bind, link a school, photo, pay and verify, result.
STEPS = (
    Step("bind", "实名绑定", "填写姓名和证件号码", "/h5/bind"),
    Step("school", "关联学校", "选择学校和批次", "/h5/school"),
    Step("photo", "上传照片", "自动检查尺寸、背景和人像", "/h5/photo"),
    Step("pay", "缴费核验", "支付核验费，核对身份信息", "/h5/me"),
    Step("status", "审核结果", "查看审核进度和结果", "/h5/status"),
)


# Which of STEPS a progress answer is at (app/services/progress.py's steps).
STEP_INDEX = {"bind": 0, "school": 1, "photo": 2, "pay": 3, "verify": 3, "review": 4, "result": 4}


def current_step(now: progress.Progress) -> int:
    if now.step == "photo" and now.path == "/h5/photo" and now.title == "缴费核验":
        return 3  # the photo passed: paying is next, from the photo page
    return STEP_INDEX.get(now.step, 0)


@bp.get("/")
@login_required
def index() -> str:
    user = current_user()
    assert user is not None  # login_required
    now = progress.of(db.session, user.id, datetime.now(UTC))
    at = current_step(now)
    return render_template(
        "h5/index.html",
        steps=STEPS,
        now=now,
        at=at,
        changes=wording.home_changes(now.step),
    )
