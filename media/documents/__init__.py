"""Documents students upload besides the photo (ID card scans, diplomas, 学信网备案表, theses): the real type
from the bytes, then per-type checks. Nothing is stored here: a check returns the bytes to store and what
they are, or raises DocumentRefused with a Chinese message. docs/documents.md gives the rules and why.

    checked = check_document(data, ID_CARD, filename="身份证正面.jpg")
"""

from __future__ import annotations

import posixpath

from media.documents import office, sniff
from media.documents.images import check_image
from media.documents.pdf import check_pdf
from media.documents.rules import (
    DIPLOMA,
    FORMATS,
    ID_CARD,
    MIME_TYPES,
    THESIS,
    XUEXIN_RECORD,
    CheckedDocument,
    DocumentRefused,
    SlotRules,
    label,
    refuse_if_full,
)

__all__ = [
    "DIPLOMA",
    "FORMATS",
    "ID_CARD",
    "THESIS",
    "XUEXIN_RECORD",
    "CheckedDocument",
    "DocumentRefused",
    "SlotRules",
    "check_document",
    "refuse_if_full",
]


def check_document(data: bytes, slot: SlotRules, *, filename: str | None = None) -> CheckedDocument:
    """Check one upload against the slot. ``filename`` only words the messages ("不是 PDF"); the type is
    always read from the bytes."""
    if len(data) > slot.max_bytes:
        raise DocumentRefused(
            f"文件太大（{len(data) / 1048576:.1f} MB），每个文件最多 {slot.max_bytes // 1048576} MB",
            "too_large",
        )
    kind = sniff.real_kind(data)
    claimed = _claimed(filename)
    if kind in ("executable", "script"):
        what = f"不是 {claimed.upper()}" if claimed else "不是文档"
        raise DocumentRefused(f"文件类型与内容不符：这是一个{label(kind)}，{what}", f"refused_{kind}")
    if kind == "empty":
        raise DocumentRefused("文件是空的，请重新选择文件上传", "empty")
    if kind == "ole":
        kind = office.ole_kind(data)
    elif kind == "zip":
        kind = office.ooxml_kind(data)
    if kind not in FORMATS:
        raise DocumentRefused(_not_allowed(kind, claimed, slot), "wrong_type")
    _refuse_polyglot(data, kind)
    if kind in ("jpg", "png"):
        # An image slot takes either image format: it is re-encoded anyway.
        if not slot.formats & {"jpg", "png"}:
            raise DocumentRefused(_not_allowed(kind, claimed, slot), "not_allowed")
        return check_image(data, kind, slot)
    if kind not in slot.formats:
        raise DocumentRefused(_not_allowed(kind, claimed, slot), "not_allowed")
    if kind == "pdf":
        return check_pdf(data, slot)
    return CheckedDocument(kind=kind, mime_type=MIME_TYPES[kind], data=data)


def _claimed(filename: str | None) -> str | None:
    ext = posixpath.splitext((filename or "").replace("\\", "/"))[1].lstrip(".").lower()
    return {"jpeg": "jpg"}.get(ext, ext) or None


def _not_allowed(kind: str, claimed: str | None, slot: SlotRules) -> str:
    wanted = f"这一项只接受 {slot.allowed_labels()} 文件"
    if claimed and claimed != kind:
        return f"文件类型与内容不符：这是{label(kind)}，不是 {claimed.upper()}。{wanted}"
    return f"这是{label(kind)}，{wanted}"


def _refuse_polyglot(data: bytes, kind: str) -> None:
    """An image or PDF that is also a zip archive: harmless to us once re-encoded, but a file made that
    way is made to smuggle something, and a PDF is stored as uploaded."""
    if kind in ("jpg", "png", "pdf") and sniff.carries_zip(data):
        raise DocumentRefused(
            f"文件里藏有压缩包数据，不是普通的{label(kind)}：请重新导出或拍摄后再上传", "polyglot"
        )
    if kind in ("doc", "docx", "ppt", "pptx") and b"%PDF-" in data[:1024]:
        raise DocumentRefused(
            f"文件同时伪装成 PDF，不是普通的{label(kind)}：请用 Office 重新另存后再上传", "polyglot"
        )
