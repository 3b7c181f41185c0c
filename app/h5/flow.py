"""The pages of the batch workflows: /h5/notice (须知 → 我已阅读) and /h5/confirm/<id> (the final
confirmation after 通过 where the batch ends with one: 承诺, signature, 确认提交). The actions go
through the JSON API (app/static/h5/flow.js); these views only say what applies.
"""

from __future__ import annotations

from flask import abort, render_template

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.h5.status import photo_src
from app.integrations import pii_keyring
from app.services import flow_pages
from app.services.localtime import chinese_time


def _user_id() -> int:
    user = current_user()
    assert user is not None  # login_required ran first
    return user.id


@bp.get("/notice")
@login_required
def notice() -> str:
    return render_template(
        "h5/notice.html", notice=flow_pages.notice_of(db.session, _user_id()), local=chinese_time
    )


@bp.get("/confirm/<int:submission_id>")
@login_required
def confirm(submission_id: int) -> str:
    user_id = _user_id()
    found = flow_pages.confirmation(db.session, pii_keyring(), user_id, submission_id)
    if found is None:
        abort(404)
    return render_template(
        "h5/confirm.html",
        c=found,
        photo=photo_src(found.photo_id, user_id),
        local=chinese_time,
    )
