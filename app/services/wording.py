"""Every word the account says: chat replies, custom messages and template pushes, in one place.

Handlers, services and jobs all import this module, so a change of wording is made here once and
the rest of the code only chooses which text to send. Links are `<a href>` with words a student
reads (实名绑定, 上传照片), not bare URLs: WeChat shows them as tappable text in text replies and
custom messages. Keep texts short — a text message is limited to 2048 bytes, tags included.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from app.services.localtime import BEIJING, stored_utc
from models.school import Batch, Flow, LockOn
from models.submission import SubmissionStatus

if TYPE_CHECKING:  # types only: the wording depends on no service at run time
    from collections.abc import Sequence

    from app.services.enrollments import BatchFee
    from app.services.progress import Progress
    from app.services.schools import LinkedSchool
    from app.services.steps import Step
    from app.services.users import TodayStats


def yuan(fen: int) -> str:
    """An amount in fen as students read it, the way the schools' manuals write fees: "2 元", "3.50 元"."""
    whole, rest = divmod(fen, 100)
    return f"{whole} 元" if rest == 0 else f"{whole}.{rest:02d} 元"


def bind_url(base_url: str) -> str:
    return f"{base_url}/h5/bind"


def photo_url(base_url: str) -> str:
    return f"{base_url}/h5/photo"


def link(url: str, text: str) -> str:
    """A tappable link in a WeChat text message (text replies and custom messages render <a href>)."""
    return f'<a href="{escape(url, quote=True)}">{escape(text, quote=False)}</a>'


# The student pages by path, named as the menu and the pages name them.
PAGE_NAMES = (
    ("/h5/bind", "实名绑定"),
    ("/h5/school", "关联学校"),
    ("/h5/photo", "上传照片"),
    ("/h5/pay/", "缴费核验"),
    ("/h5/status", "审核结果"),
    ("/h5/receipt", "审核回执单"),
    ("/h5/ticket", "准考证"),
    ("/h5/me", "我的"),
)


def page_link(base_url: str, path: str, text: str | None = None) -> str:
    """A link to a student page, with the page's name as its text unless `text` is given."""
    name = text or next((n for prefix, n in PAGE_NAMES if path.startswith(prefix)), "打开页面")
    return link(f"{base_url}{path}", name)


STEPS = (
    "办理流程：实名绑定 → 关联学校 → 上传照片 → 按学校批次的要求提交审核、缴费（各校不同，"
    "关联学校后回复“进度”查看你的办理清单）。"
)


def welcome(base_url: str, steps: Sequence[Step]) -> str:
    return (
        "欢迎关注！在这里可以在线完成学历证件照的采集、核验和审核。\n"
        f"办理清单：\n{checklist(base_url, steps)}\n"
        "回复“帮助”查看更多说明。"
    )


def welcome_back(base_url: str, steps: Sequence[Step]) -> str:
    return (
        "欢迎回来！您之前的资料都还在。\n"
        f"办理清单：\n{checklist(base_url, steps)}\n"
        "回复“进度”查看当前办理进度。"
    )


def scene_recorded(scene: str) -> str:
    if scene.startswith("school:"):
        return "已记录您扫描的学校二维码，关联学校时将为您预先选好该学校。"
    return "已记录您扫码的来源。"


def school_url(base_url: str) -> str:
    return f"{base_url}/h5/school"


def school_scanned(base_url: str, school_name: str) -> str:
    # Per-school QR codes (flask schools qrcode); /h5/school pre-selects the school.
    return (
        f"您扫描的是「{school_name}」的二维码，关联学校时将为您预先选好这所学校："
        f"{page_link(base_url, '/h5/school')}"
    )


FEE_GENERAL = "核验费由学校按批次确定，关联学校后在缴费页面显示，缴费后自动核验身份信息。"


