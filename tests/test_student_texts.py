"""What students read: chat replies link with words, help states the fee, the home page shows the
checklist of where they stand (and promises nothing about changing things), and the status and pay
pages show the photo concerned."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from wechat_posts import WeChat, event_message, text_message

from app.extensions import db
from app.services import steps, wording
from app.services.enrollments import BatchFee
from app.services.progress import Progress
from app.services.steps import Step
from models import Flow, SubmissionStatus
from tests.factories import add_user, jpeg, make_batch, make_student, sign_in_student

BASE = "https://photo.example.edu.cn"
ANCHOR = re.compile(r'<a href="[^"]*">[^<]+</a>')
WHEN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _replies() -> list[str]:
    waiting = Progress("photo", "上传照片", "第三步：请按要求上传证件照。", "/h5/photo")
    newcomer = steps.from_row(None, WHEN)
    return [
        wording.welcome(BASE, newcomer),
        wording.welcome_back(BASE, newcomer),
        wording.school_scanned(BASE, "湖南师范大学"),
        wording.help_text(BASE),
        wording.help_text(BASE, BatchFee(200, "成人教育 2026 年下学位申请", Flow.PAY_FIRST, None, None)),
        wording.fee_answer(BASE, BatchFee(5000, "2026 年报名", Flow.REVIEW_FIRST, WHEN, WHEN)),
        wording.fee_answer(BASE, BatchFee(0, "学位申请", Flow.FREE, None, None)),
        wording.bind(BASE),
        wording.progress(BASE, waiting),
        wording.image_received(BASE),
        wording.image_needs(BASE, waiting),
        wording.photo_passed(BASE, 480, 640, 150_000, "jpeg"),
        wording.photo_failed(BASE, ["背景不是浅蓝色", "头部太小"]),
        wording.photo_refused(BASE, "不是图片"),
        wording.photo_cannot_upload(BASE, "请先关联学校", "/h5/school"),
        wording.VERIFY_FAILED.format(
            reason="姓名与证件号码不一致", url=wording.bind_url(BASE), again=wording.VERIFY_FAILED_PAY_AGAIN
        ),
        wording.result_text(
            SubmissionStatus.RETURNED,
            "湖南师范大学",
            "批次",
            "背景不符",
            WHEN,
            f"{BASE}/h5/status",
            "请按原因修改，在批次截止前重新提交（需重新缴费核验）。",
        ),
    ]


@pytest.mark.parametrize("reply", _replies())
def test_replies_link_with_words_never_a_bare_url(reply: str) -> None:
    assert ANCHOR.search(reply), reply
    assert BASE not in ANCHOR.sub("", reply), f"a bare URL outside a link: {reply}"
    assert len(reply.encode()) <= 2048


def test_link_texts_name_the_page() -> None:
    assert f'<a href="{BASE}/h5/bind">实名绑定</a>' in wording.welcome(BASE, steps.from_row(None, WHEN))
    paying = (
        Step("photo", "上传照片", "done", "/h5/photo"),
        Step("pay", "缴费核验", "current", "/h5/pay/12", "请完成缴费。"),
    )
    assert f'→ <a href="{BASE}/h5/pay/12">缴费核验</a>' in wording.progress(
        BASE, Progress("pay", "缴费核验", "请完成缴费。", "/h5/pay/12", paying)
    )
    assert (
        wording.link('https://x/?a="1"&b=<2>', "看")
        == '<a href="https://x/?a=&quot;1&quot;&amp;b=&lt;2&gt;">看</a>'
    )


@pytest.fixture
def say(client: FlaskClient, app: Flask) -> Any:
    wx = WeChat.for_app(app)

    def send(xml: str) -> str:
        signed = wx.post(xml)
        reply = wx.reply_of(client.post(signed.path, data=signed.body, content_type="text/xml").data)
        assert reply is not None
        return str(reply["Content"])

    return send


def test_help_states_the_fee_of_the_students_batch(app: Flask, say: Any) -> None:
    with app.app_context():
        add_user("o-new")
        db.session.commit()
        make_student(make_batch(), SubmissionStatus.PENDING_REVIEW, openid="o-linked")
    general = say(text_message("o-new", "帮助"))
    assert wording.FEE_GENERAL in general
    linked = say(text_message("o-linked", "帮助"))
    assert "你所在批次「成人教育 10542 批次」的核验费为 2 元" in linked
    assert wording.FEE_GENERAL not in linked
    assert "成人教育 10542 批次」的核验费为 2 元" in say(event_message("o-linked", "CLICK", "HELP"))


# --- the pages --------------------------------------------------------------------------------


def test_home_page_before_anything_shows_the_checklist(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        user = add_user("o-fresh")
        db.session.commit()
        user_id = user.id
    sign_in_student(app, client, user_id)
    html = client.get("/h5/").get_data(as_text=True)
    assert "当前进度：实名绑定" in html and 'data-step="bind" data-status="current"' in html
    assert "随时回来修改" not in html
    assert 'aria-current="step"' in html and 'data-status="done"' not in html


def test_home_page_after_payment_shows_what_is_done(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        student = make_student(make_batch(), SubmissionStatus.PENDING_REVIEW)
    sign_in_student(app, client, student.user_id)
    html = client.get("/h5/").get_data(as_text=True)
    assert "当前进度：未审核" in html and 'data-testid="step-go">查看详情<' in html
    assert "随时回来修改" not in html
    # bind, school, photo, pay, verify done; the review is current
    assert html.count('data-status="done"') == 5
    assert 'data-step="review" data-status="current"' in html


def test_status_and_pay_pages_show_the_photo_concerned(app: Flask, client: FlaskClient) -> None:
    photo = jpeg((30, 90, 200))
    with app.app_context():
        waiting = make_student(make_batch(), SubmissionStatus.AWAITING_PAYMENT, photo_bytes=photo)
    sign_in_student(app, client, waiting.user_id)
    for path, testid in ((f"/h5/pay/{waiting.submission_id}", "pay-photo"), ("/h5/status", "status-photo")):
        html = client.get(path).get_data(as_text=True)
        found = re.search(rf'src="(/media/photos/[^"]+)"[^>]*data-testid="{testid}"', html)
        assert found, (path, html[:2000])
        served = client.get(found.group(1))
        assert served.status_code == 200 and served.data == photo


@pytest.mark.parametrize("question", ["怎么交费", "缴费", "多少钱", "费用", " 如何缴费 "])
def test_fee_questions_get_the_fee_and_how_to_pay(app: Flask, say: Any, question: str) -> None:
    with app.app_context():
        make_student(make_batch(), SubmissionStatus.PENDING_REVIEW, openid="o-linked")
    linked = say(text_message("o-linked", question))
    assert "核验费为 2 元" in linked and "开始核验" in linked and wording.MESSAGE_KEPT not in linked
    assert wording.FEE_GENERAL in say(text_message("o-stranger", question))


@pytest.mark.parametrize(
    ("flow", "fee_fen", "again"),
    [(Flow.PAY_FIRST, 200, True), (Flow.REVIEW_FIRST, 5000, False), (Flow.FREE, 0, False)],
)
def test_a_returned_student_is_told_to_pay_again_only_where_each_attempt_pays(
    app: Flask, client: FlaskClient, flow: Flow, fee_fen: int, again: bool
) -> None:
    with app.app_context():
        returned = make_student(
            make_batch(flow=flow, fee_fen=fee_fen), SubmissionStatus.RETURNED, reason="人像不清晰"
        )
    sign_in_student(app, client, returned.user_id)
    photo = client.get("/h5/photo").get_data(as_text=True)
    found = re.search(r'<p id="rejection-next">([^<]+)</p>', photo)
    assert found, photo[:3000]
    assert ("缴费" in found.group(1)) is again, found.group(1)
    assert ("开始核验" if flow == Flow.PAY_FIRST else "提交审核") in found.group(1)
