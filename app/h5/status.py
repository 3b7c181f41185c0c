"""审核结果: /h5/status (state, reason, next step, history) and the printable receipt /h5/receipt,
whose QR code opens /verify/<token> (app/links/receipts.py)."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime

import qrcode
from flask import current_app, render_template
from flask.typing import ResponseReturnValue

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.h5.printing import a4_pdf, cjk_font, photo_frame, qr_svg
from app.integrations import photo_storage, pii_keyring
from app.services import flow_pages, photos, progress, receipts, schools
from app.services.localtime import chinese_time
from models.submission import SubmissionStatus

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _user_id() -> int:
    user = current_user()
    assert user is not None  # login_required ran first
    return user.id


def photo_src(photo_id: int, user_id: int) -> str:
    """A signed link to the processed photo of an attempt, for the student it belongs to."""
    secret = current_app.config["SECRET_KEY"]
    return "/media/photos/" + photos.file_token(secret, photo_id, "normalized", user_id, time.time())


def verify_url(token: str) -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + "/verify/" + token


@bp.get("/status")
@login_required
def status() -> str:
    user_id = _user_id()
    now = _now()
    attempts = receipts.history(db.session, user_id)
    latest = attempts[0] if attempts else None
    can_resubmit = (
        latest is not None
        and latest.status == SubmissionStatus.RETURNED
        and receipts.batch_open(db.session, latest.batch_id, now)
    )
    return render_template(
        "h5/status.html",
        latest=latest,
        attempts=attempts,
        step=progress.of(db.session, user_id, now),
        can_resubmit=can_resubmit,
        school=schools.linked(db.session, user_id=user_id),
        photo=photo_src(latest.photo_id, user_id) if latest else None,
        after=flow_pages.after_decision(db.session, latest.id) if latest else None,
        local=chinese_time,
        S=SubmissionStatus,
    )


@bp.get("/receipt")
@login_required
def receipt() -> ResponseReturnValue:
    page = receipts.page_for_student(db.session, pii_keyring(), current_app.config["SECRET_KEY"], _user_id())
    found = page.receipt
    if found is None:
        # Approved but not yet confirmed: the page leads to the confirmation (not a missing page).
        code = 200 if page.confirm_url else 404
        return render_template("h5/receipt.html", receipt=None, confirm_url=page.confirm_url), code
    url = verify_url(found.token)
    return render_template(
        "h5/receipt.html", receipt=found, verify_url=url, qr=qr_svg(url), local=chinese_time
    )


def _receipt_pdf(
    found: receipts.Receipt, url: str, font: str, photo: bytes | None, signature: bytes | None = None
) -> bytes:
    pdf = a4_pdf(found.title, font)
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 14, found.title, align="C", new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 2
    photo_frame(pdf, photo, top, "receipt")
    pdf.set_y(top)
    pdf.set_font("cjk", size=12)
    facts = (
        ("回执编号", found.receipt_no),
        ("姓名", found.name_masked),
        ("证件号码", found.number_masked),
        ("学校", found.school_name),
        ("批次", found.batch_name),
        ("审核结果", "通过"),
        ("审核时间", chinese_time(found.decided_at)),
        *((("确认时间", chinese_time(found.confirmed_at)),) if found.confirmed_at else ()),
    )
    for label, value in facts:
        pdf.cell(30, 10, label)
        pdf.cell(0, 10, value, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + 42))
    if found.pledge:
        # The 承诺 with the signature drawn under it, as on the printed page.
        pdf.set_font("cjk", size=11)
        pdf.multi_cell(0, 7, f"承诺：{found.pledge}", new_x="LMARGIN", new_y="NEXT")
        if signature is not None:
            pdf.cell(0, 7, "本人签名：", new_x="LMARGIN", new_y="NEXT")
            try:
                pdf.image(io.BytesIO(signature), w=50)
            except (OSError, ValueError) as exc:
                log.warning("receipt PDF without its signature: %s", exc)
        if found.pledged_at:
            pdf.cell(0, 7, f"承诺时间：{chinese_time(found.pledged_at)}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=12)
    pdf.image(qrcode.make(url, border=2).get_image(), x=(pdf.w - 50) / 2, w=50)
    pdf.set_font("cjk", size=10)
    pdf.multi_cell(0, 8, found.note, align="C", new_x="LMARGIN", new_y="NEXT")
    if found.after_approval:
        pdf.multi_cell(0, 8, f"后续事项：{found.after_approval}", align="C")
    return bytes(pdf.output())


@bp.get("/receipt.pdf")
@login_required
def receipt_pdf() -> ResponseReturnValue:
    found = receipts.for_student(db.session, pii_keyring(), current_app.config["SECRET_KEY"], _user_id())
    if found is None:
        return render_template("h5/receipt.html", receipt=None), 404
    font = cjk_font()
    if font is None:
        return render_template("error.html", status=503, message="PDF 暂不可用，请使用「打印回执单」。"), 503
    photo = receipts.photo(db.session, photo_storage(), current_app.config["SECRET_KEY"], found.token)
    secret = current_app.config["SECRET_KEY"]
    signature = receipts.signature(db.session, photo_storage(), secret, found.token) if found.signed else None
    pdf = _receipt_pdf(found, verify_url(found.token), font, photo[0] if photo else None, signature)
    response = current_app.make_response(pdf)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="receipt-{found.receipt_no}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
