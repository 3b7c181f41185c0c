"""`flask exams import-catalog` (docs/exams.md): sites, majors and courses all or nothing, every bad row
named by file, line and column, refused while candidates hold the catalogue; GET
/api/v1/batches/<id>/catalog with seats left and an ETag; the exam columns of the schools CSV."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from app.extensions import db
from app.services import exam_catalog
from models import Batch, Flow, SubmissionStatus
from models.exam import ExamCourse, ExamMajor, ExamRegistration, ExamSite
from tests.factories import make_flow_batch, make_student

DEMO = Path(__file__).resolve().parents[1] / "app" / "data" / "exam_catalogs" / "xj-zikao"
SCHOOL = "xj-zikao"


def _batch(app: Flask, **fields: Any) -> tuple[int, str]:
    with app.app_context():
        batch_id = make_flow_batch(
            Flow.REVIEW_FIRST,
            code=SCHOOL,
            school_name="新疆维吾尔自治区自学考试办公室",
            exam_selection=True,
            **fields,
        )
        name = db.session.get(Batch, batch_id).name  # type: ignore[union-attr]
        db.session.remove()
        return batch_id, name


def _dir(tmp_path: Path, **replace: str) -> Path:
    """The demo catalogue copied to tmp_path, with `replace` = {"courses": "<csv text>"} swapped in."""
    target = tmp_path / "catalog"
    shutil.copytree(DEMO, target)
    for kind, text in replace.items():
        (target / f"{kind}.csv").write_text(text, encoding="utf-8")
    return target


def _import(runner: FlaskCliRunner, name: str, directory: Path, *options: str) -> Any:
    return runner.invoke(args=["exams", "import-catalog", SCHOOL, name, str(directory), *options])


def _counts(app: Flask, batch_id: int) -> tuple[int, int, int]:
    with app.app_context():
        found = tuple(
            int(db.session.scalar(select(func.count()).where(model.batch_id == batch_id)) or 0)
            for model in (ExamSite, ExamMajor, ExamCourse)
        )
        db.session.remove()
        return found  # type: ignore[return-value]


def test_a_good_catalogue_is_imported_and_a_second_import_replaces_it(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    batch_id, name = _batch(app)
    first = _import(runner, name, DEMO)
    assert first.exit_code == 0, first.output
    assert "导入：考点 4 个，专业 2 个，课程 8 门" in first.output
    assert _counts(app, batch_id) == (4, 2, 8)
    with app.app_context():
        logic = db.session.scalar(select(ExamCourse).where(ExamCourse.code == "00024"))
        assert logic is not None and logic.fee_fen == 3500 and logic.major_id is None
        # Beijing time in the file, UTC in the database.
        assert logic.starts_at.isoformat() == "2021-04-01T01:00:00+00:00"
        nursing = db.session.scalar(select(ExamMajor).where(ExamMajor.code == "100701"))
        assert nursing is not None and nursing.special and "护士执业资格" in (nursing.standard or "")
        db.session.remove()

    fewer = (
        "code,name,major_code,starts_at,ends_at,fee_fen\n"
        "00024,普通逻辑,,2021-04-01 09:00,2021-04-01 11:30,4000\n"
    )
    again = _import(runner, name, _dir(tmp_path, courses=fewer))
    assert again.exit_code == 0, again.output
    assert "替换为：考点 4 个，专业 2 个，课程 1 门" in again.output
    assert _counts(app, batch_id) == (4, 2, 1)


def test_every_bad_row_is_named_by_file_line_and_column_and_nothing_is_written(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    batch_id, name = _batch(app)
    sites = (
        "district,county,code,name,address,capacity\n"
        "乌鲁木齐市,天山区,650102,一中考点,解放南路 1 号,300\n"
        "乌鲁木齐市,天山区,650102,重复考点,解放南路 2 号,100\n"  # line 3: the same code
        ",天山区,650104,无地州,地址,abc\n"  # line 4: no district, capacity not a number
    )
    majors = "code,name,standard,special\n530601,工商企业管理,,maybe\n"  # line 2: special
    courses = (
        "code,name,major_code,starts_at,ends_at,fee_yuan\n"
        "00024,普通逻辑,,2021-04-01 09:00,2021-04-01 11:30,35\n"
        "00018,计算机应用基础,999999,2021-04-10 14:30,2021-04-10 17:00,35\n"  # line 3: unknown major
        "00031,心理学,,2021-04-11,2021-04-11 11:30,35\n"  # line 4: a date without the time
        "00144,企业管理概论,530601,2021-04-11 14:30,2021-04-11 14:00,0\n"  # line 5: ends first, fee 0
    )
    result = _import(runner, name, _dir(tmp_path, sites=sites, majors=majors, courses=courses))
    assert result.exit_code == 1
    out = result.output
    assert "sites.csv 第 3 行，code 列：代码 650102 与第 2 行重复（sites.csv line 3, column code）" in out
    assert "sites.csv 第 4 行，district 列：不能为空" in out
    assert "sites.csv 第 4 行，capacity 列：「abc」应为整数" in out
    assert "majors.csv 第 2 行，special 列：「maybe」应为 yes 或 no" in out
    assert "courses.csv 第 3 行，major_code 列：专业代码 999999 不在 majors.csv 里" in out
    assert "courses.csv 第 4 行，starts_at 列：「2021-04-11」不是有效的考试时间" in out
    assert "courses.csv 第 5 行，ends_at 列：考试结束时间必须晚于开始时间" in out
    assert "courses.csv 第 5 行，fee_yuan 列：「0」应为大于 0" in out
    assert "8 处错误，未导入任何数据" in out
    assert _counts(app, batch_id) == (0, 0, 0)


def test_a_missing_column_or_file_is_refused(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    _, name = _batch(app)
    no_capacity = "district,county,code,name,address\n乌鲁木齐市,天山区,650102,一中,地址\n"
    result = _import(runner, name, _dir(tmp_path, sites=no_capacity))
    assert result.exit_code == 1 and "sites.csv 第 1 行：缺少必填的列：capacity" in result.output
    only_sites = tmp_path / "only"
    only_sites.mkdir()
    shutil.copy(DEMO / "sites.csv", only_sites / "sites.csv")
    missing = _import(runner, name, only_sites)
    assert missing.exit_code == 1 and "courses.csv 第 1 行：缺少这个文件" in missing.output


def test_one_file_per_option_and_check_only(app: Flask, runner: FlaskCliRunner) -> None:
    batch_id, name = _batch(app)
    files = ["--sites", str(DEMO / "sites.csv"), "--courses", str(DEMO / "courses.csv")]
    # Without majors.csv the major courses name majors that do not exist.
    result = runner.invoke(args=["exams", "import-catalog", SCHOOL, name, *files])
    assert result.exit_code == 1 and "专业代码 530601 不在 majors.csv 里" in result.output
    files += ["--majors", str(DEMO / "majors.csv")]
    checked = runner.invoke(args=["exams", "import-catalog", SCHOOL, name, *files, "--check"])
    assert checked.exit_code == 0 and "检查通过（未写入）：考点 4 个，专业 2 个，课程 8 门" in checked.output
    assert _counts(app, batch_id) == (0, 0, 0)
    unknown = runner.invoke(args=["exams", "import-catalog", SCHOOL, "没有的批次", *files])
    assert unknown.exit_code == 1 and "找不到学校 xj-zikao 的批次「没有的批次」" in unknown.output


def test_a_catalogue_candidates_registered_against_is_not_replaced(
    app: Flask, runner: FlaskCliRunner
) -> None:
    batch_id, name = _batch(app)
    assert _import(runner, name, DEMO).exit_code == 0
    with app.app_context():
        attempt = make_student(batch_id, SubmissionStatus.APPROVED_UNPAID, openid="o-holder")
        site = db.session.scalars(select(ExamSite).where(ExamSite.batch_id == batch_id)).first()
        assert site is not None
        db.session.add(ExamRegistration(user_id=attempt.user_id, batch_id=batch_id, site_id=site.id))
        db.session.commit()
        db.session.remove()
    again = _import(runner, name, DEMO)
    assert again.exit_code == 1
    assert "已有 1 名考生报考或已分配考场，不能替换本批次的考点、专业和课程目录" in again.output
    assert _counts(app, batch_id) == (4, 2, 8)


def test_the_catalog_endpoint_serves_the_cascade_with_seats_left_and_an_etag(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    batch_id, name = _batch(app)
    assert _import(runner, name, DEMO).exit_code == 0
    answer = client.get(f"/api/v1/batches/{batch_id}/catalog")
    assert answer.status_code == 200
    assert "max-age=" in answer.headers["Cache-Control"] and answer.headers["ETag"]
    body = answer.get_json()
    assert body["selection"] is True
    urumqi = next(d for d in body["districts"] if d["name"] == "乌鲁木齐市")
    tianshan = next(c for c in urumqi["counties"] if c["name"] == "天山区")
    assert tianshan["sites"][0] | {} == {
        "code": "650102",
        "name": "乌鲁木齐市第一中学考点",
        "address": "乌鲁木齐市天山区解放南路 1 号",
        "capacity": 300,
        "seats_left": 300,
    }
    majors = {m["code"]: m for m in body["majors"]}
    assert majors["100701"]["special"] and majors["530601"]["standard"]
    logic = next(c for c in body["courses"] if c["code"] == "00024")
    assert logic["exam_time"] == "2021年04月01日 上午" and logic["fee_fen"] == 3500
    assert logic["major_code"] is None and logic["exam_time_range"] == "2021-04-01 09:00–11:30"

    # Unchanged: 304 without a body.
    same = client.get(
        f"/api/v1/batches/{batch_id}/catalog", headers={"If-None-Match": answer.headers["ETag"]}
    )
    assert same.status_code == 304 and not same.data
    # A seat taken changes seats left, and so the ETag.
    with app.app_context():
        attempt = make_student(batch_id, SubmissionStatus.APPROVED_UNPAID, openid="o-seat")
        site = db.session.scalar(select(ExamSite).where(ExamSite.code == "650102"))
        assert site is not None
        db.session.add(ExamRegistration(user_id=attempt.user_id, batch_id=batch_id, site_id=site.id))
        db.session.commit()
        db.session.remove()
    changed = client.get(
        f"/api/v1/batches/{batch_id}/catalog", headers={"If-None-Match": answer.headers["ETag"]}
    )
    assert changed.status_code == 200 and changed.headers["ETag"] != answer.headers["ETag"]
    assert '"code":"650102","name":"乌鲁木齐市第一中学考点"' in changed.get_data(as_text=True)
    first_site = changed.get_json()["districts"][0]["counties"][0]["sites"][0]
    assert first_site["code"] == "650102" and first_site["seats_left"] == 299
    assert client.get("/api/v1/batches/999999/catalog").status_code == 404


def test_the_schools_csv_carries_the_exam_settings(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    header = (
        "school_code,school_name,province,city,batch_name,education,opens_at,closes_at,fee_yuan,flow,"
        "pay_opens_at,pay_closes_at,exam_selection,exam_room_size,ticket_opens_at,ticket_closes_at,"
        "ticket_notice,ticket_pledge\n"
    )
    good = tmp_path / "good.csv"
    good.write_text(
        header
        + "10496,武汉轻工大学,湖北省,武汉市,学位外语考试,成人教育,2026-10-07,2099-10-14,50,review_first,"
        "2026-10-15,2099-10-20 20:00,no,30,2099-11-01,2099-11-04,考生须知,承诺书\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["schools", "import", str(good)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        batch = db.session.scalar(select(Batch).where(Batch.name == "学位外语考试"))
        assert batch is not None
        assert (batch.exam_selection, batch.exam_room_size) == (False, 30)
        assert batch.ticket_opens_at is not None and batch.ticket_closes_at is not None
        assert (batch.ticket_notice, batch.ticket_pledge) == ("考生须知", "承诺书")
        db.session.remove()

    bad = tmp_path / "bad.csv"
    bad.write_text(
        header + "10542,湖南师范大学,湖南省,长沙市,先缴费,成人教育,2026-01-01,2099-06-30,2,pay_first,,,yes,0,"
        "2099-11-04,2099-11-01,,\n"
        + "10543,某大学,湖南省,长沙市,打印时间,成人教育,2026-01-01,2099-06-30,2,pay_first,,,no,,"
        "2099-11-04,,,\n",
        encoding="utf-8",
    )
    refused = runner.invoke(args=["schools", "import", str(bad)])
    assert refused.exit_code == 1
    assert "exam_room_size 应在 1–500 之间" in refused.output
    assert "第 3 行" in refused.output and "须同时填写或同时留空" in refused.output
    # The room size wrong on line 2 is reported; the rules between columns need it right first.
    good_size = bad.read_text(encoding="utf-8").replace("yes,0,", "yes,30,")
    bad.write_text(good_size, encoding="utf-8")
    again = runner.invoke(args=["schools", "import", str(bad)])
    assert "exam_selection=yes 只适用于 flow=review_first" in again.output
    assert "ticket_closes_at 必须晚于 ticket_opens_at" in again.output
    with app.app_context():
        assert db.session.scalar(select(Batch).where(Batch.name == "先缴费")) is None
        db.session.remove()


def test_the_demo_catalogues_parse() -> None:
    for code in ("xj-zikao", "10496"):
        catalog = exam_catalog.parse(exam_catalog.read_dir(DEMO.parent / code))
        assert catalog.sites and catalog.courses


def test_the_demo_load_gives_both_exam_batches_their_catalogue_and_settings(app: Flask) -> None:
    from app.services import demo_data

    with app.app_context():
        demo_data.load_schools(db.session)
        demo_data.load_schools(db.session)  # twice: nobody registered, so the catalogue is simply renewed
        batches = {
            b.school.code: b
            for b in db.session.scalars(select(Batch).order_by(Batch.closes_at))  # the open batch last
        }
        xinjiang, whpu = batches["xj-zikao"], batches["10496"]
        assert xinjiang.exam_selection and not whpu.exam_selection
        assert _counts(app, xinjiang.id) == (4, 2, 8)
        assert _counts(app, whpu.id) == (2, 0, 1)
        assert whpu.exam_room_size == 30 and whpu.ticket_pledge and "33号令" in (whpu.ticket_notice or "")
        assert whpu.ticket_opens_at is not None and whpu.ticket_closes_at is not None
        exam = db.session.scalar(select(ExamCourse).where(ExamCourse.batch_id == whpu.id))
        assert exam is not None
        # 准考证打印 11月1日至4日, the exam on the 5th at 9: four days before until the day before.
        assert exam.starts_at - whpu.ticket_opens_at == timedelta(days=4, hours=9)
        assert exam.starts_at - whpu.ticket_closes_at == timedelta(hours=9, seconds=1)
        assert exam.starts_at > whpu.closes_at
        db.session.remove()
