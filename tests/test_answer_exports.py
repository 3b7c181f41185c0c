"""GET /review/export/answers and /review/export/files: admin only, audited, the students whose flow is
complete; the CSV as Excel opens it (BOM, CRLF, groups flattened, formulas defused), the ZIP named
`<slot label>/<证件号码>[-n].<ext>`; both streamed with flat memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
import zipfile
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.integrations import photo_storage, pii_keyring
from app.services import answer_exports, applications, batch_forms, schools
from app.services import staff as staff_service
from models import AuditEntry, Batch, Document, Enrollment, StaffRole, SubmissionStatus
from tests.factories import NOW, STAFF_PASSWORD, make_batch, make_student
from tests.staff_pages import csrf_of

ANSWERS = "/review/export/answers"
FILES = "/review/export/files"

DEFINITION: dict[str, Any] = {
    "school": "10542",
    "batch": "placeholder",
    "sections": [
        {
            "title": "报名信息",
            "fields": [
                {"key": "category", "label": "考生类别", "kind": "radio", "options": ["自考", "成考"]},
                {
                    "key": "exam_no",
                    "label": "考籍号",
                    "kind": "pattern",
                    "pattern": "[0-9]{12}",
                    "hint": "考籍号为 12 位数字",
                    "when": {"field": "category", "equals": "自考"},
                },
                {"key": "mobile", "label": "手机号码", "kind": "phone", "personal": True},
                {
                    "key": "family",
                    "label": "家庭关系",
                    "kind": "group",
                    "personal": True,
                    "fields": [
                        {
                            "key": "relation",
                            "label": "与本人关系",
                            "kind": "select",
                            "options": ["父亲", "母亲"],
                        },
                        {"key": "name", "label": "姓名"},
                    ],
                },
                {"key": "note", "label": "备注", "kind": "textarea"},
            ],
        }
    ],
    "documents": [
        {"key": "id_card_front", "label": "身份证正面", "formats": ["jpg", "png"], "max_files": 2},
        {
            "key": "thesis",
            "label": "毕业论文",
            "formats": ["pdf"],
            "when": {"field": "category", "equals": "成考"},
        },
    ],
}
ZHANG = "11010519491231002X"
LI = "110105194912310037"


def login(app: Flask, client: FlaskClient, username: str, role: StaffRole) -> None:
    """Signed in as an admin, or as a reviewer of 湖南师范大学 (the school of every batch here)."""
    with app.app_context():
        schools.upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
        db.session.commit()
        codes = ["10542"] if role == StaffRole.REVIEWER else []
        staff_service.create(db.session, username, STAFF_PASSWORD, role, codes)
    form = {"username": username, "password": STAFF_PASSWORD, "csrf_token": csrf_of(client)}
    assert client.post("/review/login", data=form).status_code == 303


def _definition(batch_id: int) -> batch_forms.Definition:
    batch = db.session.get(Batch, batch_id)
    assert batch is not None
    definition = batch_forms.from_data({**DEFINITION, "batch": batch.name})
    applications.attach(db.session, batch, definition, NOW)
    db.session.commit()
    return definition


def _answer(definition: batch_forms.Definition, user_id: int, answers: dict[str, Any]) -> None:
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == user_id))
    assert enrollment is not None
    enrollment.form_answers = batch_forms.transform(definition, answers, pii_keyring().encrypt)
    db.session.commit()


def _document(user_id: int, batch_id: int, slot: str, data: bytes, kind: str) -> None:
    mime = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}[kind]
    db.session.add(
        Document(
            user_id=user_id,
            batch_id=batch_id,
            slot=slot,
            storage_key=photo_storage().put(data, mime),
            kind=kind,
            mime_type=mime,
            bytes=len(data),
            created_at=NOW,
        )
    )
    db.session.commit()


def world(app: Flask) -> dict[str, Any]:
    """Two approved students with answers and files, one pending (left out), one other batch."""
    with app.app_context():
        batch = make_batch()
        definition = _definition(batch)
        zhang = make_student(batch, SubmissionStatus.APPROVED, openid="o1", id_number=ZHANG, name="张三丰")
        li = make_student(batch, SubmissionStatus.APPROVED, openid="o2", id_number=LI, name="李四")
        waiting = make_student(
            batch, SubmissionStatus.PENDING_REVIEW, openid="o3", id_number="110105194912310045"
        )
        _answer(
            definition,
            zhang.user_id,
            {
                "category": "成考",
                "mobile": "13800138000",
                "family": [{"relation": "父亲", "name": "张大"}, {"relation": "母亲", "name": "王二"}],
                "note": '=HYPERLINK("http://evil.example","点我")',
            },
        )
        _answer(
            definition,
            li.user_id,
            {"category": "自考", "exam_no": "123456789012", "mobile": "13900139000", "note": "-5 分"},
        )
        _answer(definition, waiting.user_id, {"category": "自考", "mobile": "13700137000"})
        _document(zhang.user_id, batch, "id_card_front", b"\xff\xd8 front one", "jpg")
        _document(zhang.user_id, batch, "id_card_front", b"\x89PNG front two", "png")
        _document(zhang.user_id, batch, "thesis", b"%PDF- thesis", "pdf")
        _document(li.user_id, batch, "id_card_front", b"\xff\xd8 li front", "jpg")
        _document(li.user_id, batch, "thesis", b"%PDF- hidden: a zikao student", "pdf")
        _document(waiting.user_id, batch, "id_card_front", b"\xff\xd8 waiting", "jpg")
        other = make_batch("10699", "西北工业大学")
    return {"batch": batch, "other": other}


def test_answers_csv_opens_in_excel_with_groups_flattened_and_formulas_defused(
    app: Flask, client: FlaskClient
) -> None:
    ids = world(app)
    login(app, client, "boss", StaffRole.ADMIN)
    response = client.get(f"{ANSWERS}?batch={ids['batch']}")
    assert response.status_code == 200
    assert response.is_streamed  # a generator, never the whole file in memory
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    assert data.count(b"\r\n") == 3 and b"\n" not in data.replace(b"\r\n", b"")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == [
        "姓名",
        "证件号码",
        "考生类别",
        "考籍号",
        "手机号码",
        "家庭关系1-与本人关系",
        "家庭关系1-姓名",
        "家庭关系2-与本人关系",
        "家庭关系2-姓名",
        "备注",
    ]
    assert rows[1:] == [
        [
            "张三丰",
            ZHANG,
            "成考",
            "",
            "13800138000",
            "父亲",
            "张大",
            "母亲",
            "王二",
            '\'=HYPERLINK("http://evil.example","点我")',
        ],
        # Long digit strings keep a leading tab so Excel shows them whole, not as 1.10105E+17; the
        # 18-digit ID number ending in X is text anyway, and an 11-digit phone number shows whole.
        ["李四", "\t" + LI, "自考", "\t123456789012", "13900139000", "", "", "", "", "'-5 分"],
    ]
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export_answers")).all()
        assert [(e.target_type, e.target_id, e.detail["count"]) for e in entries] == [
            ("batch", ids["batch"], 2)
        ]


def test_files_zip_is_named_by_slot_label_and_id_number(app: Flask, client: FlaskClient) -> None:
    ids = world(app)
    login(app, client, "boss", StaffRole.ADMIN)
    response = client.get(f"{FILES}?batch={ids['batch']}")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.testzip() is None
    # 李四's thesis is left out: 自考 students have no 毕业论文 slot; the pending student is not done.
    assert archive.namelist() == [
        f"身份证正面/{ZHANG}.jpg",
        f"身份证正面/{ZHANG}-2.png",
        f"毕业论文/{ZHANG}.pdf",
        f"身份证正面/{LI}.jpg",
    ]
    assert archive.read(f"身份证正面/{ZHANG}-2.png") == b"\x89PNG front two"
    assert archive.read(f"毕业论文/{ZHANG}.pdf") == b"%PDF- thesis"
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export_files")).one()
        assert (entry.target_id, entry.detail["count"]) == (ids["batch"], 2)


def test_reviewers_get_403_and_nothing_is_audited(app: Flask, client: FlaskClient) -> None:
    ids = world(app)
    login(app, client, "rev", StaffRole.REVIEWER)
    assert client.get(f"{ANSWERS}?batch={ids['batch']}").status_code == 403
    assert client.get(f"{FILES}?batch={ids['batch']}").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action.like("export%"))) is None


def test_batches_without_a_definition_or_unknown_are_404(app: Flask, client: FlaskClient) -> None:
    ids = world(app)
    assert client.get(f"{ANSWERS}?batch={ids['batch']}").status_code == 302  # signed out: the login page
    login(app, client, "boss", StaffRole.ADMIN)
    for path in (ANSWERS, FILES):
        refused = client.get(f"{path}?batch={ids['other']}")
        assert refused.status_code == 404
        assert "没有报名表单或材料" in refused.get_data(as_text=True)
        assert client.get(f"{path}?batch=999").status_code == 404
        assert client.get(f"{path}?batch=x").status_code == 404


def test_the_export_page_links_the_batches_with_a_definition(app: Flask, client: FlaskClient) -> None:
    ids = world(app)
    login(app, client, "boss", StaffRole.ADMIN)
    page = client.get("/review/export").get_data(as_text=True)
    assert f'href="/review/export/answers?batch={ids["batch"]}"' in page
    assert f'href="/review/export/files?batch={ids["batch"]}"' in page
    assert f'href="/review/batches/{ids["batch"]}/preview"' in page
    assert f"/review/export/answers?batch={ids['other']}" not in page
    assert f"/review/batches/{ids['other']}/preview" not in page


def _consume_peak(client: FlaskClient, path: str) -> tuple[int, int]:
    """(bytes sent, the peak of Python's allocations while the response was drained)."""
    response = client.get(path)
    assert response.is_streamed
    tracemalloc.start()
    try:
        total = sum(len(chunk) for chunk in response.response)  # type: ignore[union-attr]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return total, peak


@pytest.mark.parametrize("what", ["answers", "files"])
def test_memory_stays_flat_however_large_the_export(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """120 students, each with 2,000 characters of answers (≈ 6 kB a row) or a 60 kB file: the
    export is 0.7–7 MB, its drain never holds more than a small part of it."""
    monkeypatch.setattr(answer_exports, "CHUNK_ROWS", 5)  # many database chunks of a few rows
    with app.app_context():
        batch = make_batch()
        definition = _definition(batch)
        for i in range(120):
            number = f"1101051949123{i:04d}X"
            student = make_student(batch, SubmissionStatus.APPROVED, openid=f"m{i}", id_number=number)
            if what == "answers":
                _answer(definition, student.user_id, {"category": "成考", "note": f"{i:03d}" + "长" * 1990})
            else:
                _document(student.user_id, batch, "id_card_front", bytes([i]) * 60_000, "jpg")
    login(app, client, "boss", StaffRole.ADMIN)
    total, peak = _consume_peak(client, f"/review/export/{what}?batch={batch}")
    print(f"{what}: {total} bytes sent, peak {peak} bytes traced")
    # Bounded by a few rows (JSON, decoded, encrypted) or a few copies of one file, not by the export.
    assert total > (700_000 if what == "answers" else 7_000_000)
    assert peak < (300_000 if what == "answers" else 600_000), f"peak {peak} bytes while sending {total}"
