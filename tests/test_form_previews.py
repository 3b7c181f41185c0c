"""GET /review/batches/<id>/preview and /preview/documents: the student pages' own templates in preview
mode, for the staff of the batch's school only; empty, nothing to save or upload."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.services import applications, batch_forms
from models import Batch
from tests.factories import NOW, Desk, make_desk
from tests.staff_pages import sign_in

EXAMPLE = Path(__file__).resolve().parents[1] / "app" / "data" / "batch_forms" / "10496.yaml"


def _with_form(app: Flask, *, slots_only: bool = False) -> Desk:
    """The review desk, school A's batch carrying 武汉轻工大学's example form (考生类别 → 考籍号/学号)."""
    desk = make_desk(app)
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_a)
        assert batch is not None
        definition = batch_forms.parse(EXAMPLE.read_bytes())
        if slots_only:
            definition = definition.model_copy(update={"sections": []})
        applications.attach(db.session, batch, definition, NOW)
        db.session.commit()
    return desk


def test_staff_of_the_school_see_the_form_as_students_do_without_saving(
    app: Flask, client: FlaskClient
) -> None:
    desk = _with_form(app)
    sign_in(client, "rev-a")
    response = client.get(f"/review/batches/{desk.batch_a}/preview")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="form-page"' in page and "data-preview" in page and 'id="preview-banner"' in page
    assert 'data-when-field="category" data-when-equals="自考"' in page  # the student page's markup
    assert 'data-key="exam_registration_no"' in page and 'data-key="student_no"' in page
    assert '<button type="button" class="btn" id="form-save" disabled>' in page
    assert "/static/h5/form.js" in page  # the same script runs `when`
    assert "请填写「考生类别」。" in page  # as a student first sees it: everything missing
    assert "湖南师范大学 · 成人教育 10542 批次" in page
    assert f'href="/review/batches/{desk.batch_a}/preview/documents"' in page
    assert response.headers["Cache-Control"] == "no-store"  # a staff page's headers

    documents = client.get(f"/review/batches/{desk.batch_a}/preview/documents")
    assert documents.status_code == 200
    page = documents.get_data(as_text=True)
    assert 'id="documents-page"' in page and "data-preview" in page
    for slot in ("id_card_front", "id_card_back", "english_result"):
        assert f'data-slot="{slot}"' in page
    assert page.count("disabled>") == 3  # no upload from a preview
    assert "data-delete" not in page


def test_conditional_slots_say_when_they_are_needed(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    with app.app_context():
        batch = db.session.get(Batch, desk.batch_b)
        assert batch is not None
        definition = batch_forms.parse(EXAMPLE.with_name("10699.yaml").read_bytes())
        applications.attach(db.session, batch, definition, NOW)
        db.session.commit()
    sign_in(client, "rev-b")
    page = client.get(f"/review/batches/{desk.batch_b}/preview/documents").get_data(as_text=True)
    assert 'data-slot="exemption"' in page
    assert "仅当「入学方式」为 免试 时需要上传" in page


def test_other_schools_staff_are_refused_and_admins_see_every_school(app: Flask, client: FlaskClient) -> None:
    desk = _with_form(app)
    sign_in(client, "rev-b")
    for path in ("preview", "preview/documents"):
        refused = client.get(f"/review/batches/{desk.batch_a}/{path}")
        assert refused.status_code == 403
        assert "只能预览本校批次的报名表单" in refused.get_data(as_text=True)
    admin = app.test_client()
    sign_in(admin, "admin")
    assert admin.get(f"/review/batches/{desk.batch_a}/preview").status_code == 200


def test_batches_without_a_definition_unknown_ones_and_signed_out(app: Flask, client: FlaskClient) -> None:
    desk = _with_form(app)
    signed_out = client.get(f"/review/batches/{desk.batch_a}/preview")
    assert signed_out.status_code == 302 and "/review/login" in signed_out.location
    sign_in(client, "admin")
    assert client.get(f"/review/batches/{desk.batch_b}/preview").status_code == 404
    assert client.get("/review/batches/999/preview/documents").status_code == 404


def test_a_batch_with_slots_only_opens_on_its_documents(app: Flask, client: FlaskClient) -> None:
    desk = _with_form(app, slots_only=True)
    sign_in(client, "rev-a")
    response = client.get(f"/review/batches/{desk.batch_a}/preview")
    assert response.status_code == 302
    assert response.location.endswith(f"/review/batches/{desk.batch_a}/preview/documents")
    page = client.get(response.location).get_data(as_text=True)
    assert 'data-preview-tab="form"' not in page


def test_the_dashboard_links_the_preview_of_batches_with_a_definition(
    app: Flask, client: FlaskClient
) -> None:
    desk = _with_form(app)
    sign_in(client, "admin")
    page = client.get("/review/dashboard").get_data(as_text=True)
    assert f'href="/review/batches/{desk.batch_a}/preview"' in page
    assert f'href="/review/batches/{desk.batch_b}/preview"' not in page
