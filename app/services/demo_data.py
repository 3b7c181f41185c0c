"""Demo data for `flask demo load`: five real schools' sign-up systems, their batches and a demo admin.

Each school's batches carry what its own manual states: the photo rules (quoted beside each; a rule the
manual does not give is marked as the demo's own choice), the workflow (who pays what, when, and when
the data freezes) and the 须知/承诺/通过后 texts in the manual's own words; and, unless left out, the
sign-up form and document slots its manual asks for (app/data/batch_forms/). Each school has a batch open
now that closes months ahead and a closed batch, so the closed-batch message can be seen. Dates are
relative to the load time, so the demo never goes stale. Loading twice changes nothing but the admin's
password when none is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import applications, batch_forms, exam_catalog, outbox, schools, staff
from app.services.job_kinds import JobKind
from app.services.localtime import BEIJING
from app.services.schools import BatchData, Contact, ExamSettings
from media.spec import PhotoSpec
from models import Batch, Flow, LockOn, School, StaffRole

ADMIN_USERNAME = "admin"

# The open batch opened this long before the load and closes this long after it.
OPENED_AGO = timedelta(days=30)
CLOSES_IN = timedelta(days=181)


@dataclass(frozen=True)
class PayWindow:
    """A review_first batch's pay window, relative to the batch's own sign-up opening."""

    opens_after: timedelta
    # None: closes with sign-up.
    closes_after: timedelta | None


@dataclass(frozen=True)
class DemoExam:
    """A batch's exam sign-up (docs/exams.md): its catalogue is app/data/exam_catalogs/<code>/, whose exam
    dates the demo moves to EXAM_AFTER_CLOSE after the open batch closes (the clock times stay)."""

    selection: bool = False
    room_size: int | None = None
    # The 准考证 window in days before the first exam (opens at 00:00, closes at 23:59:59).
    ticket_days_before: tuple[int, int] | None = None
    ticket_notice: str | None = None
    ticket_pledge: str | None = None


# The first exam of a demo catalogue falls this long after the open batch closes.
EXAM_AFTER_CLOSE = timedelta(days=14)
CATALOGS_DIR = Path(__file__).resolve().parents[1] / "data" / "exam_catalogs"

# 武汉轻工大学's 准考证: 考生须知 as its manual prints them (eight rules, one a line).
WHPU_TICKET_NOTICE = (CATALOGS_DIR / "10496" / "ticket_notice.txt").read_text(encoding="utf-8").strip()
# The manual shows a 打印继续考试承诺书 button but not the text: these words are the demo's own, from
# the 须知 above.
WHPU_TICKET_PLEDGE = (
    "本人已认真阅读《考生须知》，承诺诚信应考，自觉服从考试工作人员管理，遵守考场纪律；"
    "如有违纪、作弊等行为，愿按照《国家教育考试违规处理办法》接受处理，并记入诚信考试档案。"
)


@dataclass(frozen=True)
class DemoSchool:
    code: str
    name: str
    province: str
    city: str
    education: str
    batch_title: str  # "{year} 年{half}" is filled in
    spec: PhotoSpec
    flow: Flow
    fee_fen: int
    verify_identity: bool
    lock_on: LockOn
    notice: str
    pay_window: PayWindow | None = None
    fee_per_attempt: bool = True
    pledge: str | None = None
    signature: bool = False
    after_approval: str | None = None
    # From the school's manual, where it gives one (None: leave what an import set).
    contact: Contact | None = None
    # The receipt's title and note when it is not for a 学位证 (None: models/school.py's defaults).
    receipt: tuple[str, str] | None = None
    exam: DemoExam | None = None


SCHOOLS = [
    # 湖南师范大学: pay first (点击“开始核验”，在弹出支付窗口交费后，开始身份核验), 技术服务费 2 元/次,
    # then a final confirmation with an electronic signature that freezes the data and prints the receipt
    # (领取学位证凭证).
    DemoSchool(
        "10542",
        "湖南师范大学",
        "湖南省",
        "长沙市",
        "成人教育",
        "成人教育 {term}学位申请",
        # 裁剪后 640*480 像素，JPG 格式，大小 100-200K; 建议浅蓝色背景
        PhotoSpec(min_bytes=100 * 1024, max_bytes=200 * 1024, background="light_blue"),
        flow=Flow.PAY_FIRST,
        fee_fen=200,
        verify_identity=True,
        lock_on=LockOn.CONFIRM,
        notice=(
            "上传成功后，人工审核时间在 7-10 天左右，收到“审核通过”信息，即完成照片上传。\n"
            "“审核未通过”（照片质量不符合学信网要求、身份核验失败）需重新操作，技术服务费 2 元/次。\n"
            "审核后对自己的信息进行最后的确认。点击确认后，无法再修改信息。\n"
            "不得上传扫描、纸质翻拍或手机自拍照片。"
        ),
        pledge="学生需对上传证件的真实有效性负责，如发现伪造证件，一经核实，即取消其申报考资格。",
        signature=True,
    ),
    # 西北工业大学: the photo is part of 新生入学 data checked by the 教学点; the manual names no fee and
    # no identity check, so none is asked for.
    DemoSchool(
        "10699",
        "西北工业大学",
        "陕西省",
        "西安市",
        "网络教育",
        "高起本/专升本 {term}新生入学照片",
        # 最大宽高为 480x640 像素; 不超过 10M; jpg、jpeg、png; 一寸照片.
        # The blue background is the demo's own choice: the manual names no colour.
        PhotoSpec(size_mode="max", formats=("jpeg", "png"), max_bytes=10 * 1024 * 1024, background="blue"),
        flow=Flow.FREE,
        fee_fen=0,
        verify_identity=False,
        lock_on=LockOn.APPROVE,
        notice=(
            "请上传一个月内 1 寸免冠照片，照片最大宽高为 480x640 像素；"
            "上传照片不能与准考证照片（录取照片）相同。\n"
            "提交后待教学点审核，请与校外教学点保持联系。"
        ),
        receipt=("新生入学照片审核回执单", "新生报到时出示本回执；工作人员扫码即可核验真伪。"),
    ),
    # 武汉轻工大学: 网上报名 → 资格审核 → 网上缴费 (网上报名成功，且审核通过的学生才能缴费); unpaid at
    # the end of the pay window, 本次报名无效. The manual gives no fee figure: 50 元 is an example, and
    # the notice says so. Its pay window (缴费时间 10月15日-20日 20:00, after sign-up closes) is, in the
    # demo, open from the load day for four weeks until 20:00, inside sign-up, so that a demo student
    # approved today can pay.
    DemoSchool(
        "10496",
        "武汉轻工大学",
        "湖北省",
        "武汉市",
        "成人教育",
        "成人本科 {term}学士学位外语考试",
        # 宽 480 像素*高 640 像素，jpg，照片小于 500KB.
        # The light blue background is the demo's own choice: the manual names no colour.
        PhotoSpec(max_bytes=500 * 1024, background="light_blue"),
        flow=Flow.REVIEW_FIRST,
        fee_fen=5000,
        verify_identity=True,
        lock_on=LockOn.PAY,
        pay_window=PayWindow(OPENED_AGO, OPENED_AGO + timedelta(days=28, hours=20)),
        notice=(
            "网上报名成功，且审核通过的学生才能缴费。\n"
            "通过资格审核的考生，须在缴费时间内微信在线支付；超出规定时间未缴费的，本次报名无效，"
            "相应后果由考生自行承担。\n"
            "友情提醒：报名时间过后不补报名，缴费时间过后不补缴费。\n"
            "（演示：报名流程未写明金额，50 元为示例金额。）"
        ),
        receipt=(
            "学士学位外语考试报名照片审核回执单",
            "报名及考试期间如需核验报名照片，出示本回执；工作人员扫码即可核验真伪。",
        ),
        # 四、考试时间 (11月5日上午9时至11时), one exam for everyone paid; 三、准考证打印 (11月1日至4日).
        exam=DemoExam(
            room_size=30,
            ticket_days_before=(4, 1),
            ticket_notice=WHPU_TICKET_NOTICE,
            ticket_pledge=WHPU_TICKET_PLEDGE,
        ),
    ),
    # 重庆科技学院: 学士学位证书申办不收取任何费用; 驳回 can be fixed and resubmitted until the
    # collection closes (超过信息采集时间学员无法进行再次提交); after 通过 a paper photo goes by post.
    DemoSchool(
        "11551",
        "重庆科技学院",
        "重庆市",
        "重庆市",
        "自学考试",
        "自考本科 {term}学士学位申请",
        # 电子照片要求 2 吋蓝底近期免冠照片 (35×49 mm, 413×579 px at 300 dpi).
        # The 2 MB limit is the demo's own choice: the manual gives no file size.
        PhotoSpec(width=413, height=579, max_bytes=2 * 1024 * 1024, background="blue"),
        flow=Flow.FREE,
        fee_fen=0,
        verify_identity=False,
        lock_on=LockOn.APPROVE,
        notice=(
            "学士学位证书申办不收取任何费用。所有填写信息务必真实有效，如有不实由申请本人负责。\n"
            "如申请驳回，请根据驳回原因修改相应信息；超过信息采集时间学员无法进行再次提交，请注意结束时间。\n"
            "线上申请通过后，再提交纸质照片。"
        ),
        after_approval=(
            "请提交与本系统一致的蓝底两寸带背胶的照片1张，背面写明专业+姓名。\n"
            "请以普通顺丰寄付的方式邮寄照片（顺丰同城、跑腿等业务不能直接送进学校，材料如有遗失我办概不负责）。\n"
            "寄送地址（只接收普通顺丰快递）：重庆市沙坪坝区大学城东路20号，继续教育学院，"
            "王老师 023-65022130。"
        ),
        # 咨询服务：王老师 023-65022130（高等教育自学考试）
        contact=Contact(phone="023-65022130"),
    ),
    # 新疆自考: 注册 → 审核 (by the 报名地州) → 报考 → 缴费; 若考生审核通过，则无法再修改任何信息. The manual
    # has no pay deadline of its own (考生报考后，即可在线缴费): the pay window is the sign-up window. The
    # fee is the manual's 考试费用 for one course (35 元 per course), an example, and the notice says so.
    DemoSchool(
        "xj-zikao",
        "新疆维吾尔自治区自学考试办公室",
        "新疆维吾尔自治区",
        "乌鲁木齐市",
        "自学考试",
        "自学考试 {term}考生注册",
        # 考生请上传近期免冠一寸照片 (25×35 mm, 295×413 px at 300 dpi).
        # The white background and the 1 MB limit are the demo's own choice: the manual gives neither.
        PhotoSpec(width=295, height=413, max_bytes=1024 * 1024, background="white"),
        flow=Flow.REVIEW_FIRST,
        fee_fen=3500,
        verify_identity=True,
        lock_on=LockOn.APPROVE,
        pay_window=PayWindow(timedelta(0), None),
        notice=(
            "请仔细填写，注意填写信息真实无误；上传头像时，请选择近期照片。\n"
            "注册信息提交后，由报名地州教育部门对考生信息进行审核。若审核通过，则无法再修改任何信息；"
            "若审核未通过，考生根据原因可修改信息并重新提交等待审核。\n"
            "（演示：35 元为一门课程的考试费用示例，实际按报考课程计算。）"
        ),
        pledge="我担保以上信息真实准确",
        receipt=("自学考试考生注册照片审核回执单", "办理考生注册时出示本回执；工作人员扫码即可核验真伪。"),
        # 报考: 选择考区、考点、报考专业及报考课程, 35 元 per course, at the manual's exam times.
        exam=DemoExam(selection=True),
    ),
]

FLOW_LABELS = {Flow.PAY_FIRST: "先缴费后审核", Flow.REVIEW_FIRST: "先审核后缴费", Flow.FREE: "不收费"}


def _term(moment: datetime) -> str:
    return f"{moment.year} 年{'上' if moment.month <= 6 else '下'}"


def _catalog(demo: DemoSchool, closes_at: datetime) -> exam_catalog.Catalog | None:
    """The school's demo catalogue, its first exam EXAM_AFTER_CLOSE after `closes_at` (clock times kept)."""
    directory = CATALOGS_DIR / demo.code
    if demo.exam is None or not directory.is_dir():
        return None
    catalog = exam_catalog.parse(exam_catalog.read_dir(directory))
    first = min(c.starts_at for c in catalog.courses).astimezone(BEIJING)
    target = (closes_at + EXAM_AFTER_CLOSE).astimezone(BEIJING).date()
    return catalog.shifted(timedelta(days=(target - first.date()).days))


