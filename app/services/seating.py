"""Exam seats (考场号, 座位号) and ticket numbers (准考证号) for a batch's candidates (docs/exams.md).

A candidate is a student whose attempt in the batch is done (receipts.complete: 通过, which in
review_first is reached by paying, and confirmed where the batch ends with a confirmation). Their
site is their ExamRegistration's; in a batch without course selection (武汉轻工大学) the service fills
the batch's sites in code order.

Rooms hold `batch.exam_room_size` candidates; a site never seats more than its capacity (the
candidates beyond it are reported, not seated). Spreading: candidates are taken in sign-up order
(submission id) and dealt round-robin over the rooms the site needs, so students who signed up
together (one class, colleagues, friends: adjacent attempts, often adjacent ID numbers) sit in
different rooms. The ID numbers themselves are encrypted at rest and never sorted on.

Repeatable: a second run keeps every seat already assigned and seats only the new candidates, first
into the free seats of the rooms already open, then into new rooms. Rows are inserted in bulk (one
executemany, no ORM flush per row): bench/seat_assignment.py seats 100,000 over 500 sites.

Ticket number: the exam year (Beijing), the site code, the room (3 digits) and the seat (2 digits),
e.g. 2026 + 0101 + 003 + 17 = 2026010100317. The year and both numbers are fixed width and site codes
are unique in a batch, so the number is unique per batch (also for sites whose codes differ in length).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import audit
from app.services.errors import ServiceError
from app.services.localtime import BEIJING, stored_utc
from app.services.pii import Keyring
from models import Batch, ExamCourse, ExamRegistration, ExamSeat, ExamSite, Identity, LockOn, School
from models.submission import Submission, SubmissionStatus

MAX_ROOMS = 999  # three digits in the ticket number
MAX_ROOM_SIZE = 99  # two digits


class SeatingError(ServiceError):
    message = "无法安排考场座位"


class BatchNotFoundError(SeatingError):
    message = "找不到这个学校的这个批次"


class SeatImportError(SeatingError):
    message = "座位文件有错误，未导入任何座位"

    def __init__(self, problems: list[str]) -> None:
        super().__init__()
        self.problems = problems


@dataclass(frozen=True)
class Candidate:
    user_id: int
    submission_id: int
    site_id: int | None  # their registration's site; None: the service chooses


@dataclass
class Assignment:
    """What one run did: how many seats were already there, how many it added, who did not fit."""

    kept: int = 0
    seated: int = 0
    # Per site code: candidates (user ids) the site had no seat left for.
    over_capacity: dict[str, list[int]] = field(default_factory=dict)
    # exam_selection batches: done attempts without a registration (no site chosen).
    unregistered: list[int] = field(default_factory=list)

    @property
    def not_seated(self) -> int:
        return sum(len(v) for v in self.over_capacity.values()) + len(self.unregistered)


def find_batch(session: Session, school_code: str, batch_name: str) -> Batch:
    batch = session.scalar(
        select(Batch)
        .join(School, School.id == Batch.school_id)
        .where(School.code == school_code, Batch.name == batch_name)
    )
    if batch is None:
        raise BatchNotFoundError(f"找不到学校 {school_code} 的批次「{batch_name}」")
    return batch


def exam_year(session: Session, batch: Batch) -> int:
    """The Beijing year of the batch's first exam (its opening when it has no course yet)."""
    first = session.scalar(select(func.min(ExamCourse.starts_at)).where(ExamCourse.batch_id == batch.id))
    moment = stored_utc(first) if first is not None else stored_utc(batch.opens_at)
    return moment.astimezone(BEIJING).year


def ticket_number(year: int, site_code: str, room_no: int, seat_no: int) -> str:
    return f"{year:04d}{site_code}{room_no:03d}{seat_no:02d}"


def candidates(session: Session, batch: Batch) -> list[Candidate]:
    """The batch's candidates in sign-up order (one per student: their latest done attempt)."""
    done = (Submission.batch_id == batch.id) & (Submission.status == SubmissionStatus.APPROVED)
    if batch.lock_on == LockOn.CONFIRM:
        done &= Submission.confirmed_at.is_not(None)
    rows = session.execute(
        select(Submission.user_id, func.max(Submission.id)).where(done).group_by(Submission.user_id)
    ).all()
    sites = dict(
        session.execute(
            select(ExamRegistration.user_id, ExamRegistration.site_id).where(
                ExamRegistration.batch_id == batch.id
            )
        ).all()
    )
    found = [Candidate(user_id, submission_id, sites.get(user_id)) for user_id, submission_id in rows]
    return sorted(found, key=lambda c: c.submission_id)