def fee_line(fee: BatchFee | None) -> str:
    """What the help says about money: the student's own batch's fee, as its flow takes it."""
    if fee is None:
        return FEE_GENERAL
    if fee.flow == Flow.FREE:
        return f"你所在批次「{fee.batch_name}」不收取任何费用。"
    if fee.flow == Flow.REVIEW_FIRST:
        when = (
            f"（缴费时间为{window_text(fee.pay_opens_at, fee.pay_closes_at)}）"
            if fee.pay_opens_at is not None and fee.pay_closes_at is not None
            else ""
        )
        amount = "按报考课程计算（审核通过后选择课程）" if fee.exam_selection else yuan(fee.fee_fen)
        return (
            f"你所在批次「{fee.batch_name}」的费用为 {amount}，审核通过后再缴费{when}；审核未通过无需缴费。"
        )
    return f"你所在批次「{fee.batch_name}」的核验费为 {yuan(fee.fee_fen)}，照片通过检查后点「开始核验」支付。"


def help_text(base_url: str, fee: BatchFee | None = None) -> str:
    return (
        "使用帮助\n"
        f"{STEPS}\n"
        f"• {page_link(base_url, '/h5/bind')}：填写姓名和证件号码\n"
        f"• {page_link(base_url, '/h5/photo')}：自动检查尺寸、背景和人像\n"
        f"• 费用：{fee_line(fee)}\n"
        "• 回复“绑定”获取实名绑定链接\n"
        "• 回复“进度”或“查询”查看办理进度\n"
        "• 菜单“审核结果”可随时查看审核进度\n"
        "• 菜单“联系客服”获取人工帮助"
    )


def fee_answer(base_url: str, fee: BatchFee | None = None) -> str:
    """怎么交费, 费用, 多少钱 …: how much, and how it is paid."""
    photo_page = page_link(base_url, "/h5/photo", "照片页面")
    if fee is not None and fee.flow == Flow.FREE:
        return f"{fee_line(fee)}\n照片通过检查后，在{photo_page}点击「提交审核」即可。"
    if fee is not None and fee.flow == Flow.REVIEW_FIRST:
        return (
            f"{fee_line(fee)}\n缴费方式：审核通过后，公众号会通知你，并附缴费链接；"
            f"在{page_link(base_url, '/h5/status', '审核结果页面')}也可以缴费，用微信支付。"
        )
    return (
        f"{fee_line(fee)}\n"
        f"缴费方式：照片通过检查后，在{photo_page}点击「开始核验」，"
        "用微信支付；缴费后自动核验身份信息，通过后进入人工审核。"
    )


def bind(base_url: str) -> str:
    return (
        f"请点击{page_link(base_url, '/h5/bind')}完成实名绑定。\n"
        "需要填写证件类型、姓名和证件号码，请确保与报名信息一致。"
    )


def progress(base_url: str, now: Progress) -> str:
    """当前进度 and the checklist: the same answer as the 我的 page (app/services/progress.py)."""
    lines = [
        f"当前进度：{now.title}",
        now.message,
        "办理清单：",
        checklist(base_url, now.checklist, hints=False),
    ]
    if not any(step.status == "current" for step in now.checklist):
        # Nothing to do now (a result, or held by a window): the page shows the details.
        lines.append(f"查看详情：{page_link(base_url, now.path)}")
    return "\n".join(lines)


# -- the student's checklist (app/services/steps.py) -----------------------------------------------