def _exam(demo: DemoSchool, catalog: exam_catalog.Catalog | None) -> ExamSettings | None:
    if demo.exam is None:
        return None
    opens = closes = None
    if demo.exam.ticket_days_before is not None and catalog is not None:
        first = min(c.starts_at for c in catalog.courses).astimezone(BEIJING)
        day = first.replace(hour=0, minute=0, second=0, microsecond=0)
        before_open, before_close = demo.exam.ticket_days_before
        opens = day - timedelta(days=before_open)
        closes = day - timedelta(days=before_close - 1, seconds=1)
    return ExamSettings(
        selection=demo.exam.selection,
        room_size=demo.exam.room_size,
        ticket_opens_at=opens,
        ticket_closes_at=closes,
        ticket_notice=demo.exam.ticket_notice,
        ticket_pledge=demo.exam.ticket_pledge,
    )


def _batch(
    demo: DemoSchool,
    name: str,
    opens_at: datetime,
    closes_at: datetime,
    catalog: exam_catalog.Catalog | None = None,
) -> BatchData:
    pay_opens_at = pay_closes_at = None
    if demo.pay_window is not None:
        pay_opens_at = opens_at + demo.pay_window.opens_after
        after = demo.pay_window.closes_after
        pay_closes_at = closes_at if after is None else opens_at + after
    title, note = demo.receipt or (None, None)
    return BatchData(
        name=name,
        education=demo.education,
        opens_at=opens_at,
        closes_at=closes_at,
        fee_fen=demo.fee_fen,
        photo_spec=demo.spec,
        receipt_title=title,
        receipt_note=note,
        flow=demo.flow,
        verify_identity=demo.verify_identity,
        pay_opens_at=pay_opens_at,
        pay_closes_at=pay_closes_at,
        lock_on=demo.lock_on,
        fee_per_attempt=demo.fee_per_attempt,
        notice=demo.notice,
        pledge=demo.pledge,
        signature=demo.signature,
        after_approval=demo.after_approval,
        exam=_exam(demo, catalog),
    )