@dataclass
class _Site:
    id: int
    code: str
    capacity: int
    room_size: int
    taken: set[tuple[int, int]]

    @property
    def free(self) -> int:
        return self.capacity - len(self.taken)

    def room_capacity(self, room: int) -> int:
        """Seats in `room`: full rooms, the last one holding what is left of the capacity."""
        return min(self.room_size, self.capacity - (room - 1) * self.room_size)

    def place(self, count: int) -> list[tuple[int, int]]:
        """Up to `count` free seats, dealt round-robin over as few rooms as hold them all (fewer only
        when an imported plan left seats outside the site's rooms)."""
        taken_rooms = {room for room, _seat in self.taken}
        needed = math.ceil((len(self.taken) + count) / self.room_size)
        rooms = sorted(set(range(1, needed + 1)) | taken_rooms)
        free: dict[int, list[int]] = {}
        for room in rooms:
            size = self.room_capacity(room)
            if size > 0:
                free[room] = [s for s in range(1, size + 1) if (room, s) not in self.taken]
        chosen: list[tuple[int, int]] = []
        while len(chosen) < count:
            progressed = False
            for room, seats in free.items():
                if seats and len(chosen) < count:
                    chosen.append((room, seats.pop(0)))
                    progressed = True
            if not progressed:  # the rooms open are full: open the next one, if the site has it
                room = max(free, default=0) + 1
                if self.room_capacity(room) <= 0:
                    break
                free[room] = list(range(1, self.room_capacity(room) + 1))
        self.taken.update(chosen)
        return chosen


def _room_size(batch: Batch) -> int:
    size = batch.exam_room_size
    if size is None or not 1 <= size <= MAX_ROOM_SIZE:
        raise SeatingError(f"请先设置批次的每考场人数（1–{MAX_ROOM_SIZE}），当前为 {size}")
    return size


