"""`flask schools import FILE.csv` (docs/schools-csv.md): all rows or none, every bad row reported
with its line number, idempotent re-import, Excel's BOM."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from app.extensions import db
from app.services import school_import, schools
from app.services.localtime import BEIJING
from media.spec import PhotoSpec
from models import Batch, Flow, LockOn, School

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "schools.csv"
EXCEL = FIXTURES / "schools_excel_bom.csv"
BAD = FIXTURES / "schools_bad.csv"


def _import(runner: FlaskCliRunner, path: Path, *options: str) -> Any:
    return runner.invoke(args=["schools", "import", *options, str(path)])


def _snapshot(app: Flask) -> dict[str, Any]:
    """Every school and batch as plain values (ids included: a re-import must not recreate rows)."""
    with app.app_context():
        found_schools = {
            s.code: (s.id, s.name, s.province, s.city) for s in db.session.scalars(select(School))
        }
        found_batches = {
            (b.school.code, b.name): (
                b.id,
                b.education,
                b.opens_at,
                b.closes_at,
                b.fee_fen,
                b.review_days_min,
                b.review_days_max,
                b.photo_spec,
            )
            for b in db.session.scalars(select(Batch))
        }
        return {"schools": found_schools, "batches": found_batches}


def _batch(app: Flask, code: str, name: str) -> Batch:
    with app.app_context():
        batch = db.session.scalar(select(Batch).join(School).where(School.code == code, Batch.name == name))
        assert batch is not None, (code, name)
        db.session.expunge(batch)
        return batch


def test_importing_the_same_file_twice_leaves_the_same_rows(app: Flask, runner: FlaskCliRunner) -> None:
    first = _import(runner, GOOD)
    assert first.exit_code == 0, first.output
    assert "导入 5 行：学校 新增 4、更新 0；批次 新增 5、更新 0" in first.output
    after_first = _snapshot(app)
    assert len(after_first["schools"]) == 4 and len(after_first["batches"]) == 5

    second = _import(runner, GOOD)
    assert second.exit_code == 0, second.output
    assert "导入 5 行：学校 新增 0、更新 0；批次 新增 0、更新 0" in second.output
    assert _snapshot(app) == after_first


def test_imported_values(app: Flask, runner: FlaskCliRunner) -> None:
    assert _import(runner, GOOD).exit_code == 0
    hunan = _batch(app, "10542", "成人教育 2026 年上学位申请")
    # A date alone: opens at the start of the day and closes at its end, Beijing time.
    assert hunan.opens_at == datetime(2026, 1, 1, tzinfo=BEIJING)
    assert hunan.closes_at == datetime(2099, 6, 30, 23, 59, 59, tzinfo=BEIJING)
    assert hunan.opens_at.tzinfo is not None and hunan.opens_at.utcoffset() == timedelta(0)
    assert hunan.fee_fen == 200 and (hunan.review_days_min, hunan.review_days_max) == (7, 10)
    # The stored spec also carries the check thresholds (media/spec.py defaults); these are the CSV's.
    assert {
        k: v
        for k, v in hunan.photo_spec.items()
        if k in {"width", "height", "size_mode", "formats", "min_bytes", "max_bytes", "background"}
    } == {
        "width": 480,
        "height": 640,
        "size_mode": "exact",
        "formats": ["jpeg"],
        "min_bytes": 100 * 1024,
        "max_bytes": 200 * 1024,
        "background": "light_blue",
    }
    closed = _batch(app, "10542", "成人教育 2021 年下学位申请")
    assert closed.closes_at == datetime(2021, 12, 31, 17, 0, tzinfo=BEIJING)
    assert not closed.is_open(datetime.now(UTC))

    nwpu = _batch(app, "10699", "高起本/专升本 2026 年上新生入学照片")
    assert nwpu.opens_at == datetime(2026, 1, 1, 9, 0, tzinfo=BEIJING)
    assert nwpu.photo_spec["size_mode"] == "max" and nwpu.photo_spec["formats"] == ["jpeg", "png"]
    assert nwpu.photo_spec["max_bytes"] == 10 * 1024 * 1024 and nwpu.photo_spec["background"] == "blue"
    assert (nwpu.review_days_min, nwpu.review_days_max) == (7, 10)  # empty cells: the defaults

    wuhan = _batch(app, "10496", "成人本科 2026 年上学士学位外语考试")
    assert wuhan.photo_spec["background"] == "light_blue"  # 浅蓝色
    assert (wuhan.review_days_min, wuhan.review_days_max) == (5, 5)

    # A quoted name with a comma; fee in yuan with decimals; every photo column empty: the defaults.
    whut = _batch(app, "10497", "网络教育 2026 年上学位申请, 春季")
    assert whut.fee_fen == 350
    assert whut.photo_spec["width"] == 480 and whut.photo_spec["max_bytes"] == 500 * 1024


def test_excel_csv_with_bom_and_crlf(app: Flask, runner: FlaskCliRunner) -> None:
    assert EXCEL.read_bytes().startswith(b"\xef\xbb\xbf")
    result = _import(runner, EXCEL)
    assert result.exit_code == 0, result.output
    assert "导入 2 行" in result.output
    chongqing = _batch(app, "11551", "自考本科 2026 年上学士学位申请")
    assert chongqing.fee_fen == 200 and chongqing.photo_spec["background"] == "blue"
    assert _batch(app, "xj-zikao", "自学考试 2026 年上考生注册").photo_spec["background"] == "white"


def test_a_bom_in_front_of_the_header_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.read_bytes())
    assert len(school_import.parse(path.read_bytes())) == 5


def test_bad_rows_are_all_reported_with_line_numbers_and_nothing_is_imported(
    app: Flask, runner: FlaskCliRunner
) -> None:
    result = _import(runner, BAD)
    assert result.exit_code != 0
    output = result.output
    expected = {
        3: ["school_name 不能为空", "opens_at「2026/03/01」不是有效的日期"],
        4: ["closes_at 必须晚于 opens_at"],
        6: ["fee_yuan「2.001」"],
        7: ["fee_yuan（2.00 元）与 fee_fen（300 分）不一致"],
        8: ["photo_formats「gif」", "photo_background「紫色」", "photo_min_kb 必须小于 photo_max_kb"],
        9: ["与第 2 行是同一学校的同名批次"],
        10: ["学校代码 20001 的名称、省市或联系方式与第 2 行不一致"],
        11: ["school_code「bad code!」", "fee_yuan 和 fee_fen 至少填一个"],
    }
    reported = {int(m) for m in re.findall(r"第 (\d+) 行", output)}
    # Line 2 is good, line 5 is blank; "第 2 行" appears only inside the messages of lines 9 and 10.
    assert reported - {2} == set(expected)
    for line, fragments in expected.items():
        [row] = [r for r in output.splitlines() if r.startswith(f"第 {line} 行：")]
        for fragment in fragments:
            assert fragment in row, (line, fragment, row)
    assert "8 处错误，未导入任何数据" in output
    # The good row on line 2 was not imported either.
    assert _snapshot(app) == {"schools": {}, "batches": {}}


def test_a_file_that_is_not_utf8_is_refused_with_a_hint(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(GOOD.read_text(encoding="utf-8").encode("gbk"))
    result = _import(runner, path)
    assert result.exit_code != 0
    assert "第 2 行：文件不是 UTF-8 编码" in result.output and "CSV UTF-8" in result.output
    assert _snapshot(app)["schools"] == {}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "school_code,school_name,province,city,batch_name,education,opens_at,fee_yuan",
            "缺少必填的列：closes_at",
        ),
        (
            "school_code,school_name,province,city,batch_name,education,opens_at,closes_at",
            "缺少费用列：fee_yuan 或 fee_fen",
        ),
        (
            "school_code,school_name,province,city,batch_name,education,opens_at,closes_at,fee,fee_fen",
            "不认识的列：fee",
        ),
        (
            "school_code,school_name,province,city,batch_name,education,opens_at,closes_at,fee_fen,city",
            "重复的列：city",
        ),
    ],
)
def test_header_problems(runner: FlaskCliRunner, tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "header.csv"
    path.write_text(header + "\n10542,湖南师范大学,湖南省,长沙市,批次,成人教育,2026-01-01,2099-01-01,200\n")
    result = _import(runner, path)
    assert result.exit_code != 0
    assert "第 1 行：" in result.output and message in result.output


def test_empty_files(runner: FlaskCliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "文件是空的" in _import(runner, empty).output
    header_only = tmp_path / "header-only.csv"
    header_only.write_text(GOOD.read_text().splitlines()[0] + "\n\n")
    result = _import(runner, header_only)
    assert result.exit_code != 0 and "没有数据行" in result.output


def test_reimport_updates_changed_rows_and_keeps_rows_missing_from_the_file(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    assert _import(runner, GOOD).exit_code == 0
    before = _snapshot(app)
    lines = GOOD.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    changed = [
        rows[0].replace("2.00,480,640,exact,jpg,100,200", "3.00,480,640,exact,jpg,120,200"),
        rows[2].replace("西北工业大学", "西北工业大学（网络教育学院）"),
    ]
    path = tmp_path / "changed.csv"
    path.write_text("\n".join([header, *changed]) + "\n")
    result = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert "导入 2 行：学校 新增 0、更新 1；批次 新增 0、更新 1" in result.output
    after = _snapshot(app)
    assert after["schools"].keys() == before["schools"].keys()
    assert after["batches"].keys() == before["batches"].keys()
    hunan = _batch(app, "10542", "成人教育 2026 年上学位申请")
    assert hunan.id == before["batches"][("10542", "成人教育 2026 年上学位申请")][0]
    assert hunan.fee_fen == 300 and hunan.photo_spec["min_bytes"] == 120 * 1024
    assert after["schools"]["10699"][1] == "西北工业大学（网络教育学院）"


def test_check_only_writes_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    result = _import(runner, GOOD, "--check")
    assert result.exit_code == 0 and "5 行，检查通过" in result.output
    assert _snapshot(app)["schools"] == {}
    assert _import(runner, BAD, "--check").exit_code != 0


def test_a_failure_while_writing_rolls_everything_back(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = schools.upsert_batch
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Batch:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(schools, "upsert_batch", failing)
    result = _import(runner, GOOD)
    assert result.exit_code != 0 and calls["n"] == 4
    assert _snapshot(app) == {"schools": {}, "batches": {}}


def test_imported_batches_are_served_by_the_api(app: Flask, runner: FlaskCliRunner) -> None:
    assert _import(runner, GOOD).exit_code == 0
    with app.app_context():
        user_id = _add_user()
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user_id"] = user_id
    body = client.get("/api/v1/schools/10497/batches").json
    [batch] = body["batches"]
    assert batch["fee_label"] == "3.50 元" and batch["open"] is True
    assert batch["photo_spec"]["description"] == "480×640 像素，JPG 格式，不超过 500 KB，浅蓝色背景"


def _add_user() -> int:
    from models import User

    user = User(openid="oImportViewer")
    db.session.add(user)
    db.session.commit()
    return user.id


# --- the school's contact (联系客服, the status page) ----------------------------------------------

CONTACT_HEADER = "school_code,school_name,province,city,batch_name,education,opens_at,closes_at,fee_yuan"


def _contact_file(tmp_path: Path, *rows: str, columns: str = ",contact_phone,contact_email") -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text("\n".join([CONTACT_HEADER + columns, *rows]) + "\n", encoding="utf-8")
    return path


def _contact(app: Flask, code: str) -> tuple[str | None, str | None]:
    with app.app_context():
        school = schools.get_by_code(db.session, code)
        assert school is not None
        return school.contact_phone, school.contact_email


ROW = "11551,重庆科技学院,重庆市,重庆市,自考本科 2026 年上学士学位申请,自学考试,2026-01-01,2099-06-30,2"


def test_contact_columns_are_imported_and_kept_by_a_file_without_them(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = _import(runner, _contact_file(tmp_path, ROW + ",023-65022130 转 8021,zk@cqust.edu.cn"))
    assert result.exit_code == 0, result.output
    assert _contact(app, "11551") == ("023-65022130 转 8021", "zk@cqust.edu.cn")
    # A file without the columns leaves the contact alone and changes nothing.
    result = _import(runner, _contact_file(tmp_path, ROW, columns=""))
    assert "学校 新增 0、更新 0" in result.output
    assert _contact(app, "11551") == ("023-65022130 转 8021", "zk@cqust.edu.cn")
    # Empty cells under the columns clear it: the school is updated.
    result = _import(runner, _contact_file(tmp_path, ROW + ",,"))
    assert "学校 新增 0、更新 1" in result.output
    assert _contact(app, "11551") == (None, None)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("1234,", "contact_phone「1234」不是有效的电话号码"),  # too few digits
        ("023-6502abc,", "contact_phone「023-6502abc」不是有效的电话号码"),
        (",zk@cqust", "contact_email「zk@cqust」不是有效的电子邮箱"),
        (",zk cqust@edu.cn", "不是有效的电子邮箱"),
        ("0" * 41 + ",", "contact_phone 超过 40 个字符"),
    ],
)
def test_a_wrong_contact_is_reported_with_its_line(
    runner: FlaskCliRunner, tmp_path: Path, cells: str, message: str
) -> None:
    result = _import(
        runner, _contact_file(tmp_path, ROW + ",023-65022130,", ROW.replace("学士", "学位") + "," + cells)
    )
    assert result.exit_code != 0
    assert "第 3 行" in result.output and message in result.output


@pytest.mark.parametrize("phone", ["400-800-1234", "+86 731 8887 2114", "(0731) 88872114", "13800138000"])
def test_usual_phone_numbers_are_accepted(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, phone: str
) -> None:
    result = _import(runner, _contact_file(tmp_path, f"{ROW},{phone},"))
    assert result.exit_code == 0, result.output
    assert _contact(app, "11551") == (phone, None)


def test_one_school_with_two_contacts_is_refused(runner: FlaskCliRunner, tmp_path: Path) -> None:
    other_batch = ROW.replace("学士", "学位")
    result = _import(runner, _contact_file(tmp_path, ROW + ",023-65022130,", other_batch + ",023-65022052,"))
    assert "学校代码 11551 的名称、省市或联系方式与第 2 行不一致" in result.output


# --- the batch's workflow (flow, pay window, lock point, fee rule, texts) ---------------------------

FLOWS = FIXTURES / "schools_flows.csv"


def test_workflow_columns_are_imported(app: Flask, runner: FlaskCliRunner) -> None:
    result = _import(runner, FLOWS)
    assert result.exit_code == 0, result.output
    hunan = _batch(app, "10542", "成人教育 2026 年上学位申请")
    assert (hunan.flow, hunan.verify_identity, hunan.lock_on, hunan.fee_per_attempt) == (
        Flow.PAY_FIRST,
        True,
        LockOn.CONFIRM,
        True,
    )
    assert hunan.fee_fen == 200 and hunan.signature and hunan.pledge and "真实有效性" in hunan.pledge
    # A quoted cell keeps its line break.
    assert hunan.notice == "审核未通过需重新操作，技术服务费 2 元/次。\n点击确认后，无法再修改信息。"
    assert hunan.pay_opens_at is None and hunan.pay_closes_at is None and hunan.after_approval is None

    wuhan = _batch(app, "10496", "成人本科 2026 年下学士学位外语考试")
    assert (wuhan.flow, wuhan.lock_on, wuhan.fee_fen) == (Flow.REVIEW_FIRST, LockOn.PAY, 5000)
    # The pay window may open after sign-up closes (武汉轻工大学: 报名 10月7日-14日, 缴费 15日-20日 20:00).
    assert wuhan.pay_opens_at == datetime(2026, 10, 15, tzinfo=BEIJING)
    assert wuhan.pay_closes_at == datetime(2026, 10, 20, 20, 0, tzinfo=BEIJING)
    assert wuhan.pay_is_open(datetime(2026, 10, 16, tzinfo=BEIJING))
    assert not wuhan.pay_is_open(datetime(2026, 10, 20, 20, 0, tzinfo=BEIJING))

    xinjiang = _batch(app, "xj-zikao", "自学考试 2026 年上考生注册")
    assert (xinjiang.flow, xinjiang.lock_on, xinjiang.verify_identity) == (
        Flow.REVIEW_FIRST,
        LockOn.APPROVE,
        True,
    )
    assert xinjiang.pledge == "我担保以上信息真实准确" and not xinjiang.signature

    # Free batches: fee 0 or an empty fee; lock_on left empty means approve (nothing is paid).
    for code, name in (
        ("10699", "高起本/专升本 2026 年上新生入学照片"),
        ("11551", "自考本科 2026 年上学士学位申请"),
    ):
        free = _batch(app, code, name)
        assert (free.flow, free.fee_fen, free.lock_on, free.verify_identity) == (
            Flow.FREE,
            0,
            LockOn.APPROVE,
            False,
        )
        assert not free.takes_fee
    chongqing = _batch(app, "11551", "自考本科 2026 年上学士学位申请")
    assert chongqing.after_approval and "背面写明专业+姓名" in chongqing.after_approval

    again = _import(runner, FLOWS)
    assert "批次 新增 0、更新 0" in again.output


def test_a_file_without_the_workflow_columns_imports_pay_first_batches(
    app: Flask, runner: FlaskCliRunner
) -> None:
    assert _import(runner, GOOD).exit_code == 0
    with app.app_context():
        found = list(db.session.scalars(select(Batch)))
        assert len(found) == 5
        for batch in found:
            assert (batch.flow, batch.verify_identity, batch.lock_on, batch.fee_per_attempt) == (
                Flow.PAY_FIRST,
                True,
                LockOn.PAY,
                True,
            )
            assert (batch.pay_opens_at, batch.pay_closes_at, batch.notice, batch.pledge) == (
                None,
                None,
                None,
                None,
            )
            assert not batch.signature and batch.after_approval is None


def test_reimport_updates_the_workflow_columns(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    assert _import(runner, FLOWS).exit_code == 0
    text = FLOWS.read_text(encoding="utf-8")
    changed = tmp_path / "changed.csv"
    changed.write_text(
        text.replace("2026-10-20 20:00,pay,", "2026-10-21 20:00,approve,").replace(
            "我担保以上信息真实准确,,", "我担保以上信息真实准确,yes,"
        ),
        encoding="utf-8",
    )
    result = _import(runner, changed)
    assert result.exit_code == 0, result.output
    assert "批次 新增 0、更新 2" in result.output
    wuhan = _batch(app, "10496", "成人本科 2026 年下学士学位外语考试")
    assert wuhan.lock_on == LockOn.APPROVE
    assert wuhan.pay_closes_at == datetime(2026, 10, 21, 20, 0, tzinfo=BEIJING)
    assert _batch(app, "xj-zikao", "自学考试 2026 年上考生注册").signature
    # A file without the columns puts the batch back to today's pay-first behaviour, as it does for
    # every other batch column it lacks (receipt_title, the photo columns).
    assert _import(runner, GOOD).exit_code == 0
    hunan = _batch(app, "10542", "成人教育 2026 年上学位申请")
    assert (hunan.lock_on, hunan.notice, hunan.pledge, hunan.signature) == (LockOn.PAY, None, None, False)


WORKFLOW_HEADER = (
    "school_code,school_name,province,city,batch_name,education,opens_at,closes_at,fee_yuan,"
    "flow,verify_identity,pay_opens_at,pay_closes_at,lock_on,fee_per_attempt,pledge,signature"
)
WORKFLOW_ROW = "20001,好学校,湖南省,长沙市,批次,成人教育,2026-03-01,2026-06-30,"


@pytest.mark.parametrize(
    ("cells", "messages"),
    [
        ("2,later,,,,,,,", ["flow「later」应为 pay_first"]),
        ("0,pay_first,,,,,,,", ["费用为 0 只适用于 flow=free"]),
        (",review_first,,2026-03-01,2026-03-10,,,,", ["fee_yuan 和 fee_fen 至少填一个"]),
        ("2,free,,,,approve,,,", ["flow=free 的批次不收费，费用必须为 0"]),
        ("0,free,,,,pay,,,", ["flow=free 的批次没有缴费，lock_on 不能为 pay"]),
        ("2,review_first,,,,,,,", ["flow=review_first 必须填写缴费时间 pay_opens_at 和 pay_closes_at"]),
        ("2,review_first,,2026-03-05,,,,,", ["必须填写缴费时间"]),
        ("2,pay_first,,2026-03-05,2026-03-10,,,,", ["flow=pay_first 的 pay_opens_at、pay_closes_at 应留空"]),
        ("0,free,,2026-03-05,2026-03-10,,,,", ["flow=free 的 pay_opens_at"]),
        ("2,review_first,,2026-02-28,2026-03-10,,,,", ["pay_opens_at 不能早于报名开始时间 opens_at"]),
        ("2,review_first,,2026-03-10 12:00,2026-03-10 09:00,,,,", ["pay_closes_at 必须晚于 pay_opens_at"]),
        ("2,review_first,,2026/03/10,2026-03-20,,,,", ["pay_opens_at「2026/03/10」不是有效的日期"]),
        (
            "2,,maybe,,,locked,sometimes,,",
            [
                "verify_identity「maybe」应为 yes 或 no",
                "lock_on「locked」应为 pay",
                "fee_per_attempt「sometimes」应为 yes 或 no",
            ],
        ),
        ("2,,,,,confirm,,,yes", ["signature=yes 需要填写承诺 pledge"]),
    ],
)
def test_a_wrong_workflow_is_reported_with_its_line(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, cells: str, messages: list[str]
) -> None:
    good = WORKFLOW_ROW.replace("好学校", "另一所").replace("20001", "20002") + "2,,,,,,,,"
    path = tmp_path / "workflow.csv"
    path.write_text("\n".join([WORKFLOW_HEADER, good, WORKFLOW_ROW + cells]) + "\n", encoding="utf-8")
    result = _import(runner, path)
    assert result.exit_code != 0
    [row] = [r for r in result.output.splitlines() if r.startswith("第 3 行：")]
    for message in messages:
        assert message in row, (message, row)
    assert "第 2 行" not in result.output
    assert _snapshot(app) == {"schools": {}, "batches": {}}


def test_a_free_row_with_a_pledge_and_signature_and_a_confirmation_is_accepted(tmp_path: Path) -> None:
    content = "\n".join([WORKFLOW_HEADER, WORKFLOW_ROW + "0,free,yes,,,confirm,no,本人承诺信息真实,是"])
    [row] = school_import.parse(content.encode())
    assert (row.batch.flow, row.batch.lock_on, row.batch.fee_fen) == (Flow.FREE, LockOn.CONFIRM, 0)
    assert row.batch.signature and not row.batch.fee_per_attempt and row.batch.verify_identity


def test_the_service_refuses_a_self_contradicting_batch(app: Flask) -> None:
    with app.app_context():
        school = schools.upsert_school(db.session, "20009", "学校", "湖南省", "长沙市")
        opens = datetime(2026, 3, 1, tzinfo=BEIJING)
        data = schools.BatchData("批次", "成人教育", opens, opens + timedelta(days=30), 0, PhotoSpec())
        with pytest.raises(schools.BatchDataError, match="费用为 0"):
            schools.upsert_batch(db.session, school, data)