STEP_LABELS = {
    "bind": "实名绑定",
    "school": "关联学校",
    "notice": "阅读须知",
    "form": "填写报名信息",
    "documents": "上传材料",
    "photo": "上传照片",
    "submit": "提交审核",
    "pay": "缴费核验",
    "pay_review_first": "缴费",
    "verify": "身份核验",
    "review": "审核",
    "exam": "报考",
    "confirm": "确认并签名",
    "confirm_plain": "确认信息",
    "after": "通过后",
    "ticket": "打印准考证",
}
# The H5 page of each step; pay and confirm name the attempt once there is one.
STEP_URLS = {
    "bind": "/h5/bind",
    "school": "/h5/school",
    "notice": "/h5/notice",
    "form": "/h5/form",
    "documents": "/h5/documents",
    "photo": "/h5/photo",
    "submit": "/h5/photo",
    "pay": "/h5/photo",
    "verify": "/h5/status",
    "review": "/h5/status",
    "exam": "/h5/registration",
    "confirm": "/h5/status",
    "after": "/h5/status",
    "ticket": "/h5/ticket",
}
STEP_HINTS = {
    "bind": "请填写姓名和证件号码，完成实名绑定。",
    "school": "请选择你的学校和批次。",
    "notice": "请阅读本批次的报名须知并确认。",
    "form": "请按学校要求填写报名信息，带 * 的为必填项。",
    "documents": "请按学校要求上传身份证、毕业证等材料。",
    "photo": "请按批次要求上传证件照。",
    "submit": "照片已通过检查，请在照片页面点击「提交审核」。",
    "pay": "照片已通过检查，请在照片页面点击「开始核验」并缴费。",
    "verify": "正在核验身份信息，一般几秒钟内完成，请稍后刷新查看。",
    "confirm": "审核已通过，请核对信息并确认；确认后无法再修改信息。",
    "exam": "审核已通过，请选择考点、报考专业和课程，提交后缴费。",
}
STEP_PAY_NOW = "请完成缴费；二维码过期可在页面重新获取。"
STEP_PAY_COVERED = "本批次已缴费，重新提交无需再缴费，请在照片页面点击「开始核验」。"
STEP_VOID = "逾期未缴费，报名无效。"
STEP_SCHOOL_FROZEN = "学校关联已锁定，不能更换批次；如有疑问请联系学校。"
# Marks of the chat checklist: done, current, to do (and locked).
STEP_MARKS = {"done": "✓", "current": "→", "todo": "○", "locked": "○"}


def window_text(start: datetime, end: datetime) -> str:
    """A window as the schools' manuals write it: "10月15日至10月20日20:00" (Beijing time)."""
    first, last = start.astimezone(BEIJING), end.astimezone(BEIJING)
    at = "" if (first.hour, first.minute) == (0, 0) else f"{first:%H:%M}"
    opens = f"{first.month}月{first.day}日{at}"
    return f"{opens}至{last.month}月{last.day}日{last:%H:%M}"


def pay_window(start: datetime, end: datetime) -> str:
    return f"缴费时间为{window_text(start, end)}。"


def step_pay_window(start: datetime, end: datetime, now: datetime) -> str:
    if now < start:
        return f"缴费时间为{window_text(start, end)}，届时再来缴费。"
    return f"缴费时间为{window_text(start, end)}，已截止。"


def step_sign_up_closed(batch: str, opens_at: datetime, closes_at: datetime, now: datetime) -> str:
    if now < opens_at:
        return f"「{batch}」将于 {_when(opens_at)} 开放。"
    return f"「{batch}」已于 {_when(closes_at)} 截止。"


def step_relink(closed: str, not_yet_open: bool) -> str:
    return closed if not_yet_open else f"{closed}如有新的批次，请重新关联。"


def step_photo(batch: str) -> str:
    return f"请按「{batch}」的要求上传证件照。"


def step_verify_failed(reason: str) -> str:
    return f"身份核验未通过：{reason or '姓名与证件号码不一致'}，请修改实名信息后重新提交。"


def step_returned(reason: str) -> str:
    because = f"：{reason}" if reason else ""
    return f"照片被驳回{because}，请重新上传后在截止前重新提交。"


def step_fix_items(reason: str) -> str:
    """After a 驳回 that named items and kept the photo: `reason` starts 需修改：…"""
    return (
        f"审核老师退回了部分项目（{reason}）。请在「填写报名信息」「上传材料」中修改标红的项目，"
        "照片不用重新上传，改好后在照片页面重新提交。"
    )


def step_again(status: SubmissionStatus) -> str:
    was = "已退款" if status == SubmissionStatus.REFUNDED else "因未缴费已取消"
    return f"上次提交{was}，请在照片页面重新提交。"


