"""/h5/school: 关联学校 (as in 湖南师范大学's manual): 选择省 → 选择市 → 学校名称 → 学历/级/届, then 确定关联.

The lists come from /api/v1 (app/static/h5/school.js); the page itself only says who the student
is: bound or not, already linked (and locked) or not, and which school a school QR code chose.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.services import enrollments, identities, schools


@dataclass(frozen=True)
class Preselect:
    code: str
    province: str
    city: str
    batch_id: int | None
    # "enrollment" (already linked) or "scene" (came through the school's QR code)
    source: str


@bp.get("/school")
@login_required
def school() -> str:
    user = current_user()
    assert user is not None  # login_required
    if identities.active(db.session, user.id) is None:
        return render_template("h5/school.html", need_identity=True)
    enrollment = enrollments.active(db.session, user.id)
    preselect: Preselect | None = None
    if enrollment is not None:
        linked = enrollment.batch.school
        preselect = Preselect(linked.code, linked.province, linked.city, enrollment.batch_id, "enrollment")
    else:
        code = schools.scene_school_code(user.last_scene)
        scanned = schools.get_by_code(db.session, code) if code else None
        if scanned is not None:
            preselect = Preselect(scanned.code, scanned.province, scanned.city, None, "scene")
    return render_template(
        "h5/school.html",
        need_identity=False,
        enrollment=enrollment,
        locked=enrollment is not None and enrollment.locked_at is not None,
        locked_message=enrollments.EnrollmentLockedError.message,
        preselect=preselect,
    )
