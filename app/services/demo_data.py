"""Demo data for `flask demo load`: five real schools' sign-up systems, their batches and a demo admin.

Each school carries the photo rules its own manual states (quoted beside each), a batch open now that closes
months ahead, and a closed batch so the closed-batch message can be seen. Dates are relative to
today, so the demo never goes stale. Loading twice changes nothing but the admin's password when
none is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.services import outbox, schools, staff
from app.services.job_kinds import JobKind
from app.services.localtime import BEIJING
from app.services.schools import BatchData, Contact
from media.spec import PhotoSpec
from models import StaffRole

FEE_FEN = 200  # 湖南师范大学's manual: 技术服务费 2 元/次
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class DemoSchool:
    code: str
    name: str
    province: str
    city: str
    education: str
    batch_title: str  # "{year} 年{half}" is filled in
    spec: PhotoSpec
    # From the school's manual, where it gives one (None: leave what an import set).
    contact: Contact | None = None
    # The receipt's title and note when it is not for a 学位证 (None: models/school.py's defaults).
    receipt: tuple[str, str] | None = None


SCHOOLS = [
    # 湖南师范大学: 裁剪后 640*480 像素，JPG 格式，大小 100-200K，浅蓝色背景
    DemoSchool(
        "10542",
        "湖南师范大学",
        "湖南省",
        "长沙市",
        "成人教育",
        "成人教育 {term}学位申请",
        PhotoSpec(min_bytes=100 * 1024, max_bytes=200 * 1024, background="light_blue"),
    ),
    # 西北工业大学: 最大宽高为 480x640 像素; 不超过 10M; jpg、jpeg、png; 一寸照片
    DemoSchool(
        "10699",
        "西北工业大学",
        "陕西省",
        "西安市",
        "网络教育",
        "高起本/专升本 {term}新生入学照片",
        PhotoSpec(size_mode="max", formats=("jpeg", "png"), max_bytes=10 * 1024 * 1024, background="blue"),
        receipt=("新生入学照片审核回执单", "新生报到时出示本回执；工作人员扫码即可核验真伪。"),
    ),
    # 武汉轻工大学: 宽 480 像素*高 640 像素，jpg，照片小于 500KB
    DemoSchool(
        "10496",
        "武汉轻工大学",
        "湖北省",
        "武汉市",
        "成人教育",
        "成人本科 {term}学士学位外语考试",
        PhotoSpec(max_bytes=500 * 1024, background="light_blue"),
    ),
    # 重庆科技学院: 2 吋蓝底近期免冠照片 (35×49 mm, 413×579 px at 300 dpi)
    DemoSchool(
        "11551",
        "重庆科技学院",
        "重庆市",
        "重庆市",
        "自学考试",
        "自考本科 {term}学士学位申请",
        PhotoSpec(width=413, height=579, max_bytes=2 * 1024 * 1024, background="blue"),
        # 咨询服务：王老师 023-65022130（高等教育自学考试）
        Contact(phone="023-65022130"),
    ),
    # 新疆自考: 考生请上传近期免冠一寸照片 (25×35 mm, 295×413 px at 300 dpi)
    DemoSchool(
        "xj-zikao",
        "新疆维吾尔自治区自学考试办公室",
        "新疆维吾尔自治区",
        "乌鲁木齐市",
        "自学考试",
        "自学考试 {term}考生注册",
        PhotoSpec(width=295, height=413, max_bytes=1024 * 1024, background="white"),
        receipt=("自学考试考生注册照片审核回执单", "办理考生注册时出示本回执；工作人员扫码即可核验真伪。"),
    ),
]


def _term(moment: datetime) -> str:
    return f"{moment.year} 年{'上' if moment.month <= 6 else '下'}"


def load_schools(session: Session, now: datetime | None = None) -> list[str]:
    """Upsert the demo schools and batches; returns a line per batch for the console."""
    # Batches open at 00:00 and close at 23:59:59, Beijing time, as schools announce them.
    now = (now or datetime.now(UTC)).astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    lines = []
    for demo in SCHOOLS:
        school = schools.upsert_school(
            session, demo.code, demo.name, demo.province, demo.city, contact=demo.contact
        )
        title, note = demo.receipt or (None, None)
        open_batch = BatchData(
            name=demo.batch_title.format(term=_term(now)),
            education=demo.education,
            opens_at=now - timedelta(days=30),
            closes_at=now + timedelta(days=181, seconds=-1),
            fee_fen=FEE_FEN,
            photo_spec=demo.spec,
            receipt_title=title,
            receipt_note=note,
        )
        half_year_ago = now - timedelta(days=183)
        closed_batch = BatchData(
            name=demo.batch_title.format(term=_term(half_year_ago)),
            education=demo.education,
            opens_at=half_year_ago - timedelta(days=60),
            closes_at=now - timedelta(days=59, seconds=1),
            fee_fen=FEE_FEN,
            photo_spec=demo.spec,
            receipt_title=title,
            receipt_note=note,
        )
        for data in (open_batch, closed_batch):
            schools.upsert_batch(session, school, data)
        lines.append(f"  {demo.name}（{demo.code}）：{open_batch.name}，{demo.spec.describe()}")
    session.commit()
    return lines


def load(session: Session, admin_password: str, *, push_menu: bool, now: datetime | None = None) -> list[str]:
    """Upsert the demo schools and batches and the admin account; returns the console lines.

    With `push_menu` (the sandbox, whose menus live in the server's memory) the menu push is queued
    for the worker, so it reaches the sandbox once the server runs.
    """
    lines = load_schools(session, now)
    staff.ensure(session, ADMIN_USERNAME, admin_password, StaffRole.ADMIN)
    if push_menu:
        outbox.enqueue(session, JobKind.PUSH_MENU, {})
        session.commit()
    return lines