def step_review(days_min: int | None, days_max: int | None, in_review: bool) -> str:
    state = "正在审核" if in_review else "等待审核"
    return f"照片已提交审核（{state}），一般需要 {days_min}–{days_max} 天，结果会通过公众号通知你。"


def step_refused(reason: str) -> str:
    because = f"：{reason}" if reason else ""
    return f"审核不通过{because}，这是最终结果。"


def checklist(base_url: str, steps: Sequence[Step], *, hints: bool = True) -> str:
    """The checklist as chat lines: ✓ done, → current (a link to it, and its hint), ○ to do."""
    lines = []
    for step in steps:
        mark = STEP_MARKS[step.status]
        if step.status == "current":
            said = f"：{step.hint}" if hints and step.hint else ""
            lines.append(f"{mark} {link(f'{base_url}{step.url}', step.label)}{said}")
        elif step.status == "locked" and step.hint:
            lines.append(f"{mark} {step.label}（{step.hint.rstrip('。')}）")
        else:
            lines.append(f"{mark} {step.label}")
    return "\n".join(lines)


OFFICE_HOURS = "工作时间（周一至周五 9:00–17:30）"


def _school_contact(school: LinkedSchool | None) -> str:
    """The linked school's phone and e-mail as lines ("" when there is neither)."""
    if school is None:
        return ""
    lines = []
    if school.contact.phone:
        lines.append(f"{school.school_name}电话：{school.contact.phone}")
    if school.contact.email:
        lines.append(f"{school.school_name}邮箱：{school.contact.email}")
    return "\n".join(lines) + "\n" if lines else ""


def contact(school: LinkedSchool | None) -> str:
    """联系客服 (the CONTACT menu click): leave a message here, or call or write to the school."""
    return (
        "联系客服\n"
        "请直接在本对话框留言说明问题（请勿发送完整证件号码），"
        f"客服会在{OFFICE_HOURS}内回复，回复会发到这里。\n"
        f"{_school_contact(school)}"
        "照片审核一般需要 7–10 个工作日，请耐心等待结果通知。"
    )


NOT_OPERATOR = "抱歉，该功能仅限公众号运营人员使用。如需帮助请回复“帮助”。"


def today_stats(stats: TodayStats) -> str:
    return (
        f"今日统计（{stats.day}）\n"
        f"新增关注：{stats.new_followers}\n"
        f"取消关注：{stats.unfollows}\n"
        f"当前关注总数：{stats.total_followers}\n"
        f"今日提交（已缴费）：{stats.submissions}\n"
        f"今日审结：通过 {stats.approved}，驳回 {stats.returned}，不通过 {stats.refused}\n"
        f"待审核：{stats.waiting}"
    )


# A text no keyword matches is kept for staff (app/services/inbox.py): say a person will answer.
MESSAGE_KEPT = (
    f"已收到您的留言，客服会在{OFFICE_HOURS}内人工回复，回复会发到这里。\n"
    "回复“进度”查看办理进度，回复“帮助”查看使用说明，回复“费用”了解核验费。"
)


def staff_reply(text: str) -> str:
    """A staff member's answer to a student's message, as a custom message."""
    return f"【客服回复】\n{text}"


def image_received(base_url: str) -> str:
    """The passive reply to a picture being checked (the verdict follows as a custom message)."""
    return (
        "已收到您的图片，正在检查，结果稍后发给您……\n"
        f"也可以在{page_link(base_url, '/h5/photo', '照片上传页面')}上传，并查看自动处理后的照片。"
    )


def image_needs(base_url: str, now: Progress) -> str:
    """A picture from someone who cannot upload yet (not bound, no school, batch closed)."""
    return (
        "已收到您的图片。\n"
        f"{now.message}\n"
        f"请点击完成：{page_link(base_url, now.path)}\n"
        "完成后，直接在这里发送照片即可自动检查，"
        f"也可以在{page_link(base_url, '/h5/photo', '照片页面')}上传。"
    )


