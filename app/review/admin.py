"""The dashboard (/review/dashboard, every staff member for their schools) and the admin page of
dead outbox rows (/review/outbox) with its retry button."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.review import bp
from app.review.auth import current_staff, staff_required, visible_school_ids
from app.review.queue import local_time
from app.services import dashboard, deadletters, exports, form_previews
from models import StaffRole


@bp.get("/dashboard")
@staff_required()
def dashboard_page() -> ResponseReturnValue:
    staff = current_staff()
    assert staff is not None
    board = dashboard.build(db.session, visible_school_ids(staff))
    # The export is admin-only (it decrypts ID numbers for the file names).
    export_counts = (
        exports.counts(db.session, [row.batch_id for row in board.batches])
        if staff.role == StaffRole.ADMIN
        else None
    )
    return render_template(
        "review/dashboard.html",
        staff=staff,
        board=board,
        chart=dashboard,
        export_counts=export_counts,
        previews=form_previews.with_definition(db.session, [row.batch_id for row in board.batches]),
        local=local_time,
    )


@bp.get("/outbox")
@staff_required(role=StaffRole.ADMIN)
def outbox_page() -> ResponseReturnValue:
    return render_template(
        "review/outbox.html", staff=current_staff(), items=deadletters.list_dead(db.session)
    )


@bp.post("/outbox/<int:item_id>/retry")
@staff_required(role=StaffRole.ADMIN)
def outbox_retry(item_id: int) -> ResponseReturnValue:
    staff = current_staff()
    assert staff is not None
    try:
        deadletters.retry(db.session, item_id, staff.id)
    except deadletters.DeadLetterError as exc:
        flash(str(exc), "error")
    else:
        flash(f"任务 #{item_id} 已重新排队", "ok")
    return redirect(url_for("review.outbox_page"), 303)
