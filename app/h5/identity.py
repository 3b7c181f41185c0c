"""/h5/bind (实名绑定, 修改, 取消微信绑定) and /h5/me (我的).

Both pages render the same masked summary that GET /api/v1/me returns; the form and the unbind
confirmation talk to the JSON API from app/static/h5/identity.js.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import render_template, request

from app.api.me import summary
from app.auth.session import current_user, login_required
from app.h5 import bp
from app.services.enrollments import EnrollmentLockedError
from app.services.id_documents import DOCUMENT_LABELS, DocumentType
from app.services.localtime import BEIJING


@dataclass(frozen=True)
class DocumentInput:
    """How the number field behaves for each document type (the phone's keyboard, a hint)."""

    type: DocumentType
    label: str
    placeholder: str
    inputmode: str
    maxlength: int


# The keyboards: 18-digit numbers may end in X, so they need letters too (a numeric pad has no X);
# 台胞证 numbers are digits. Lengths leave room for the spaces students type between groups.
DOCUMENT_INPUTS = (
    DocumentInput(DocumentType.RESIDENT_ID, DOCUMENT_LABELS[DocumentType.RESIDENT_ID],
                  "18 位，最后一位可能是 X", "text", 22),
    DocumentInput(DocumentType.RESIDENCE_PERMIT, DOCUMENT_LABELS[DocumentType.RESIDENCE_PERMIT],
                  "18 位，以 810000、820000 或 830000 开头", "text", 22),
    DocumentInput(DocumentType.HK_MACAO_PERMIT, DOCUMENT_LABELS[DocumentType.HK_MACAO_PERMIT],
                  "H 或 M 开头加 8 位数字", "text", 14),
    DocumentInput(DocumentType.TAIWAN_PERMIT, DOCUMENT_LABELS[DocumentType.TAIWAN_PERMIT],
                  "8 位数字", "numeric", 14),
    DocumentInput(DocumentType.PASSPORT, DOCUMENT_LABELS[DocumentType.PASSPORT],
                  "按护照资料页填写", "text", 20),
)  # fmt: skip


def _user_id() -> int:
    user = current_user()
    assert user is not None  # login_required ran first
    return user.id


def _now() -> datetime:
    return datetime.now(UTC)


def _local(moment: datetime) -> str:
    local = moment.astimezone(BEIJING)
    return f"{local.year}年{local.month}月{local.day}日"


@bp.get("/bind")
@login_required
def bind() -> str:
    return render_template(
        "h5/bind.html",
        me=summary(_user_id(), _now()),
        documents=DOCUMENT_INPUTS,
        editing=request.args.get("edit") == "1",
        notice={"bound": "实名绑定成功。", "unbound": "已取消微信绑定。需要时可以重新绑定。"}.get(
            request.args.get("done", "")
        ),
    )


@bp.get("/me")
@login_required
def me() -> str:
    return render_template(
        "h5/me.html",
        me=summary(_user_id(), _now()),
        local=_local,
        enrollment_locked_message=EnrollmentLockedError.message,
        notice="已取消微信绑定。需要时可以重新绑定。" if request.args.get("done") == "unbound" else None,
    )