def photo_passed(
    base_url: str, width: int | None, height: int | None, size: int | None, fmt: str | None
) -> str:
    made = ""
    if width and height and size:
        kind = "PNG" if fmt == "png" else "JPG"
        made = f"已自动处理为 {width}×{height} 像素、{size / 1024:.0f} KB 的 {kind} 照片。\n"
    return (
        "照片检查通过 ✅\n"
        f"{made}"
        f"下一步：在{page_link(base_url, '/h5/photo', '照片页面')}点击「开始核验」，缴费后自动核验身份信息。"
    )


# A custom text is limited to 2048 bytes: a few failed checks, then a pointer to the page.
MAX_LISTED_FAILURES = 4


def photo_failed(base_url: str, failures: list[str]) -> str:
    listed = "\n".join(f"• {message}" for message in failures[:MAX_LISTED_FAILURES])
    more = (
        f"\n（另有 {len(failures) - MAX_LISTED_FAILURES} 项，详见页面）"
        if len(failures) > MAX_LISTED_FAILURES
        else ""
    )
    return (
        "照片未通过检查 ❌\n"
        f"{listed}{more}\n"
        "请按提示重新拍摄后再发送（不要美颜或翻拍）。\n"
        f"{page_link(base_url, '/h5/photo', '查看全部检查结果')}，也可以在页面上传。"
    )


def photo_refused(base_url: str, message: str) -> str:
    """The picture could not be checked at all (not an image, too large, expired media)."""
    return (
        f"这张图片无法检查：{message}\n"
        f"请重新发送照片，或在{page_link(base_url, '/h5/photo', '照片页面')}上传。"
    )


def photo_cannot_upload(base_url: str, message: str, path: str) -> str:
    """Binding or the school link went missing between sending and checking."""
    return f"已收到您的图片，但暂时不能检查：{message}\n请点击完成：{page_link(base_url, path)}"


# -- a photo that may not be used again ------------------------------------------------------------


def _when(moment: datetime) -> str:
    local = moment.astimezone(BEIJING)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def duplicate_of_failed(uploaded_at: datetime, failed_labels: list[str]) -> str:
    """The same picture as an earlier upload that failed the automatic checks."""
    which = f"（{'、'.join(dict.fromkeys(failed_labels))}）" if failed_labels else ""
    return (
        f"这张照片与你 {_when(uploaded_at)} 上传的照片几乎相同，那张照片没有通过自动检查{which}。"
        "请按那次的提示重新拍摄一张新照片再上传；在旧照片上换底、修图或重新保存都不能通过。"
    )


def duplicate_of_reviewed(uploaded_at: datetime, status_label: str, reason: str | None) -> str:
    """The same picture as an earlier photo a reviewer returned (驳回) or refused (不通过)."""
    why = f"，原因：{reason}" if reason else ""
    return (
        f"这张照片与你 {_when(uploaded_at)} 上传的照片几乎相同，那张照片已被审核老师{status_label}{why}。"
        "请按审核意见重新拍摄一张新照片再上传；在旧照片上换底、修图或重新保存都不能再次提交。"
    )


def photo_rejected_by_review(status_label: str, reason: str | None) -> str:
    """开始核验 with a photo (or the same picture as one) a reviewer rejected."""
    why = f"（原因：{reason}）" if reason else ""
    return (
        f"这张照片已被审核老师{status_label}{why}，不能再次提交。"
        "请按审核意见重新拍摄并上传一张新照片，通过检查后再开始核验。"
    )


OTHER_MESSAGE = "抱歉，暂时无法处理这类消息。请发送文字，或回复“帮助”查看可用的功能。"


# -- photos sent in the chat ---------------------------------------------------------------------

MEDIA_EXPIRED = "图片已过期或无法下载"


# -- identity check after payment (人口库核验), refunds: str.format templates ------------------------

