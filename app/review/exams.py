"""Exams on the staff pages: /review/exams (each batch's sites and rooms, who came), a site's check-in
list (/review/exams/sites/<id>?room=N, with 签到 per row for a ticket whose QR cannot be read) and the
door check a ticket's QR opens (/review/exams/door/<token>, 签到 by POST). Phone first: big rows, photo
thumbnails, counts."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.integrations import pii_keyring
from app.review import bp
from app.review.auth import signed_in_staff, staff_required
from app.review.queue import local_time
from app.services import photos, tickets
from app.services.tickets import TicketError, TicketForbiddenError


def _now() -> datetime:
    return datetime.now(UTC)


def _photo(photo_id: int, user_id: int) -> str:
    """A signed link to the approved photo; /media/photos opens it to staff who cover the school."""
    secret = current_app.config["SECRET_KEY"]
    return "/media/photos/" + photos.file_token(secret, photo_id, "normalized", user_id, time.time())


@bp.get("/exams")
@staff_required()
def exams_page() -> ResponseReturnValue:
    staff = signed_in_staff()
    return render_template("review/exams.html", staff=staff, batches=tickets.overview(db.session, staff))


@bp.get("/exams/sites/<int:site_id>")
@staff_required()
def exam_site(site_id: int) -> ResponseReturnValue:
    staff = signed_in_staff()
    room = request.args.get("room", type=int)
    found = tickets.roster(db.session, pii_keyring(), staff, site_id, room)
    if found is None:
        abort(404)
    return render_template("review/exam_site.html", staff=staff, roster=found, photo=_photo, local=local_time)


@bp.post("/exams/sites/<int:site_id>/seats/<int:seat_id>/check-in")
@staff_required()
def exam_site_check_in(site_id: int, seat_id: int) -> ResponseReturnValue:
    staff = signed_in_staff()
    done = tickets.check_in_seat(db.session, pii_keyring(), seat_id, staff, _now())
    if done is None or done[0].site_id != site_id:
        abort(404)
    card, stamped = done
    if stamped:
        flash(f"{card.name} 已签到（第 {card.room_no} 考场 {card.seat_no} 号）", "ok")
    else:
        flash(f"{card.name} 已于 {local_time(card.checked_in_at)} 签到，无需重复签到", "info")
    room = request.args.get("room", type=int)
    return redirect(url_for("review.exam_site", site_id=site_id, room=room, _anchor=f"seat-{seat_id}"), 303)


def _door_page(token: str, card: tickets.DoorCard | None, error: TicketError | None) -> ResponseReturnValue:
    status = 200 if card else 403 if isinstance(error, TicketForbiddenError) else 404
    photo = _photo(card.photo_id, card.user_id) if card else None
    return (
        render_template(
            "review/exam_door.html",
            staff=signed_in_staff(),
            card=card,
            error=error,
            token=token,
            photo=photo,
            local=local_time,
        ),
        status,
    )


@bp.get("/exams/door/<token>")
@staff_required()
def exam_door(token: str) -> ResponseReturnValue:
    try:
        card = tickets.door(
            db.session, pii_keyring(), current_app.config["SECRET_KEY"], token, signed_in_staff()
        )
    except TicketError as exc:
        return _door_page(token, None, exc)
    return _door_page(token, card, None)


@bp.post("/exams/door/<token>/check-in")
@staff_required()
def exam_check_in(token: str) -> ResponseReturnValue:
    staff = signed_in_staff()
    try:
        card, stamped = tickets.check_in(
            db.session, pii_keyring(), current_app.config["SECRET_KEY"], token, staff, _now()
        )
    except TicketError as exc:
        return _door_page(token, None, exc)
    if stamped:
        flash(f"{card.name} 已签到（第 {card.room_no} 考场 {card.seat_no} 号）", "ok")
    else:
        flash(f"{card.name} 已于 {local_time(card.checked_in_at)} 签到，无需重复签到", "info")
    return redirect(url_for("review.exam_door", token=token), 303)
