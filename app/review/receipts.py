"""/review/receipts?no=…: staff find the attempt behind a printed 回执编号 (a student at the counter
with a receipt, a school asking about one)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.review import bp
from app.review.auth import current_staff, staff_required
from app.services import receipts


@bp.get("/receipts")
@staff_required()
def receipt_lookup() -> ResponseReturnValue:
    staff = current_staff()
    assert staff is not None  # staff_required
    text = (request.args.get("no") or "").strip()[:64]
    if text:
        found = receipts.find_by_number(db.session, staff, text)
        if found is not None:
            return redirect(url_for("review.submission", submission_id=found))
    status = 404 if text else 200
    return render_template("review/receipt_lookup.html", staff=staff, text=text), status