VERIFY_PASSED = (
    "身份核验通过，你的照片已进入人工审核，一般需要 {days} 天。审核结果会通过公众号通知你，"
    "也可以在「我的」页面查看。"
)
VERIFY_FAILED = '身份核验未通过：{reason}\n请<a href="{url}">修改实名信息</a>后重新提交{again}。'
# What a new attempt costs after a failed check: pay_first batches that charge per attempt only.
VERIFY_FAILED_PAY_AGAIN = "（需重新缴费核验）"
VERIFY_UNAVAILABLE = "抱歉，身份核验服务暂时不可用，本次提交已取消，请稍后重新提交。给你带来不便，敬请谅解。"
VERIFY_REFUNDED = (
    "抱歉，身份核验服务暂时不可用，本次核验费 {amount}已原路退回，请稍后重新提交。给你带来不便，敬请谅解。"
)
PAID_TO_REVIEW = (
    "缴费成功，你的照片已进入人工审核，一般需要 {days} 天。审核结果会通过公众号通知你，"
    "也可以在「我的」页面查看。"
)
MANUAL_REFUND = "你的本次核验费 {amount}已由管理员办理退款（{reason}），将原路退回，请留意微信支付通知。"


# -- the review result push -----------------------------------------------------------------------

RESULT_PHRASE = {
    SubmissionStatus.APPROVED: "审核通过",
    SubmissionStatus.APPROVED_UNPAID: "审核通过",
    SubmissionStatus.RETURNED: "审核驳回",
    SubmissionStatus.REFUSED: "审核不通过",
    SubmissionStatus.VOID: "报名无效",
}
# https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
# (类目模板 value limits: thing ≤ 20 characters, phrase ≤ 5, time ≤ 30)
THING_LIMIT = 20
PHRASE_LIMIT = 5


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def paid_after_approval(batch_name: str, after_approval: str | None) -> str:
    """review_first: the fee paid after approval completes the sign-up."""
    text = f"缴费成功，「{batch_name}」报名已完成。"
    return text + (f"\n下一步：{after_approval}" if after_approval else "可在「我的」页面查看。")


def pays_again(flow: str, fee_per_attempt: bool) -> str:
    """「（需重新缴费核验）」 where a new attempt pays its own fee (pay_first, fee per attempt); nothing in
    a free batch, a review_first one (it pays once, after approval) or one whose fee covers the batch."""
    return "（需重新缴费核验）" if flow == Flow.PAY_FIRST and fee_per_attempt else ""


def pay_window_refusal(batch: Batch, at: datetime) -> str:
    """Why the fee cannot be paid at `at`, naming the window (武汉轻工大学: 缴费时间为…)."""
    if batch.flow != Flow.REVIEW_FIRST:
        return f"「{batch.name}」的缴费时间为{window_text(batch.opens_at, batch.closes_at)}，现在不能缴费。"
    if batch.pay_opens_at is None or batch.pay_closes_at is None:
        return f"「{batch.name}」的缴费时间尚未公布，请留意学校通知。"
    when = window_text(batch.pay_opens_at, batch.pay_closes_at)
    if at < stored_utc(batch.pay_opens_at):
        return f"缴费时间为{when}，届时再来缴费。"
    return f"缴费时间为{when}，已截止。"


def result_next_step(status: SubmissionStatus, batch: Batch) -> str:
    """What the student does after a decision, as the batch's flow has it."""
    if status == SubmissionStatus.APPROVED_UNPAID:
        when = _pay_window(batch)
        if batch.exam_selection:
            return f"请选择考点、专业和报考课程，并在{when}内缴纳考试费，逾期未缴费报名无效。"
        return f"请在{when}内缴费 {yuan(batch.fee_fen)}，逾期未缴费报名无效。"
    if status == SubmissionStatus.APPROVED:
        if batch.lock_on == LockOn.CONFIRM:
            return "请在「我的」页面确认信息并签名，确认后即可打印回执单；确认后信息不能再修改。"
        if batch.after_approval:
            return batch.after_approval
        return "照片已确认，可在「审核结果」页面打印回执单，无需再操作。"
    if status == SubmissionStatus.RETURNED:
        return f"请按原因修改，在批次截止前重新提交{pays_again(batch.flow, batch.fee_per_attempt)}。"
    if status == SubmissionStatus.VOID:
        return "缴费时间已截止，本次报名无效。如有疑问请联系学校。"
    return "这是最终结果，不能再次提交。"


