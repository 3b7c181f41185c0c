"""A student ready to pay (bound, linked, with a photo) and WeChat Pay's paid notice for an order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.extensions import db
from app.integrations import pii_keyring
from app.services import enrollments, identities
from app.services.identities import IdentityInput
from app.services.payments import PaidNotice
from app.services.schools import BatchData, upsert_batch, upsert_school
from media.spec import PhotoSpec
from models import PaymentOrder, User, utcnow
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
