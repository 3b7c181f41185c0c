"""What a verified WeChat Pay notification does: the payments service applies it.

The app factory hands `apply_notification` (bound to the request's session) to the pay integration;
POST /pay/notify (app/pay/) has already checked the signature, the timestamp, the merchant and the
app, and decrypted the resource.
Unknown orders are refused so WeChat Pay retries: a notification can overtake the commit that
created its order.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from app.integrations.wechat_pay_notifications import NotificationRejected, PaymentNotification
from app.services import payments

log = logging.getLogger(__name__)


def apply_notification(session: Session, notification: PaymentNotification) -> None:
    try:
        if notification.is_refund:
            if not notification.out_refund_no or not notification.refund_status:
                raise NotificationRejected("refund notification without out_refund_no", 400)
            payments.apply_refund(
                session,
                notification.out_refund_no,
                notification.refund_id,
                notification.refund_status,
                notification.success_time,
            )
            return
        if notification.event_type != "TRANSACTION.SUCCESS" or notification.trade_state != "SUCCESS":
            log.info("pay notification ignored", extra={"event_type": notification.event_type})
            return
        notice = payments.PaidNotice.of(notification, "notify", event_id=notification.id)
        if notice is None:
            raise NotificationRejected("payment notification without amount or transaction id", 400)
        payments.apply_payment(session, notice)
    except payments.UnknownOrderError:
        session.rollback()
        raise NotificationRejected("unknown order, try again later", 500) from None
    except payments.PaymentRejectedError as exc:
        session.rollback()
        # Retrying cannot fix a wrong amount, but acknowledging would hide it: refuse, and the
        # recorded event and the error log take it to a person.
        raise NotificationRejected(exc.message, 400) from None
