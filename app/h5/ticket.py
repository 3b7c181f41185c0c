"""准考证: /h5/ticket (the page, printable) and /h5/ticket.pdf (A4, Noto CJK), within the batch's
ticket window; the QR opens /verify/ticket/<token> for staff at the door (app/links/tickets.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import qrcode
from flask import current_app, render_template
from flask.typing import ResponseReturnValue

from app.auth.session import current_user, login_required
from app.extensions import db
from app.h5 import bp
from app.h5.printing import a4_pdf, cjk_font, photo_frame, qr_svg
from app.h5.status import photo_src
from app.integrations import photo_storage, pii_keyring
from app.services import tickets
from app.services.localtime import chinese_time

if TYPE_CHECKING:
    from fpdf import FPDF


def _now() -> datetime:
    return datetime.now(UTC)


def _user_id() -> int:
    user = current_user()
    assert user is not None  # login_required ran first
    return user.id


def door_url(token: str) -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + "/verify/ticket/" + token


def _page() -> tickets.TicketPage:
    return tickets.for_student(
        db.session, pii_keyring(), current_app.config["SECRET_KEY"], _user_id(), _now()
    )


@bp.get("/ticket")
@login_required
def ticket() -> ResponseReturnValue:
    page = _page()
    found = page.ticket
    if found is None:
        return render_template("h5/ticket.html", ticket=None, message=page.message)
    url = door_url(found.token)
    response = current_app.make_response(
        render_template(
            "h5/ticket.html",
            ticket=found,
            door_url=url,
            qr=qr_svg(url),
            photo=photo_src(found.photo_id, found.user_id),
            local=chinese_time,
        )
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _labelled(pdf: FPDF, label: str, value: str) -> None:
    pdf.cell(26, 9, label)
    pdf.multi_cell(0, 9, value or "—", align="L", new_x="LMARGIN", new_y="NEXT")


def ticket_pdf_bytes(found: tickets.Ticket, url: str, font: str, photo: bytes | None) -> bytes:
    pdf = a4_pdf(found.title, font)
    pdf.set_font("cjk", size=16)
    pdf.multi_cell(0, 10, found.title, align="C", new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 2
    # The approved photo at the right, as on the receipt; the QR under it.
    box = photo_frame(pdf, photo, top, "ticket")
    pdf.image(qrcode.make(url, border=2).get_image(), x=box[0], y=top + 44, w=30)
    pdf.set_y(top)
    pdf.set_font("cjk", size=11)
    pdf.set_right_margin(pdf.r_margin + 36)  # the facts stay left of the photo and the QR
    facts = (
        ("报名号", found.registration_no),
        ("准考证号", found.ticket_no),
        ("姓名", found.name),
        ("性别", found.sex),
        ("证件号码", found.number_masked),
        ("考场号", f"第 {found.room_no} 考场"),
        ("座位号", f"{found.seat_no} 号"),
        *((("考生类别", found.category),) if found.category else ()),
        *((("应试语种", found.language),) if found.language else ()),
        ("考试地址", f"{found.site_name}（{found.site_address}）"),
        ("考试时间", "\n".join(t.text for t in found.exam_times)),
    )
    for label, value in facts:
        _labelled(pdf, label, value)
    pdf.set_right_margin(pdf.l_margin)
    pdf.set_y(max(pdf.get_y(), top + 80))
    if found.notice:
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 9, "考生须知", align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10)
        pdf.multi_cell(0, 6, found.notice, align="L", new_x="LMARGIN", new_y="NEXT")
    if found.pledge:
        pdf.ln(2)
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 9, "承诺书", align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10)
        pdf.multi_cell(0, 6, found.pledge, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.cell(0, 10, "考生签名：________________    日期：____________", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@bp.get("/ticket.pdf")
@login_required
def ticket_pdf() -> ResponseReturnValue:
    page = _page()
    found = page.ticket
    if found is None:
        return render_template("h5/ticket.html", ticket=None, message=page.message), 404
    font = cjk_font()
    if font is None:
        return render_template("error.html", status=503, message="PDF 暂不可用，请使用「打印准考证」。"), 503
    photo = tickets.photo(db.session, photo_storage(), found)
    pdf = ticket_pdf_bytes(found, door_url(found.token), font, photo)
    response = current_app.make_response(pdf)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="ticket-{found.ticket_no}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