def load_schools(session: Session, now: datetime | None = None) -> list[str]:
    """Upsert the demo schools and batches; returns a line per batch for the console."""
    # Batches open at 00:00 and close at 23:59:59, Beijing time, as schools announce them.
    now = (now or datetime.now(UTC)).astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    lines = []
    for demo in SCHOOLS:
        school = schools.upsert_school(
            session, demo.code, demo.name, demo.province, demo.city, contact=demo.contact
        )
        closes_at = now + CLOSES_IN - timedelta(seconds=1)
        catalog = _catalog(demo, closes_at)
        open_batch = _batch(
            demo, demo.batch_title.format(term=_term(now)), now - OPENED_AGO, closes_at, catalog
        )
        half_year_ago = now - timedelta(days=183)
        closed_batch = _batch(
            demo,
            demo.batch_title.format(term=_term(half_year_ago)),
            half_year_ago - timedelta(days=60),
            now - timedelta(days=59, seconds=1),
        )
        for data in (open_batch, closed_batch):
            batch = schools.upsert_batch(session, school, data)
            # Only the open batch has a catalogue; one candidates registered against stays as it is.
            if catalog is not None and data is open_batch and not exam_catalog.in_use(session, batch.id):
                exam_catalog.replace_catalog(session, batch, catalog)
        fee = f"{demo.fee_fen / 100:g} 元" if demo.fee_fen else "免费"
        if demo.exam is not None and demo.exam.selection:
            fee = f"考试费每门 {fee}（报考课程）"
        workflow = f"{FLOW_LABELS[demo.flow]} {fee}"
        exams = ""
        if catalog is not None:
            exams = f"，考试目录：考点 {len(catalog.sites)} 个、课程 {len(catalog.courses)} 门"
        lines.append(
            f"  {demo.name}（{demo.code}）：{open_batch.name}，{workflow}，{demo.spec.describe()}{exams}"
        )
    session.commit()
    return lines


