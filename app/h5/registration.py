"""/h5/registration (报考): the approved candidate chooses 地州 → 县市 → 考点, a major (查看毕业标准) and the
courses with their exam times, as 新疆自考's manual shows it. The catalogue and the choice come from the
JSON API (app/static/h5/registration.js); this view only says whether there is anything to choose."""

from __future__ import annotations

from flask import render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.services import exam_registrations
from app.services.exam_registrations import RegistrationNotOpenError


@bp.get("/registration")
@login_required
def registration() -> str:
    user = current_user()
    assert user is not None  # login_required ran first
    try:
        view = exam_registrations.view(db.session, user.id)
    except RegistrationNotOpenError as exc:
        return render_template("h5/registration.html", view=None, closed=exc.message)
    return render_template("h5/registration.html", view=view, closed=None)
