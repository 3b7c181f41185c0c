"""The review queue (/review/), the decision page, claims, decisions and batch approval.

Views parse the form, call one service in app/services/reviews.py and render; every refusal the
service raises carries the Chinese message shown to the reviewer (flashed, or on the page).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.extensions import db
from app.inputs import row_id
from app.integrations import photo_storage, pii_keyring
from app.review import bp
from app.review.auth import safe_next, signed_in_staff, staff_required
from app.services import exports, idcard_fill, photos, returns, review_details, reviews
from app.services.localtime import BEIJING
from app.services.reviews import PRESET_REASONS, ResultPush, ReviewError, ReviewNotFoundError
from media.storage import MediaNotFoundError
from models import Batch, School, Staff, StaffRole, SubmissionStatus
from models.submission import STATUS_LABELS

PAGE_SIZE = 50
# Every state a decision leaves an attempt in, 审核通过，待缴费 and the 逾期未缴费 it may lapse into
# included (review_first); listed in the order the filter offers them.
_DECIDED = (
    SubmissionStatus.APPROVED,
    SubmissionStatus.APPROVED_UNPAID,
    SubmissionStatus.RETURNED,
    SubmissionStatus.REFUSED,
    SubmissionStatus.VOID,
)
STATES: dict[str, tuple[SubmissionStatus, ...]] = {
    "": reviews.QUEUE_STATUSES,
    "pending": (SubmissionStatus.PENDING_REVIEW,),
    "in_review": (SubmissionStatus.IN_REVIEW,),
    "decided": _DECIDED,
    "approved": (SubmissionStatus.APPROVED,),
    "approved_unpaid": (SubmissionStatus.APPROVED_UNPAID,),
    "returned": (SubmissionStatus.RETURNED,),
    "refused": (SubmissionStatus.REFUSED,),
    "void": (SubmissionStatus.VOID,),
    "all": reviews.QUEUE_STATUSES + _DECIDED,
}
# The filter's options, as staff read them.
STATE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("", "全部待审"),
    ("pending", STATUS_LABELS[SubmissionStatus.PENDING_REVIEW]),
    ("in_review", STATUS_LABELS[SubmissionStatus.IN_REVIEW]),
    ("decided", "全部已审结"),
    ("approved", STATUS_LABELS[SubmissionStatus.APPROVED]),
    ("approved_unpaid", STATUS_LABELS[SubmissionStatus.APPROVED_UNPAID]),
    ("returned", STATUS_LABELS[SubmissionStatus.RETURNED]),
    ("refused", STATUS_LABELS[SubmissionStatus.REFUSED]),
    ("void", STATUS_LABELS[SubmissionStatus.VOID]),
    ("all", "全部"),
)
# Decided attempts are listed newest first: the recent decisions are the ones looked for.
DECIDED_STATES = frozenset({"decided", "approved", "approved_unpaid", "returned", "refused", "void"})
SEARCH_MAX_CHARS = 40
DECISION_DONE = {"approve": "已通过", "return": "已驳回", "refuse": "已判定不通过"}


def _now() -> datetime:
    return datetime.now(UTC)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _beijing_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING)


def encode_cursor(cursor: tuple[datetime, int]) -> str:
    return f"{cursor[0].astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}_{cursor[1]}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value or "_" not in value:
        return None
    stamp, _, ident = value.partition("_")
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC), int(ident)
    except ValueError:
        return None


def _scope_with(staff: Staff, school_id: int | None) -> set[int] | None:
    """The staff member's schools, narrowed to the filter's school (outside scope → nothing)."""
    scope = reviews.school_scope(staff)
    if school_id is None:
        return scope
    return {school_id} if scope is None or school_id in scope else set()


def _options(staff: Staff) -> tuple[list[School], list[Batch]]:
    scope = reviews.school_scope(staff)
    school_q = select(School).order_by(School.code)
    batch_q = select(Batch).order_by(Batch.school_id, Batch.id)
    if scope is not None:
        school_q = school_q.where(School.id.in_(scope))
        batch_q = batch_q.where(Batch.school_id.in_(scope))
    return list(db.session.scalars(school_q)), list(db.session.scalars(batch_q))


def _usernames(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.session.execute(select(Staff.id, Staff.username).where(Staff.id.in_(ids)))
    return {staff_id: username for staff_id, username in rows}


@bp.get("/")
@staff_required()
def index() -> ResponseReturnValue:
    staff = signed_in_staff()
    args = request.args
    school_id, batch_id = row_id(args.get("school")), row_id(args.get("batch"))
    state = args.get("state", "") if args.get("state", "") in STATES else ""
    day_from, day_to = _day(args.get("from")), _day(args.get("to"))
    search = " ".join(args.get("q", "").split())[:SEARCH_MAX_CHARS]
    keys: reviews.SearchKeys | None = None
    search_error = None
    if search:
        keys = reviews.search_keys(pii_keyring(), search)
        if keys is None:
            search_error = "请输入完整的证件号码（18 位身份证号或证件号码），或完整姓名"
            keys = reviews.SearchKeys("number", [])
    # A search looks through decided attempts too unless a state is picked.
    statuses = STATES["all"] if search and not state else STATES[state]
    page = reviews.queue(
        db.session,
        school_ids=_scope_with(staff, school_id),
        batch_id=batch_id,
        status=statuses,
        created_from=_beijing_midnight(day_from) if day_from else None,
        # The "to" day is inclusive on the form; the service's bound is exclusive.
        created_to=_beijing_midnight(day_to) + timedelta(days=1) if day_to else None,
        after=decode_cursor(args.get("after")),
        limit=PAGE_SIZE,
        now=_now(),
        number_hashes=keys.number_hashes if keys else None,
        name_hashes=keys.name_hashes if keys else None,
        newest_first=state in DECIDED_STATES,
    )
    schools, batches = _options(staff)
    filters = {
        "q": search,
        "school": school_id or "",
        "batch": batch_id or "",
        "state": state,
        "from": day_from.isoformat() if day_from else "",
        "to": day_to.isoformat() if day_to else "",
    }
    kept = {k: v for k, v in filters.items() if v}
    next_url = None
    if page.next_cursor is not None:
        next_url = url_for("review.index", **kept, after=encode_cursor(page.next_cursor))
    admin = staff.role == StaffRole.ADMIN
    return render_template(
        "review/queue.html",
        staff=staff,
        page=page,
        people=review_details.people(db.session, pii_keyring(), {i.identity_id for i in page.items}),
        thumbs={i.id: _thumb(i) for i in page.items},
        claimers=_usernames(
            {i.claimed_by_id for i in page.items if i.claimed_by_id is not None}
            | {i.decided_by_id for i in page.items if i.decided_by_id is not None}
        ),
        search_error=search_error,
        # Counted for the chosen batch only: the link is offered for that one.
        export_counts=(exports.counts(db.session, [batch_id]) if batch_id else {}) if admin else None,
        schools=schools,
        batches=batches,
        filters=filters,
        state_options=STATE_OPTIONS,
        # The flow label helps only where batches of different flows share the page.
        show_flow=len({b.flow for b in batches}) > 1,
        next_url=next_url,
        first_page=args.get("after") is None,
        first_url=url_for("review.index", **kept),
        local=local_time,
        here=request.full_path.rstrip("?"),
        batch_max=current_app.config["REVIEW_BATCH_APPROVE_MAX"],
    )


def _back() -> str:
    return safe_next(request.form.get("back"))


@bp.post("/submissions/<int:submission_id>/claim")
@staff_required()
def claim(submission_id: int) -> ResponseReturnValue:
    try:
        reviews.claim(
            db.session,
            signed_in_staff(),
            submission_id,
            _now(),
            minutes=current_app.config["REVIEW_CLAIM_MINUTES"],
        )
    except ReviewNotFoundError:
        abort(404)
    except ReviewError as exc:
        flash(exc.message, "error")
        return redirect(_back(), 303)
    return redirect(url_for("review.submission", submission_id=submission_id), 303)


def _thumb(item: reviews.QueueItem) -> str:
    return _photo_link(item.photo_id, "normalized" if item.has_normalized else "original", item.user_id)


def _photo_link(photo_id: int, kind: photos.FileKind, user_id: int) -> str:
    token = photos.file_token(current_app.config["SECRET_KEY"], photo_id, kind, user_id, time.time())
    return f"/media/photos/{token}"


def _decision_page(
    staff: Staff, submission_id: int, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    try:
        detail = review_details.load(
            db.session,
            pii_keyring(),
            staff,
            submission_id,
            _now(),
            reopen_hours=current_app.config["REVIEW_REOPEN_HOURS"],
        )
    except ReviewNotFoundError:
        abort(404)
    photo = detail.photo
    checks = [{**c, "label": photos.check_label(str(c.get("name")))} for c in (photo.checks or [])]
    normalized_url = _photo_link(photo.id, "normalized", photo.user_id) if photo.normalized_key else None
    return (
        render_template(
            "review/decide.html",
            staff=staff,
            sub=detail.submission,
            photo=photo,
            status_label=STATUS_LABELS[detail.shown_status],
            labels=STATUS_LABELS,
            identity=detail.identity,
            name=detail.name,
            number_tail=detail.number_tail,
            full_number=detail.full_number,
            decider=detail.decider,
            reopen_until=detail.reopen_until,
            can_reopen=detail.can_reopen,
            reopen_hours=current_app.config["REVIEW_REOPEN_HOURS"],
            claimer=detail.claimer,
            mine=detail.mine,
            can_decide=detail.can_decide,
            can_claim=detail.can_claim,
            normalized_url=normalized_url,
            original_url=_photo_link(photo.id, "original", photo.user_id),
            face_box=_face_box(photo.face, photo.width, photo.height),
            checks=checks,
            verification=detail.submission.verification or {},
            previous=detail.previous,
            similar_rejected=detail.similar_rejected,
            presets=PRESET_REASONS,
            application=detail.application,
            returned=detail.returned,
            item_suggestions=returns.SUGGESTIONS,
            item_reason_max=returns.MAX_ITEM_REASON,
            error=error,
            form=request.form if request.method == "POST" else {},
            ticked=request.form.getlist("item") if request.method == "POST" else [],
            next_id=detail.next_id,
            flow=detail.flow,
            idcard_reading=idcard_fill.for_review(db.session, pii_keyring(), staff, detail.submission),
            local=local_time,
        ),
        status,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local_time(value: datetime | None) -> str:
    """Beijing time for people (SQLite hands back naive UTC)."""
    return "" if value is None else _aware(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _face_box(face: dict[str, Any] | None, width: int | None, height: int | None) -> dict[str, float] | None:
    """The face rectangle as percentages of the normalised photo, so CSS scales it with the image."""
    if not face or not width or not height:
        return None
    try:
        x, y, w, h = (float(face[k]) for k in ("x", "y", "w", "h"))
    except (KeyError, TypeError, ValueError):
        return None
    return {
        "left": round(100 * x / width, 2),
        "top": round(100 * y / height, 2),
        "width": round(100 * w / width, 2),
        "height": round(100 * h / height, 2),
    }


@bp.get("/submissions/<int:submission_id>")
@staff_required()
def submission(submission_id: int) -> ResponseReturnValue:
    return _decision_page(signed_in_staff(), submission_id)


@bp.get("/submissions/<int:submission_id>/signature")
@staff_required()
def signature(submission_id: int) -> ResponseReturnValue:
    """The student's signature under the batch's 承诺, for staff who cover the school."""
    try:
        data = review_details.signature(db.session, photo_storage(), signed_in_staff(), submission_id)
    except (ReviewNotFoundError, MediaNotFoundError):
        abort(404)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _reason(form: Any) -> str:
    preset = (form.get("reason_preset") or "").strip()
    text = (form.get("reason_text") or "").strip()
    if preset and preset not in PRESET_REASONS:
        preset = ""
    if preset and text:
        return f"{preset}：{text}"
    return preset or text


def _items(form: Any) -> list[dict[str, str]]:
    """The ticked items of an itemised 驳回: `item` = "field:mobile", "document:thesis" or
    "photo:photo", each with its reason in `item_reason:<the same value>`."""
    picked = []
    for value in form.getlist("item"):
        kind, _, key = str(value).partition(":")
        picked.append({"kind": kind, "key": key, "reason": form.get(f"item_reason:{value}", "")})
    return picked


@bp.post("/submissions/<int:submission_id>/decide")
@staff_required()
def decide(submission_id: int) -> ResponseReturnValue:
    staff = signed_in_staff()
    decision = request.form.get("decision", "")
    try:
        reviews.decide(
            db.session,
            staff,
            submission_id,
            decision,
            _reason(request.form),
            _now(),
            push=ResultPush.from_config(current_app.config),
            # Ticks count only with 驳回: 通过 after ticking and unticking must not be refused.
            items=_items(request.form) if decision == "return" else (),
        )
    except ReviewNotFoundError:
        abort(404)
    except ReviewError as exc:
        return _decision_page(staff, submission_id, exc.message, 422)
    flash(f"提交 #{submission_id} {DECISION_DONE.get(decision, '已审核')}", "ok")
    next_id = review_details.next_waiting(db.session, staff, submission_id, _now())
    if next_id is None:
        flash("队列中暂无待审核的提交", "ok")
        return redirect(url_for("review.index"), 303)
    return redirect(url_for("review.submission", submission_id=next_id), 303)


@bp.post("/batch-approve")
@staff_required()
def batch_approve() -> ResponseReturnValue:
    staff = signed_in_staff()
    ids = [i for i in (row_id(v) for v in request.form.getlist("ids")) if i is not None]
    if not ids:
        flash("请先勾选要通过的提交", "error")
        return redirect(_back(), 303)
    try:
        done = reviews.batch_approve(
            db.session,
            staff,
            ids,
            _now(),
            push=ResultPush.from_config(current_app.config),
            max_items=current_app.config["REVIEW_BATCH_APPROVE_MAX"],
        )
    except ReviewError as exc:
        flash(exc.message, "error")
        return redirect(_back(), 303)
    flash(f"已批量通过 {len(done)} 条", "ok")
    return redirect(_back(), 303)


@bp.post("/submissions/<int:submission_id>/reopen")
@staff_required(StaffRole.ADMIN)
def reopen(submission_id: int) -> ResponseReturnValue:
    staff = signed_in_staff()
    try:
        reviews.reopen(
            db.session,
            staff,
            submission_id,
            request.form.get("reopen_reason"),
            _now(),
            hours=current_app.config["REVIEW_REOPEN_HOURS"],
            push=ResultPush.from_config(current_app.config),
        )
    except ReviewNotFoundError:
        abort(404)
    except ReviewError as exc:
        return _decision_page(staff, submission_id, exc.message, 422)
    flash(f"提交 #{submission_id} 的审核结果已撤回，已回到待审核队列，并已通知学生", "ok")
    return redirect(url_for("review.submission", submission_id=submission_id), 303)