def load(
    session: Session,
    admin_password: str,
    *,
    push_menu: bool,
    forms: bool = True,
    now: datetime | None = None,
) -> list[str]:
    """Upsert the demo schools and batches and the admin account; returns the console lines.

    With `push_menu` (the sandbox, whose menus live in the server's memory) the menu push is queued
    for the worker, so it reaches the sandbox once the server runs. With `forms` (the default) the
    batches also get their example forms and document slots; without, they ask for the photo only (a
    form an earlier load attached is taken off again).
    """
    lines = load_schools(session, now)
    lines += load_forms(session, now) if forms else clear_forms(session, now)
    staff.ensure(session, ADMIN_USERNAME, admin_password, StaffRole.ADMIN)
    if push_menu:
        outbox.enqueue(session, JobKind.PUSH_MENU, {})
        session.commit()
    return lines


# One example definition per demo school, from its manual (docs/batch-forms.md).
FORMS_DIR = Path(__file__).resolve().parents[1] / "data" / "batch_forms"


def load_forms(session: Session, now: datetime | None = None) -> list[str]:
    """Give every demo school's batches its example form and document slots; commits. Only the full
    demo load does this: tests that link students to demo batches (load_schools) keep photo-only
    batches."""
    now = now or datetime.now(UTC)
    lines = []
    for demo in SCHOOLS:
        path = FORMS_DIR / f"{demo.code}.yaml"
        if not path.exists():
            continue
        definition = batch_forms.parse(path.read_bytes())
        batches = session.scalars(select(Batch).join(School).where(School.code == demo.code))
        for batch in batches:
            # The file names one term's batch; the demo's batch names follow the load date.
            applications.attach(session, batch, definition.model_copy(update={"batch": batch.name}), now)
        sizes = f"报名信息 {len(definition.fields())} 项，材料 {len(definition.documents)} 项"
        lines.append(f"  {demo.name}：{sizes}")
    session.commit()
    return lines


def clear_forms(session: Session, now: datetime | None = None) -> list[str]:
    """Take any form off the demo schools' batches (`flask demo load --without-forms`: the photo-only
    journey, also after a load with forms); commits."""
    now = now or datetime.now(UTC)
    codes = [demo.code for demo in SCHOOLS]
    batches = session.scalars(
        select(Batch).join(School).where(School.code.in_(codes), Batch.has_form | Batch.has_documents)
    )
    for batch in batches:
        applications.attach(session, batch, None, now)
    session.commit()
    return ["  不使用示例报名表：各批次只需上传照片"]
