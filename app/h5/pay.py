"""/h5/pay/<submission> (开始核验 → 缴费 → 核验中… → result, as in 湖南师范大学's manual): the fee and
what it buys, 「确认支付」 through WeixinJSBridge inside WeChat, a Native QR code (3 minutes, renewed when it
expires) in any other browser, then the identity check's outcome, polled from
GET /api/v1/me/submissions/<id> (app/static/h5/pay.js). This view only checks ownership and says
what the page is about; the state comes from the API.

In review_first batches the same page takes the fee after 通过 (审核通过，待缴费), within the batch's
pay window only: before it opens or after it closes the page says so instead of offering to pay.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.h5.status import photo_src
from app.services import exam_registrations, flow_pages, wording
from app.services.submissions import ORDER_TTL
from models.submission import Submission


@bp.get("/pay/<int:submission_id>")
@login_required
def pay(submission_id: int) -> str | Response:
    user = current_user()
    assert user is not None  # login_required
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.user_id != user.id:
        abort(404)
    batch = submission.batch
    fee_fen, exam = batch.fee_fen, None
    if batch.exam_selection:
        # 新疆自考: the fee is the chosen courses' sum (收费内容); nothing to pay before choosing them.
        try:
            exam = exam_registrations.view(db.session, user.id)
        except exam_registrations.RegistrationNotOpenError:
            exam = None
        if exam is None or exam.submission.id != submission.id or not exam.courses:
            return redirect("/h5/registration")
        fee_fen = exam.total_fen
    settings = current_app.config["SETTINGS"]
    return render_template(
        "h5/pay.html",
        submission=submission,
        batch=batch,
        school=batch.school,
        terms=flow_pages.pay_terms(submission, datetime.now(UTC)),
        fee=wording.yuan(fee_fen),
        exam=exam,
        photo=photo_src(submission.photo_id, user.id),
        review_days=f"{batch.review_days_min}–{batch.review_days_max} 天",
        ttl_minutes=int(ORDER_TTL.total_seconds() // 60),
        in_wechat="MicroMessenger" in request.headers.get("User-Agent", ""),
        sandbox=bool(current_app.config.get("SANDBOX")),
        # The emulator's own process (SANDBOX_URL): the page reaches it there, not on this origin.
        sandbox_base=settings.sandbox_base if settings.sandbox_separate else "/_sandbox",
        sandbox_separate=settings.sandbox_separate,
    )
