"""Seat assignment (`flask exams assign-seats`) and a school's own plan (`flask exams import-seats`)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from app.extensions import db
from models import AuditEntry, ExamSeat
from models.submission import SubmissionStatus
from tests.exam_factories import BATCH_NAME, id_number, make_candidate, make_exam_batch, register


def seats(batch_id: int) -> list[ExamSeat]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(ExamSeat).where(ExamSeat.batch_id == batch_id).order_by(ExamSeat.id))
    )


def assign(runner: FlaskCliRunner) -> str:
    result = runner.invoke(args=["exams", "assign-seats", "10496", BATCH_NAME])
    assert result.exit_code == 0, result.output
    return result.output


def test_seats_are_unique_within_capacity_and_spread(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 50), ("0102", 20)), room_size=10)
        users = [make_candidate(exam.batch_id, n)[0] for n in range(75)]
        # Not candidates: not approved, or approved and still unpaid.
        make_candidate(exam.batch_id, 90, status=SubmissionStatus.PENDING_REVIEW)
        make_candidate(exam.batch_id, 91, status=SubmissionStatus.APPROVED_UNPAID)
    output = assign(runner)
    assert "新安排 70 人" in output
    assert "未安排 5 人" in output
    with app.app_context():
        rows = seats(exam.batch_id)
        assert len(rows) == 70
        assert len({(r.site_id, r.room_no, r.seat_no) for r in rows}) == 70
        assert len({r.ticket_no for r in rows}) == 70
        per_site = Counter(r.site_id for r in rows)
        assert per_site == {exam.site_ids[0]: 50, exam.site_ids[1]: 20}
        assert all(1 <= r.seat_no <= 10 for r in rows)
        # The first 75 in sign-up order fill the sites; the last five are over capacity.
        assert {r.user_id for r in rows} == set(users[:70])
        # Spread: consecutive sign-ups at one site sit in different rooms.
        first = [r for r in rows if r.site_id == exam.site_ids[0]]
        first.sort(key=lambda r: r.submission_id)
        assert all(a.room_no != b.room_no for a, b in itertools.pairwise(first))
        assert Counter(r.room_no for r in first) == {1: 10, 2: 10, 3: 10, 4: 10, 5: 10}
        # 准考证号: year, site code, room (3), seat (2).
        sample = first[0]
        assert sample.ticket_no == f"20260101{sample.room_no:03d}{sample.seat_no:02d}"
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "exams.assign_seats")).one()
        assert entry.detail == {"seated": 70, "kept": 0, "not_seated": 5}


def test_a_second_run_keeps_every_seat_and_seats_only_the_new(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 40),), room_size=10)
        for n in range(13):
            make_candidate(exam.batch_id, n)
    assign(runner)
    with app.app_context():
        before = {(r.user_id, r.room_no, r.seat_no, r.ticket_no) for r in seats(exam.batch_id)}
        # 13 candidates need two rooms: dealt over rooms 1 and 2, not packed into room 1.
        assert Counter(room for _u, room, _s, _t in before) == {1: 7, 2: 6}
    assert "新安排 0 人，已有座位 13 人" in assign(runner)
    with app.app_context():
        assert {(r.user_id, r.room_no, r.seat_no, r.ticket_no) for r in seats(exam.batch_id)} == before
        for n in range(13, 21):
            make_candidate(exam.batch_id, n)
    assert "新安排 8 人，已有座位 13 人" in assign(runner)
    with app.app_context():
        after = seats(exam.batch_id)
        assert before <= {(r.user_id, r.room_no, r.seat_no, r.ticket_no) for r in after}
        # Dealt over the free seats of rooms 1 and 2 and the new room 3.
        assert Counter(r.room_no for r in after) == {1: 10, 2: 9, 3: 2}
        assert len({(r.room_no, r.seat_no) for r in after}) == 21


def test_registered_candidates_sit_at_their_site(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 5), ("0202", 5)), room_size=5, selection=True)
        for n in range(7):
            user_id, submission_id = make_candidate(exam.batch_id, n)
            if n < 6:  # the seventh chose nothing: not seated
                register(user_id, exam.batch_id, exam.site_ids[1], [exam.course_id], submission_id)
    output = assign(runner)
    assert "新安排 5 人" in output and "考点 0202 已满，未安排 1 人" in output and "未报考" in output
    with app.app_context():
        assert {r.site_id for r in seats(exam.batch_id)} == {exam.site_ids[1]}


def test_room_size_and_unknown_batch_are_refused(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        make_exam_batch(room_size=None)  # type: ignore[arg-type]
    result = runner.invoke(args=["exams", "assign-seats", "10496", BATCH_NAME])
    assert result.exit_code != 0 and "每考场人数" in result.output
    result = runner.invoke(args=["exams", "assign-seats", "10496", "没有这个批次"])
    assert result.exit_code != 0 and "找不到" in result.output


def test_import_seats_good_file(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 3),), room_size=2)
        for n in range(3):
            make_candidate(exam.batch_id, n)
    plan = tmp_path / "seats.csv"
    plan.write_text(
        "id_number,site_code,room,seat\n"
        f"{id_number(0)},0101,2,1\n{id_number(1).lower()},0101,1,2\n{id_number(2)},0101,1,1\n",
        encoding="utf-8-sig",
    )
    result = runner.invoke(args=["exams", "import-seats", "10496", BATCH_NAME, str(plan)])
    assert result.exit_code == 0, result.output
    assert "导入 3 个座位" in result.output
    with app.app_context():
        assert sorted((r.room_no, r.seat_no, r.ticket_no) for r in seats(exam.batch_id)) == [
            (1, 1, "202601010010" + "1"),
            (1, 2, "2026010100102"),
            (2, 1, "2026010100201"),
        ]
    # The same file again changes nothing; assign-seats then has no one left to seat.
    result = runner.invoke(args=["exams", "import-seats", "10496", BATCH_NAME, str(plan)])
    assert "导入 0 个座位，3 个未变" in result.output
    assert "新安排 0 人" in assign(runner)


def test_import_seats_bad_file_writes_nothing(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    with app.app_context():
        exam = make_exam_batch(sites=(("0101", 2),), room_size=2)
        for n in range(4):
            make_candidate(exam.batch_id, n)
    plan = tmp_path / "seats.csv"
    plan.write_text(
        "id_number,site_code,room,seat\n"
        f"{id_number(0)},0101,1,1\n"
        f"{id_number(1)},0101,1,1\n"  # the same seat
        f"{id_number(2)},0909,1,2\n"  # no such site
        f"{id_number(7)},0101,1,2\n"  # not a candidate
        f"{id_number(0)},0101,1,2\n"  # twice
        f"{id_number(3)},0101,1,x\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["exams", "import-seats", "10496", BATCH_NAME, str(plan)])
    assert result.exit_code != 0
    for text in (
        "第 3 行",
        "已有考生",
        "第 4 行",
        "不是本批次的考点",
        "第 5 行",
        "不是本批次的考生",
        "第 6 行",
        "不止一次",
        "第 7 行",
        "整数",
        "未导入任何座位",
    ):
        assert text in result.output, text
    with app.app_context():
        assert seats(exam.batch_id) == []
    plan.write_text("id_number,site\n", encoding="utf-8")
    result = runner.invoke(args=["exams", "import-seats", "10496", BATCH_NAME, str(plan)])
    assert result.exit_code != 0 and "缺少列" in result.output
