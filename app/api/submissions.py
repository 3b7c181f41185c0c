"""开始核验 and its payment: POST /api/v1/me/submissions, GET /api/v1/me/submissions/<id> (what the
pay page polls), POST …/<id>/refresh (查询缴费结果) and GET …/<id>/qr.png (the Native code).

An attempt is only ever reached through the signed-in student: another student's id answers 404,
exactly like one that does not exist. Refusals are 422 {"errors": [{"field", "message"}]}; WeChat
Pay being unreachable is 503 with the attempt kept (待缴费), so the page simply tries again.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import Any, Literal

import qrcode
from flask import Response, jsonify
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as SpecResponse

from app.api import bp
from app.api.me import REFUSALS
from app.api.openapi import ValidationErrors, spec
from app.api.schemas import ApiError
from app.auth.session import api_login_required, current_user
from app.errors import error_response
from app.extensions import db
from app.inputs import RowId
from app.integrations import pay_client, photo_storage
from app.integrations.wechat_pay import PayNotConfiguredError
from app.services import checkout, flows, pledges, submissions, wording
from app.services.checkout import Checkout, CheckoutUnavailableError
from app.services.exam_registrations import RegistrationError
from app.services.pledges import Pledge
from app.services.submissions import PayWindowError, SubmissionError, SubmissionInFlightError
from models import LockOn, User
from models.submission import STATUS_LABELS, PaymentOrder, Submission, SubmissionStatus

# The QR image changes with every order; the browser may keep one for a short while only.
QR_MAX_AGE = 30
# A signature's data URL: the PNG limit of app/services/pledges.py, base64 (4/3) and the prefix.
MAX_SIGNATURE_FIELD = pledges.MAX_SIGNATURE_BYTES * 4 // 3 + 64
SIGNATURE_PREFIX = "data:image/png;base64,"


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photo_id: RowId = Field(description="通过检查的照片 id（POST /api/v1/me/photos 的 id）")
    channel: Literal["jsapi", "native"] = Field(
        default="jsapi", description="jsapi：在微信内支付；native：微信外的浏览器，扫码支付"
    )
    pledge: bool = Field(default=False, description="已勾选批次的承诺（批次有承诺且在提交时作出时必填）")
    signature: str | None = Field(
        default=None,
        max_length=MAX_SIGNATURE_FIELD,
        description="手写签名：PNG 的 data URL（data:image/png;base64,…），批次要求签名时必填",
    )


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pledge: bool = Field(default=False, description="已勾选批次的承诺")
    signature: str | None = Field(
        default=None, max_length=MAX_SIGNATURE_FIELD, description="手写签名：PNG 的 data URL"
    )


class SubmissionQuery(BaseModel):
    renew: bool = Field(default=False, description="待缴费且订单已过期时，换一张新订单（新二维码）")
    channel: Literal["jsapi", "native"] | None = Field(
        default=None, description="renew 时使用的支付方式；默认沿用上一张订单的"
    )


class OrderOut(BaseModel):
    out_trade_no: str
    channel: str = Field(description="jsapi 或 native")
    amount_fen: int = Field(description="金额（分）", examples=[200])
    expires_at: datetime = Field(description="订单（二维码）失效时间，创建后 3 分钟")
    jsapi: dict[str, str] | None = Field(
        description="WeixinJSBridge.invoke('getBrandWCPayRequest', jsapi, cb) 的已签名参数；"
        "native 订单为 null"
    )
    code_url: str | None = Field(
        description="Native 支付链接（weixin://wxpay/bizpayurl?pr=…）；jsapi 订单为 null"
    )
    qr_url: str | None = Field(description="code_url 的二维码图片（PNG，仅本人可取）")


class VerificationOut(BaseModel):
    result: str = Field(description="match / mismatch / not_found")
    reason: str | None = Field(description="给学生看的说明")


class NextStepOut(BaseModel):
    title: str
    message: str
    path: str | None = Field(description="下一步的页面；null 表示等待即可")
    link_text: str | None = None


class SubmissionOut(BaseModel):
    id: int
    status: str = Field(
        description=(
            "awaiting_payment、verifying、pending_review、in_review、approved、returned、refused、"
            "verify_failed、refunded、cancelled、approved_unpaid（审核通过，待缴费）、void（逾期未缴费，报名无效）"
        )
    )
    status_label: str = Field(examples=["待缴费"])
    reason: str | None = Field(description="为什么在这个状态（身份核验失败、驳回的原因）")
    verification: VerificationOut | None = Field(description="身份核验结果；尚未核验时为 null")
    fee_fen: int
    fee_label: str = Field(examples=["2 元"])
    review_days: str = Field(examples=["7–10 天"])
    created_at: datetime
    paid_at: datetime | None
    order: OrderOut | None = Field(description="待缴费时当前可付的订单；其他状态为 null")
    pay_window: str | None = Field(
        default=None, description="审核通过后缴费的批次：缴费时间（如 10月15日至10月20日20:00）"
    )
    confirmed_at: datetime | None = Field(default=None, description="学生最终确认（并签名）的时间")
    next_step: NextStepOut


class ServiceUnavailableOut(BaseModel):
    error: dict[str, Any] = Field(description='{"code": 503, "message": "…"}')
    submission_id: int | None = Field(description="已保留的提交；页面可用它重试（GET …?renew=1）")


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> User:
    user = current_user()
    assert user is not None  # api_login_required ran first
    return user


def _owned(submission_id: int) -> Submission | None:
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.user_id != _user().id:
        return None
    return submission


def _not_found() -> tuple[Response | str, int]:
    return error_response(404, "没有找到这次提交。")


def _unavailable(
    exc: CheckoutUnavailableError | PayNotConfiguredError, submission_id: int | None
) -> Response:
    message = exc.message if isinstance(exc, CheckoutUnavailableError) else CheckoutUnavailableError.message
    response = jsonify(error={"code": 503, "message": message}, submission_id=submission_id)
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def next_step(submission: Submission) -> NextStepOut:
    """What the student does now, for each state (the submission states of models/submission.py)."""
    batch = submission.batch
    days = f"{batch.review_days_min}–{batch.review_days_max} 天"
    status = submission.status
    if status == SubmissionStatus.AWAITING_PAYMENT:
        return NextStepOut(
            title="待缴费",
            message=f"请支付技术服务费 {wording.yuan(batch.fee_fen)}，支付后系统将自动核验身份信息。",
            path=f"/h5/pay/{submission.id}",
            link_text="去支付",
        )
    if status == SubmissionStatus.VERIFYING:
        return NextStepOut(
            title="核验中…",
            message="正在与人口库核验身份信息，5–6 秒左右。如未显示结果，点击「刷新结果数据」。",
            path=None,
        )
    if status == SubmissionStatus.PENDING_REVIEW:
        return NextStepOut(
            title="未审核",
            message=f"{'身份核验通过，' if batch.verify_identity else ''}照片已进入人工审核，"
            f"一般需要 {days}。审核结果会通过公众号通知你。",
            path="/h5/me",
            link_text="查看我的办理进度",
        )
    if status == SubmissionStatus.IN_REVIEW:
        return NextStepOut(
            title="审核中", message="审核老师正在审核你的照片，请耐心等待通知。", path="/h5/me"
        )
    if status == SubmissionStatus.APPROVED_UNPAID:
        return NextStepOut(
            title="审核通过，待缴费",
            message=wording.result_next_step(status, batch),
            path=f"/h5/pay/{submission.id}",
            link_text="去缴费",
        )
    if status == SubmissionStatus.VOID:
        return NextStepOut(title="报名无效", message=wording.result_next_step(status, batch), path="/h5/me")
    if status == SubmissionStatus.APPROVED:
        if submission.confirmed_at is None and batch.lock_on == LockOn.CONFIRM:
            return NextStepOut(
                title="通过，待确认",
                message=wording.result_next_step(status, batch),
                path=f"/h5/confirm/{submission.id}",
                link_text="确认并签名",
            )
        return NextStepOut(title="通过", message="审核通过。", path="/h5/me", link_text="查看我的办理进度")
    if status == SubmissionStatus.RETURNED:
        return NextStepOut(
            title="驳回",
            message="请按驳回原因修改，在批次截止前重新上传照片并提交"
            f"{wording.pays_again(batch.flow, batch.fee_per_attempt)}。",
            path="/h5/photo",
            link_text="重新上传照片",
        )
    if status == SubmissionStatus.REFUSED:
        return NextStepOut(title="不通过", message="审核结果为「不通过」，这是最终结果。", path="/h5/me")
    if status == SubmissionStatus.VERIFY_FAILED:
        return NextStepOut(
            title="身份核验失败",
            message="请核对并修改实名信息（姓名、证件号码须与身份证一致），然后重新开始核验。"
            "每次核验都需重新缴纳技术服务费。",
            path="/h5/bind",
            link_text="修改实名信息",
        )
    if status == SubmissionStatus.REFUNDED:
        return NextStepOut(
            title="已退款",
            message="身份核验服务暂时不可用，本次费用已原路退回。请稍后重新开始核验。",
            path="/h5/photo",
            link_text="重新开始核验",
        )
    return NextStepOut(
        title="已取消",
        message="本次提交未完成支付，已取消。需要时可重新开始核验。",
        path="/h5/photo",
        link_text="重新开始核验",
    )


def _order_out(order: PaymentOrder, jsapi: dict[str, str] | None, code_url: str | None) -> OrderOut:
    qr_url = None
    if code_url is not None:
        qr_url = f"/api/v1/me/submissions/{order.submission_id}/qr.png?o={order.out_trade_no}"
    return OrderOut(
        out_trade_no=order.out_trade_no,
        channel=order.channel,
        amount_fen=order.amount_fen,
        expires_at=order.expires_at,
        jsapi=jsapi,
        code_url=code_url,
        qr_url=qr_url,
    )


def submission_out(submission: Submission, paying: Checkout | None = None) -> SubmissionOut:
    """The attempt as the student sees it. Without `paying`, the current order is described
    without calling WeChat Pay (JSAPI parameters are only re-signed, a local operation)."""
    order_out = None
    if flows.payable(submission.status):
        if paying is not None and paying.order is not None:
            order_out = _order_out(paying.order, paying.jsapi, paying.code_url)
        else:
            order = submissions.current_order(submission, _now())
            if order is not None and (order.prepay_id or order.code_url):
                jsapi = pay_client().jsapi_params(order.prepay_id) if order.prepay_id else None
                order_out = _order_out(order, jsapi, order.code_url)
    verification = None
    if submission.verification:
        verification = VerificationOut(
            result=str(submission.verification.get("result")), reason=submission.verification.get("reason")
        )
    batch = submission.batch
    # With course selection the fee is the chosen courses' sum, which the latest order carries.
    fee = submission.orders[-1].amount_fen if batch.exam_selection and submission.orders else batch.fee_fen
    return SubmissionOut(
        id=submission.id,
        status=submission.status.value if hasattr(submission.status, "value") else str(submission.status),
        status_label=STATUS_LABELS[SubmissionStatus(submission.status)],
        reason=submission.status_reason,
        verification=verification,
        fee_fen=fee,
        fee_label=wording.yuan(fee),
        review_days=f"{batch.review_days_min}–{batch.review_days_max} 天",
        created_at=submission.created_at,
        paid_at=submission.paid_at,
        order=order_out,
        pay_window=(
            wording.window_text(batch.pay_opens_at, batch.pay_closes_at)
            if batch.pay_opens_at is not None and batch.pay_closes_at is not None
            else None
        ),
        confirmed_at=submission.confirmed_at,
        next_step=next_step(submission),
    )


@bp.post("/me/submissions")
@api_login_required
@spec.validate(
    json=SubmissionIn,
    resp=SpecResponse(
        HTTP_201=SubmissionOut, HTTP_422=ValidationErrors, HTTP_503=ServiceUnavailableOut, **REFUSALS
    ),
    tags=["缴费核验"],
)
def create_submission(json: SubmissionIn) -> tuple[SubmissionOut, int] | Response | tuple[Response, int]:
    """开始核验 / 提交审核：用通过检查的照片创建一次提交。先缴费的批次（pay_first）同时在微信支付
    下单；先审核后缴费（review_first）和免费（free）的批次直接进入身份核验或审核，不下单。

    需已实名绑定、关联开放中的批次、已阅读须知；批次的承诺在提交时作出时须勾选（要求签名时附手写签名）。
    已有进行中的提交、或本批次已「不通过」/「报名无效」时拒绝（422）；未阅读须知时 field 为 notice，
    承诺和签名的问题 field 为 pledge、signature。
    微信支付暂时不可用时返回 503，提交保留为待缴费，页面稍后用 GET …?renew=1 重试。
    """
    user = _user()
    try:
        paying = checkout.start(
            db.session,
            pay_client(),
            user.id,
            user.openid,
            json.photo_id,
            _now(),
            json.channel,
            pledge=_pledge(json.pledge, json.signature),
            storage=photo_storage(),
        )
    except SubmissionInFlightError as exc:
        current = submissions.in_flight(db.session, user.id)
        body: dict[str, Any] = {"errors": [{"field": "_", "message": exc.message}]}
        if current is not None:
            # The page can go on with the attempt already under way (e.g. 继续支付).
            body["submission_id"] = current.id
        return jsonify(body), 422
    except (SubmissionError, pledges.PledgeError) as exc:
        field = "photo_id" if isinstance(exc, submissions.PhotoNotUsableError) else "_"
        if isinstance(exc, submissions.NoticeNotAcknowledgedError):
            field = "notice"  # the page links to /h5/notice
        if isinstance(exc, submissions.ApplicationIncompleteError):
            field = "form"  # the page links to /h5/form and /h5/documents
        if isinstance(exc, pledges.PledgeError):
            field = "signature" if isinstance(exc, pledges.SignatureError) else "pledge"
        return jsonify(errors=[{"field": field, "message": exc.message}]), 422
    except CheckoutUnavailableError as exc:
        return _unavailable(exc, exc.submission_id)
    except PayNotConfiguredError as exc:
        current = submissions.in_flight(db.session, user.id)
        return _unavailable(exc, current.id if current else None)
    return submission_out(paying.submission, paying), 201


def _pledge(accepted: bool, signature: str | None) -> Pledge:
    """The pledge as sent; a signature that is not a PNG data URL is refused by the service."""
    png = None
    if signature:
        try:
            png = base64.b64decode(signature.removeprefix(SIGNATURE_PREFIX), validate=True)
        except ValueError:  # binascii.Error, or text that is not ASCII at all
            png = b"not base64"  # pledges.check_signature explains, in the student's words
    return Pledge(accepted=accepted, signature_png=png)


@bp.post("/me/submissions/<int:submission_id>/confirm")
@api_login_required
@spec.validate(
    json=ConfirmIn,
    resp=SpecResponse(HTTP_200=SubmissionOut, HTTP_404=ApiError, HTTP_422=ValidationErrors, **REFUSALS),
    tags=["缴费核验"],
)
def confirm_submission(submission_id: int, json: ConfirmIn) -> Any:
    """最终确认：审核通过后，学生确认信息（勾选承诺，批次要求时手写签名）；确认后信息不能再修改，
    回执单可以打印。重复确认不改变任何内容。"""
    submission = _owned(submission_id)
    if submission is None:
        return _not_found()
    try:
        submissions.confirm(
            db.session,
            _user().id,
            submission.id,
            _now(),
            pledge=_pledge(json.pledge, json.signature),
            storage=photo_storage(),
        )
    except (SubmissionError, pledges.PledgeError) as exc:
        field = "signature" if isinstance(exc, pledges.SignatureError) else "_"
        return jsonify(errors=[{"field": field, "message": exc.message}]), 422
    db.session.refresh(submission)
    return submission_out(submission)


@bp.get("/me/submissions/<int:submission_id>")
@api_login_required
@spec.validate(
    query=SubmissionQuery,
    resp=SpecResponse(
        HTTP_200=SubmissionOut,
        HTTP_401=ApiError,
        HTTP_404=ApiError,
        HTTP_422=ValidationErrors,
        HTTP_503=ServiceUnavailableOut,
    ),
    tags=["缴费核验"],
)
def get_submission(submission_id: int, query: SubmissionQuery) -> Any:
    """一次提交的状态、原因、身份核验结果和下一步（支付页每 2 秒左右查询一次）。

    待缴费时附带当前订单；订单已过期时加 `?renew=1` 换一张新订单（新二维码，有效 3 分钟）。
    审核通过、待缴费时同样用 `?renew=1` 下单；不在缴费时间内时 422，说明缴费时间。
    """
    submission = _owned(submission_id)
    if submission is None:
        return _not_found()
    paying = None
    if query.renew and flows.payable(submission.status):
        channel = query.channel or (submission.orders[-1].channel if submission.orders else "jsapi")
        try:
            paying = checkout.order_to_pay(
                db.session, pay_client(), submission, _user().openid, _now(), channel
            )
        except PayWindowError as exc:
            # Outside the pay window (not yet open, or closed): the message names the window.
            return jsonify(errors=[{"field": "_", "message": exc.message}]), 422
        except RegistrationError as exc:
            # A batch with course selection: no order before the courses are chosen (报考).
            return jsonify(errors=[{"field": "_", "message": exc.message}]), 422
        except (CheckoutUnavailableError, PayNotConfiguredError) as exc:
            return _unavailable(exc, submission.id)
    return submission_out(submission, paying)


@bp.post("/me/submissions/<int:submission_id>/refresh")
@api_login_required
@spec.validate(
    resp=SpecResponse(HTTP_200=SubmissionOut, HTTP_404=ApiError, HTTP_503=ServiceUnavailableOut, **REFUSALS),
    tags=["缴费核验"],
)
def refresh_submission(submission_id: int) -> Any:
    """查询缴费结果：向微信支付查询未到账的订单，已支付则立即入账，然后返回最新状态。"""
    submission = _owned(submission_id)
    if submission is None:
        return _not_found()
    try:
        checkout.refresh(db.session, pay_client(), submission)
    except (CheckoutUnavailableError, PayNotConfiguredError) as exc:
        return _unavailable(exc, submission.id)
    db.session.refresh(submission)
    return submission_out(submission)


@bp.get("/me/submissions/<int:submission_id>/qr.png")
@api_login_required
@spec.validate(resp=SpecResponse(HTTP_401=ApiError, HTTP_404=ApiError), tags=["缴费核验"])
def submission_qr(submission_id: int) -> Any:
    """Native 支付二维码（PNG）：当前有效订单的 code_url，仅本人可取；`?o=` 指定订单号。"""
    from flask import request

    submission = _owned(submission_id)
    if submission is None:
        return _not_found()
    order = submissions.current_order(submission, _now())
    wanted = request.args.get("o")
    if order is None or order.code_url is None or (wanted and wanted != order.out_trade_no):
        return error_response(404, "二维码已过期，请刷新页面获取新的二维码。")
    image = qrcode.make(order.code_url, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    response = Response(out.getvalue(), mimetype="image/png")
    response.headers["Cache-Control"] = f"private, max-age={QR_MAX_AGE}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
