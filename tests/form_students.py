"""Students with a batch form and documents, their attempt waiting for review: what the itemised 驳回
tests (HTTP and browser) share. Call inside an app context."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import select

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.services import applications, batch_forms
from models import Batch, Identity
from tests.factories import ID_NUMBER, add_submission, make_linked_student

DEFINITION: dict[str, Any] = {
    "school": "10542",
    "batch": "placeholder",
    "sections": [
        {
            "title": "报名信息",
            "fields": [
                {
                    "key": "category",
                    "label": "考生类别",
                    "kind": "radio",
                    "options": ["自考", "成考"],
                    "required": True,
                },
                {
                    "key": "exam_no",
                    "label": "考籍号",
                    "kind": "pattern",
                    "pattern": "[0-9]{12}",
                    "hint": "考籍号为 12 位数字",
                    "when": {"field": "category", "equals": "自考"},
                },
                {"key": "mobile", "label": "手机号码", "kind": "phone", "required": True, "personal": True},
                {
                    "key": "family",
                    "label": "家庭关系",
                    "kind": "group",
                    "personal": True,
                    "min_rows": 1,
                    "fields": [
                        {
                            "key": "relation",
                            "label": "与本人关系",
                            "kind": "select",
                            "options": ["父亲", "母亲"],
                        },
                        {"key": "name", "label": "姓名", "required": True},
                    ],
                },
            ],
        }
    ],
    "documents": [
        {"key": "id_card_front", "label": "身份证正面", "kind": "id_card_front", "formats": ["jpg", "png"]},
        {"key": "thesis", "label": "毕业论文", "formats": ["pdf", "docx"]},
        {"key": "resume", "label": "个人简历", "formats": ["docx"], "required": False},
    ],
}
ANSWERS = {"category": "成考", "mobile": "13800138000", "family": [{"relation": "父亲", "name": "张大山"}]}


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 500), (90, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


def docx() -> bytes:
    """The smallest Word file media.documents accepts (a package with its main part)."""
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships '
        'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="word/document.xml"/></Relationships>'
    )
    body = '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("_rels/.rels", rels)
        zf.writestr("word/document.xml", body)
    return buf.getvalue()


def pdf(pages: int = 2) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


@dataclass
class Scene:
    batch_id: int
    user_id: int
    photo_id: int
    submission_id: int
    image_id: int
    pdf_id: int
    docx_id: int


def attach(batch_id: int, definition: dict[str, Any] = DEFINITION) -> None:
    batch = db.session.get(Batch, batch_id)
    assert batch is not None
    applications.attach(db.session, batch, batch_forms.from_data({**definition, "batch": batch.name}), now())
    db.session.commit()


def now() -> datetime:
    return datetime.now(UTC)


def waiting_student(batch_id: int, openid: str = "o-items", id_number: str = ID_NUMBER) -> Scene:
    """A student who filled the form, uploaded an image, a PDF and a Word file, and whose attempt waits
    for review."""
    user_id, photo_id = make_linked_student(batch_id, openid, id_number=id_number)
    applications.save_answers(db.session, pii_keyring(), user_id, ANSWERS, now())
    image = applications.upload(db.session, photo_storage(), user_id, "id_card_front", jpeg(), "a.jpg", now())
    thesis = applications.upload(db.session, photo_storage(), user_id, "thesis", pdf(), "t.pdf", now())
    resume = applications.upload(db.session, photo_storage(), user_id, "resume", docx(), "r.docx", now())
    identity = db.session.scalar(select(Identity).where(Identity.user_id == user_id))
    assert identity is not None
    sub = add_submission(user_id, batch_id, photo_id, identity.id)
    db.session.commit()
    return Scene(batch_id, user_id, photo_id, sub.id, image.id, thesis.id, resume.id)
