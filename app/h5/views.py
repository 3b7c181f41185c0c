"""Student pages opened from the menu. Later issues add /h5/bind, /h5/school, /h5/photo, /h5/me."""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template

from app.auth.session import login_required
from app.h5 import bp


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


@bp.get("/")
@login_required
def index() -> str:
    return render_template("h5/index.html", steps=STEPS)
