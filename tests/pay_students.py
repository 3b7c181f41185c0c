"""A student ready to pay (bound, linked, with a photo) and WeChat Pay's paid notice for an order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.integrations import pay_client, pii_keyring, redis_client
from app.sandbox.pay import faults as sandbox_faults
from app.services import enrollments, identities, submissions
from app.services.identities import IdentityInput
from app.services.payments import PaidNotice
from app.services.schools import BatchData, upsert_batch, upsert_school
from media.spec import PhotoSpec
from models import PaymentOrder, Submission, User, utcnow
from tests.factories import add_photo

TODAY = date.today()


def student(openid: str = "o-pay", passed: bool = True) -> tuple[int, int]:
    """A bound, linked student with one photo; returns (user_id, photo_id)."""
    user = User(openid=openid)
    db.session.add(user)
    db.session.commit()
    identities.bind(
        db.session, pii_keyring(), user.id, IdentityInput("resident_id", "210101200101010011", "张三"), TODAY
    )
    school = upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
    now = utcnow()
    batch = upsert_batch(
        db.session,
        school,
        BatchData(
            "成人教育 测试批次",
            "成人教育",
            now - timedelta(days=1),
            now + timedelta(days=30),
            200,
            PhotoSpec(),
        ),
    )
    db.session.commit()
    enrollments.link(db.session, user.id, batch.id, now)
    photo = add_photo(user.id, batch.id, passed=passed)
    db.session.commit()
    return user.id, photo.id


def paid_notice(order: PaymentOrder, **changes: Any) -> PaidNotice:
    values: dict[str, Any] = {
        "out_trade_no": order.out_trade_no,
        "transaction_id": "4200000001202611230000000001",
        "amount_fen": order.amount_fen,
        "currency": "CNY",
        "payer_openid": "o-pay",
        "success_time": datetime.now(UTC),
        "source": "notify",
        "event_id": "EV-1",
    }
    values.update(changes)
    return PaidNotice(**values)


# The sandbox's WeChat Pay, driven as a test needs it (tests of order sync, the pay CLI).


def sync_app(app_factory: Any) -> Flask:
    app: Flask = app_factory(WECHAT_PAY_SANDBOX_NOTIFY_THREAD=False)
    return app


def ordered_at_sandbox(app: Flask, openid: str = "o-sync") -> tuple[int, str]:
    """An attempt whose order exists here and at the sandbox's WeChat Pay: (submission id, out_trade_no)."""
    with app.app_context():
        user_id, photo_id = student(openid)
        attempt = submissions.create(db.session, user_id, photo_id, utcnow())
        order = attempt.orders[0]
        pay_client().create_jsapi(
            order.out_trade_no, "证件照核验服务费", order.amount_fen, openid, order.expires_at
        )
        found = attempt.id, order.out_trade_no
        db.session.remove()
        return found


def pay_at_sandbox(app: Flask, out_trade_no: str, openid: str = "o-sync") -> None:
    answer = app.test_client().post(f"/_sandbox/pay/{out_trade_no}", json={"action": "pay", "openid": openid})
    assert answer.status_code == 200, answer.get_json()


def set_pay_faults(app: Flask, **faults: Any) -> None:
    with app.app_context():
        sandbox_faults.set_faults(redis_client(), **faults)


def load_submission(app: Flask, submission_id: int) -> Submission:
    with app.app_context():
        found = db.session.get(Submission, submission_id)
        assert found is not None
        db.session.expunge(found)
        db.session.remove()
        return found


def load_order(app: Flask, out_trade_no: str) -> PaymentOrder:
    with app.app_context():
        found = db.session.scalars(
            select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no)
        ).one()
        db.session.expunge(found)
        db.session.remove()
        return found