def assign(session: Session, batch: Batch, staff_id: int | None = None) -> Assignment:
    """Seat every candidate without a seat; commits once. Repeatable (see the module's doc)."""
    # Runs of the same batch take turns (PostgreSQL; SQLite writes one at a time anyway).
    session.execute(select(Batch.id).where(Batch.id == batch.id).with_for_update())
    room_size = _room_size(batch)
    site_rows = session.scalars(
        select(ExamSite).where(ExamSite.batch_id == batch.id).order_by(ExamSite.code)
    ).all()
    if not site_rows:
        raise SeatingError("这个批次还没有考点，请先导入考点")
    for row in site_rows:
        if math.ceil(row.capacity / room_size) > MAX_ROOMS:
            raise SeatingError(f"考点 {row.code} 的容量需要超过 {MAX_ROOMS} 个考场，请调大每考场人数")
    sites = {row.id: _Site(row.id, row.code, row.capacity, room_size, set()) for row in site_rows}
    seated_users: set[int] = set()
    for user_id, site_id, room, seat in session.execute(
        select(ExamSeat.user_id, ExamSeat.site_id, ExamSeat.room_no, ExamSeat.seat_no).where(
            ExamSeat.batch_id == batch.id
        )
    ):
        seated_users.add(user_id)
        if site_id in sites:
            sites[site_id].taken.add((room, seat))
    result = Assignment(kept=len(seated_users))
    waiting: dict[int, list[Candidate]] = defaultdict(list)
    for candidate in candidates(session, batch):
        if candidate.user_id in seated_users:
            continue
        if candidate.site_id is not None and candidate.site_id in sites:
            waiting[candidate.site_id].append(candidate)
        elif batch.exam_selection:
            result.unregistered.append(candidate.user_id)
        else:
            waiting[0].append(candidate)  # the service chooses below
    # Without course selection: fill the sites in code order, after the registered ones.
    unplaced = waiting.pop(0, [])
    plan: dict[int, list[Candidate]] = {}
    for site in sites.values():
        mine = waiting.get(site.id, [])
        fits = mine[: site.free]
        if len(mine) > len(fits):
            result.over_capacity[site.code] = [c.user_id for c in mine[len(fits) :]]
        plan[site.id] = fits
    for site in sites.values():
        room = site.free - len(plan[site.id])
        if unplaced and room > 0:
            plan[site.id] += unplaced[:room]
            unplaced = unplaced[room:]
    if unplaced:
        result.over_capacity["（所有考点已满）"] = [c.user_id for c in unplaced]
    year = exam_year(session, batch)
    rows = []
    for site_id, chosen in plan.items():
        site = sites[site_id]
        places = site.place(len(chosen))
        if len(places) < len(chosen):
            result.over_capacity.setdefault(site.code, []).extend(c.user_id for c in chosen[len(places) :])
        for candidate, (room, seat) in zip(chosen, places, strict=False):
            rows.append(
                {
                    "batch_id": batch.id,
                    "user_id": candidate.user_id,
                    "submission_id": candidate.submission_id,
                    "site_id": site_id,
                    "room_no": room,
                    "seat_no": seat,
                    "ticket_no": ticket_number(year, site.code, room, seat),
                }
            )
    if rows:
        session.execute(insert(ExamSeat), rows)
    result.seated = len(rows)
    audit.record(
        session,
        staff_id,
        "exams.assign_seats",
        "batch",
        batch.id,
        seated=result.seated,
        kept=result.kept,
        not_seated=result.not_seated,
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise SeatingError("另一次排座同时在进行，请稍后重新运行") from None
    return result


# --- a school's own seating plan (CSV) ----------------------------------------------------------

IMPORT_COLUMNS = ("id_number", "site_code", "room", "seat")


@dataclass(frozen=True)
class SeatImport:
    seated: int
    unchanged: int


def import_plan(
    session: Session, keyring: Keyring, batch: Batch, content: bytes, staff_id: int | None = None
) -> SeatImport:
    """Seats from a school's CSV (id_number, site_code, room, seat; docs/exams.md), all or nothing:
    every row problem is reported (SeatImportError) and nothing is written. A candidate already
    seated at the same seat is left as it is; at another seat, it is a problem (seats do not move)."""
    problems: list[str] = []
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SeatImportError(["文件不是 UTF-8 编码的 CSV"]) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SeatImportError([f"缺少列：{', '.join(missing)}"])
    room_size = batch.exam_room_size
    sites = {s.code: s for s in session.scalars(select(ExamSite).where(ExamSite.batch_id == batch.id))}
    # Candidates by ID number (decrypted here: a school's own plan is thousands of rows, not millions).
    by_number: dict[str, Candidate] = {}
    found = candidates(session, batch)
    identities = dict(
        session.execute(
            select(Submission.id, Identity.number_enc)
            .join(Identity, Identity.id == Submission.identity_id)
            .where(Submission.id.in_([c.submission_id for c in found]))
        ).all()
    )
    for candidate in found:
        by_number[keyring.decrypt(identities[candidate.submission_id]).upper()] = candidate
    existing = {
        row.user_id: row for row in session.scalars(select(ExamSeat).where(ExamSeat.batch_id == batch.id))
    }
    taken = {(row.site_id, row.room_no, row.seat_no): row.user_id for row in existing.values()}
    per_site: dict[int, int] = defaultdict(int)
    for row in existing.values():
        per_site[row.site_id] += 1
    year = exam_year(session, batch)
    new_rows: list[dict[str, object]] = []
    seen_users: set[int] = set()
    unchanged = 0
    for line, raw in enumerate(reader, start=2):
        number = (raw.get("id_number") or "").strip().upper()
        site = sites.get((raw.get("site_code") or "").strip())
        where = f"第 {line} 行"
        found_candidate = by_number.get(number)
        if found_candidate is None:
            problems.append(f"{where}：证件号码不是本批次的考生（审核通过并已缴费）")
            continue
        candidate = found_candidate
        if candidate.user_id in seen_users:
            problems.append(f"{where}：这位考生在文件中出现了不止一次")
            continue
        seen_users.add(candidate.user_id)
        if site is None:
            problems.append(f"{where}：考点代码「{raw.get('site_code')}」不是本批次的考点")
            continue
        if batch.exam_selection and candidate.site_id not in (None, site.id):
            problems.append(f"{where}：考生报考的考点不是 {site.code}")
            continue
        try:
            room, seat = int(raw.get("room") or ""), int(raw.get("seat") or "")
        except ValueError:
            problems.append(f"{where}：考场号和座位号必须是整数")
            continue
        if not (1 <= room <= MAX_ROOMS and 1 <= seat <= (room_size or MAX_ROOM_SIZE)):
            problems.append(f"{where}：考场号须为 1–{MAX_ROOMS}，座位号须为 1–{room_size or MAX_ROOM_SIZE}")
            continue
        held = existing.get(candidate.user_id)
        if held is not None:
            if (held.site_id, held.room_no, held.seat_no) == (site.id, room, seat):
                unchanged += 1
            else:
                problems.append(f"{where}：考生已有座位（准考证号 {held.ticket_no}），不能改动")
            continue
        if (site.id, room, seat) in taken:
            problems.append(f"{where}：考点 {site.code} 第 {room} 考场 {seat} 号座位已有考生")
            continue
        taken[(site.id, room, seat)] = candidate.user_id
        per_site[site.id] += 1
        new_rows.append(
            {
                "batch_id": batch.id,
                "user_id": candidate.user_id,
                "submission_id": candidate.submission_id,
                "site_id": site.id,
                "room_no": room,
                "seat_no": seat,
                "ticket_no": ticket_number(year, site.code, room, seat),
            }
        )
    for site in sites.values():
        if per_site[site.id] > site.capacity:
            problems.append(f"考点 {site.code} 安排了 {per_site[site.id]} 人，超过容量 {site.capacity}")
    if problems:
        session.rollback()
        raise SeatImportError(problems)
    if new_rows:
        session.execute(insert(ExamSeat), new_rows)
    audit.record(
        session, staff_id, "exams.import_seats", "batch", batch.id, seated=len(new_rows), unchanged=unchanged
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise SeatImportError(["座位与同时进行的另一次排座冲突，请重新导入"]) from None
    return SeatImport(len(new_rows), unchanged)


__all__ = [
    "Assignment",
    "BatchNotFoundError",
    "Candidate",
    "SeatImport",
    "SeatImportError",
    "SeatingError",
    "assign",
    "candidates",
    "exam_year",
    "find_batch",
    "import_plan",
    "ticket_number",
]