def result_note(status: SubmissionStatus, batch: Batch) -> str:
    """The next step as the template's 说明 shows it (clipped at THING_LIMIT): after 通过 awaiting the
    fee, the pay deadline itself, which the full sentence would push past the clip."""
    if status == SubmissionStatus.APPROVED_UNPAID and batch.pay_closes_at is not None:
        return f"请于{_deadline(batch.pay_closes_at)}前缴费"
    return result_next_step(status, batch)


def result_path(status: SubmissionStatus, batch: Batch, submission_id: int) -> str:
    """The H5 page a result push opens: where the next step is done."""
    if status == SubmissionStatus.APPROVED_UNPAID:
        # With course selection the courses come first (报考); the pay page sends there too.
        return "/h5/registration" if batch.exam_selection else f"/h5/pay/{submission_id}"
    if status == SubmissionStatus.APPROVED and batch.lock_on == LockOn.CONFIRM:
        return f"/h5/confirm/{submission_id}"
    return "/h5/status"


def _pay_window(batch: Batch) -> str:
    if batch.pay_opens_at is None or batch.pay_closes_at is None:
        return "学校规定的缴费时间"
    return f"缴费时间（{window_text(batch.pay_opens_at, batch.pay_closes_at)}）"


def result_template_data(
    status: SubmissionStatus, school: str, reason: str | None, at: datetime, next_step: str
) -> dict[str, Any]:
    """The 审核结果通知 fields: result, school, reason (or the next step), time."""
    note = reason if status in (SubmissionStatus.RETURNED, SubmissionStatus.REFUSED) and reason else next_step
    return {
        "phrase1": {"value": clip(RESULT_PHRASE[status], PHRASE_LIMIT)},
        "thing2": {"value": clip(school, THING_LIMIT)},
        "thing3": {"value": clip(note, THING_LIMIT)},
        "time4": {"value": at.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")},
    }


REOPENED_PHRASE = "重新审核"
REOPENED_NOTE = "此前的审核结果已撤回，将重新审核，结果另行通知。"


def reopened_template_data(school: str, at: datetime) -> dict[str, Any]:
    """The 审核结果通知 fields when an admin withdrew a decision to review the photo again."""
    return {
        "phrase1": {"value": clip(REOPENED_PHRASE, PHRASE_LIMIT)},
        "thing2": {"value": clip(school, THING_LIMIT)},
        "thing3": {"value": clip("原审核结果已撤回，将重新审核", THING_LIMIT)},
        "time4": {"value": at.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")},
    }


def reopened_text(previous: SubmissionStatus, school: str, batch: str, at: datetime, url: str) -> str:
    """The custom-message form: which result was withdrawn and that a new one will follow."""
    return "\n".join(
        [
            f"【审核结果更正】你的照片此前的审核结果「{RESULT_PHRASE[previous]}」已由管理员撤回，将重新审核。",
            f"学校：{school}",
            f"批次：{batch}",
            f"下一步：{REOPENED_NOTE}无需重新缴费或提交。",
            f"时间：{at.astimezone(BEIJING).strftime('%Y-%m-%d %H:%M')}",
            f"查看详情：{url}",
        ]
    )


def result_text(
    status: SubmissionStatus,
    school: str,
    batch: str,
    reason: str | None,
    at: datetime,
    url: str,
    next_step: str,
) -> str:
    """The custom-message fallback: the same facts, unclipped, with the link."""
    lines = [
        f"【审核结果通知】{RESULT_PHRASE[status]}",
        f"学校：{school}",
        f"批次：{batch}",
    ]
    if reason and status in (SubmissionStatus.RETURNED, SubmissionStatus.REFUSED):
        lines.append(f"原因：{reason}")
    lines += [
        f"下一步：{next_step}",
        f"时间：{at.astimezone(BEIJING).strftime('%Y-%m-%d %H:%M')}",
        link(url, "去缴费" if status == SubmissionStatus.APPROVED_UNPAID else "查看详情"),
    ]
    return "\n".join(lines)


# -- reminders before a window closes (app/services/reminders.py) ---------------------------------


def _deadline(moment: datetime) -> str:
    local = moment.astimezone(BEIJING)
    return f"{local.month}月{local.day}日{local:%H:%M}"


def sign_up_reminder(base_url: str, batch: str, closes_at: datetime) -> str:
    return (
        f"【截止提醒】「{batch}」将于 {_deadline(closes_at)}（北京时间）截止提交，你还没有提交审核。"
        f"请在截止前完成：{page_link(base_url, '/h5/photo', '上传照片并提交')}"
    )


def pay_reminder(base_url: str, batch: str, pay_closes_at: datetime, submission_id: int) -> str:
    return (
        f"【缴费提醒】你的照片已审核通过，「{batch}」的缴费将于 {_deadline(pay_closes_at)}（北京时间）截止，"
        f"逾期未缴费报名无效。请点击{page_link(base_url, f'/h5/pay/{submission_id}', '缴费')}"
    )


def reminder_template_data(what: str, deadline: datetime, note: str) -> dict[str, Any]:
    """The 办理提醒 fields: the matter, its deadline (Beijing time), what to do."""
    return {
        "thing1": {"value": clip(what, THING_LIMIT)},
        "time2": {"value": deadline.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")},
        "thing3": {"value": clip(note, THING_LIMIT)},
    }


SIGN_UP_REMINDER_NOTE = "尚未提交审核，请在截止前提交"
PAY_REMINDER_NOTE = "审核已通过，逾期未缴费报名无效"


# -- exam tickets (准考证, app/services/tickets.py) ------------------------------------------------


def _day(moment: datetime) -> str:
    local = moment.astimezone(BEIJING)
    return f"{local.month}月{local.day}日"


def ticket_window(opens_at: datetime, closes_at: datetime) -> str:
    """ "准考证打印时间为11月1日至11月4日", as 武汉轻工大学's manual writes it (the close is exclusive:
    a window closing at 11月5日 00:00 ends on the 4th)."""
    last = stored_utc(closes_at) - timedelta(seconds=1)
    return f"准考证打印时间为{_day(stored_utc(opens_at))}至{_day(last)}"


def ticket_closed(opens_at: datetime, closes_at: datetime) -> str:
    return f"{ticket_window(opens_at, closes_at)}，打印时间已过；如需帮助请联系学校。"


TICKET_NO_SEAT = "考场和座位尚未安排，安排后即可打印准考证，届时公众号会通知你。"
TICKET_NONE = "审核通过并完成缴费的考生，在准考证打印时间内可以打印准考证。"
TICKET_STEP_NOW = "准考证已可打印，请打印后带上身份证原件参加考试。"
TICKET_REMINDER_NOTE = "准考证已可打印，请在截止前打印"


def ticket_ready(base_url: str, batch: str, opens_at: datetime, closes_at: datetime) -> str:
    return (
        f"【准考证】「{batch}」的准考证已可打印（{ticket_window(opens_at, closes_at)}）。"
        f"请点击{page_link(base_url, '/h5/ticket', '打印准考证')}，考试时请携带准考证和身份证原件。"
    )


# --- 报考 (app/services/exam_registrations.py) ---

# The fee of a batch with course selection before the courses are chosen.
EXAM_FEE_LABEL = "考试费（按报考课程计算）"


def course_cancelled(name: str, code: str, fee_fen: int, reason: str) -> str:
    """The exam office cancelled a course the student paid for: its fee goes back."""
    return (
        f"你报考的课程「{name}」（{code}）已取消考试，该课程考试费 {yuan(fee_fen)} 将原路退回，"
        f"一般 1–3 个工作日到账。原因：{reason}"
    )
