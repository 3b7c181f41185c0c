"""POST /pay/notify through real HTTP: what is acknowledged, what is refused, and that a refused
notification never reaches the payments service's hook."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.integrations import pay_client, redis_client
from app.integrations.wechat_pay_notifications import NotificationRejected
from app.sandbox.pay import faults as sandbox_faults
from app.sandbox.pay import notifications as sandbox_notify
from app.sandbox.pay import orders as sandbox_orders
from tests.pay_support import (
    envelope_bytes,
    expires,
    pay_app,
    post_notify,
    resource_for,
    signed_headers,
)


def test_good_notification_is_acknowledged_and_handed_over_typed(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    response = post_notify(live_server.url, body, signed_headers(app, body))
    assert response.status_code == 204
    assert response.content == b""
    [note] = recorder.calls
    assert note.event_type == "TRANSACTION.SUCCESS"
    assert note.out_trade_no == "T202611230001"
    assert note.transaction_id == "4200002026112312345678901234"
    assert note.trade_state == "SUCCESS"
    assert (note.amount_total, note.amount_payer_total, note.currency) == (200, 200, "CNY")
    assert note.payer_openid == "oStudentOpenid000000000000001"
    assert note.success_time is not None and note.success_time.isoformat() == "2026-11-23T12:00:00+08:00"
    assert not note.is_refund
    assert note.resource["bank_type"] == "OTHERS"


def test_real_sandbox_payment_reaches_the_hook(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    with app.app_context():
        pay_client().create_jsapi("PAYNOTE001", "证件照核验费", 200, "oPayer", expires())
    client = app.test_client()
    assert client.post("/_sandbox/pay/PAYNOTE001", json={"action": "pay"}).status_code == 200
    with app.app_context():
        [delivery] = sandbox_notify.deliver_due_notifications(redis_client())
    assert delivery["status"] == 204 and delivery["final"] == "acknowledged"
    [note] = recorder.calls
    assert (note.out_trade_no, note.amount_total, note.payer_openid) == ("PAYNOTE001", 200, "oPayer")


def _refused(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response.json()["code"] == "FAIL"
    assert response.json()["message"]


def test_bad_signature_is_refused(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    headers = signed_headers(app, body)
    # The same bytes re-serialised (spaces after separators) no longer match the signature.
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    _refused(post_notify(live_server.url, reserialised, headers), 401)
    headers["Wechatpay-Signature"] = "not base64 !!"
    _refused(post_notify(live_server.url, body, headers), 401)
    assert recorder.calls == []


def test_signed_with_another_key_is_refused(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _refused(post_notify(live_server.url, body, signed_headers(app, body, key=other)), 401)
    assert recorder.calls == []


def test_sandbox_wrong_key_fault_is_refused(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    with app.app_context():
        pay_client().create_native("WRONGKEY01", "核验费", 200, expires())
        sandbox_faults.set_faults(redis_client(), wrong_key=True)
    assert (
        app.test_client()
        .post("/_sandbox/pay/scan", json={"code_url": _code_url(app), "openid": "oX"})
        .status_code
        == 200
    )
    with app.app_context():
        [delivery] = sandbox_notify.deliver_due_notifications(redis_client())
    assert delivery["status"] == 401 and "next_at" in delivery
    assert recorder.calls == []


def _code_url(app: Any) -> str:
    with app.app_context():
        order = json.loads(
            redis_client().get(sandbox_orders.order_key(pay_client().config.mchid, "WRONGKEY01"))
        )
    return f"weixin://wxpay/bizpayurl?pr={order['code_token']}"


@pytest.mark.parametrize("offset", [-310, 310, -3600])  # clear of rounding to whole seconds
def test_stale_or_future_timestamp_is_refused(app_factory: Any, live_server: Any, offset: int) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    headers = signed_headers(app, body, timestamp=int(time.time()) + offset)
    _refused(post_notify(live_server.url, body, headers), 401)
    assert recorder.calls == []


def test_timestamp_inside_the_window_is_accepted(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory, WECHAT_PAY_MAX_NOTIFY_AGE_SECONDS=600)
    body = envelope_bytes(app, resource_for(app))
    headers = signed_headers(app, body, timestamp=int(time.time()) - 500)
    assert post_notify(live_server.url, body, headers).status_code == 204
    assert len(recorder.calls) == 1


def test_wrong_apiv3_key_fails_to_decrypt(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app), apiv3_key="k" * 32)
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 500)
    assert recorder.calls == []


@pytest.mark.parametrize(
    "changes", [{"mchid": "1230000109"}, {"appid": "wx0000000000000000"}, {"mchid": None}]
)
def test_foreign_merchant_or_app_is_refused(
    app_factory: Any, live_server: Any, changes: dict[str, Any]
) -> None:
    app, recorder = pay_app(app_factory)
    resource = {k: v for k, v in resource_for(app, **changes).items() if v is not None}
    body = envelope_bytes(app, resource)
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 400)
    assert recorder.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1,2]",
        b'{"resource_type":"encrypt-resource"}',
        b'{"resource_type":"plain","resource":{}}',
    ],
)
def test_malformed_but_signed_body_is_refused(app_factory: Any, live_server: Any, body: bytes) -> None:
    app, recorder = pay_app(app_factory)
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 400)
    assert recorder.calls == []


def test_resource_with_wrong_types_is_refused(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    resource = resource_for(app, amount={"total": "200", "currency": "CNY"})
    body = envelope_bytes(app, resource)
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 400)
    assert recorder.calls == []


def test_oversize_body_is_refused(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory, WECHAT_PAY_MAX_NOTIFY_BYTES=2048)
    body = envelope_bytes(app, resource_for(app, attach="x" * 3000))
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 413)
    assert recorder.calls == []


@pytest.mark.parametrize(
    "missing", ["Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"]
)
def test_missing_header_is_refused(app_factory: Any, live_server: Any, missing: str) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    headers = signed_headers(app, body)
    del headers[missing]
    _refused(post_notify(live_server.url, body, headers), 401)
    assert recorder.calls == []


def test_unknown_serial_is_refused(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    _refused(post_notify(live_server.url, body, signed_headers(app, body, serial_no="PUB_KEY_ID_OTHER")), 401)
    assert recorder.calls == []


def test_refusal_logs_carry_no_personal_data(app_factory: Any, live_server: Any, caplog: Any) -> None:
    app, _ = pay_app(app_factory)
    logging.getLogger().addHandler(caplog.handler)  # create_app replaced the root's handlers
    body = envelope_bytes(app, resource_for(app, mchid="1230000109"))
    with caplog.at_level(logging.INFO):
        _refused(post_notify(live_server.url, body, signed_headers(app, body)), 400)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "another merchant" in text
    assert "oStudentOpenid" not in text and "T202611230001" not in text
    logging.getLogger().removeHandler(caplog.handler)


def test_hook_rejection_is_not_acknowledged(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    recorder.reject = 1
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 500)

    def wrong_amount(note: Any) -> None:
        raise NotificationRejected("amount differs from the order", 400)

    app.extensions["pay_notification_handler"] = wrong_amount
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 400)

    def broken(note: Any) -> None:
        raise RuntimeError("database down")

    app.extensions["pay_notification_handler"] = broken
    _refused(post_notify(live_server.url, body, signed_headers(app, body)), 500)


def test_same_notification_ten_times_concurrently(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    headers = signed_headers(app, body)
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(
            pool.map(lambda _: post_notify(live_server.url, body, headers).status_code, range(10))
        )
    assert statuses == [204] * 10
    assert len(recorder.calls) == 10
    assert {n.id for n in recorder.calls} == {recorder.calls[0].id}
    assert all(n.amount_total == 200 for n in recorder.calls)


def test_refund_notification_is_typed(app_factory: Any, live_server: Any) -> None:
    app, recorder = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_jsapi("REFNOTE001", "核验费", 200, "oPayer", expires())
    app.test_client().post("/_sandbox/pay/REFNOTE001", json={"action": "pay"})
    with app.app_context():
        sandbox_notify.deliver_due_notifications(redis_client())
        client.refund("REFNOTE001", "RF-REFNOTE001", 200, 200, "核验服务不可用，自动退款")
        [delivery] = sandbox_notify.deliver_due_notifications(redis_client())
    assert delivery["event_type"] == "REFUND.SUCCESS" and delivery["status"] == 204
    note = recorder.calls[-1]
    assert note.is_refund and note.event_type == "REFUND.SUCCESS"
    assert (note.out_trade_no, note.out_refund_no, note.refund_status) == (
        "REFNOTE001",
        "RF-REFNOTE001",
        "SUCCESS",
    )
    assert (note.refund_fen, note.amount_total) == (200, 200)
    assert note.appid is None  # refund resources carry no appid


def test_not_configured_answers_503(app_factory: Any, live_server: Any) -> None:
    app = app_factory(SANDBOX=False)
    body = b"{}"
    response = app.test_client().post("/pay/notify", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 503
    assert response.get_json()["code"] == "FAIL"


def test_a_timestamp_in_superscript_digits_is_refused_not_a_500(app_factory: Any, live_server: Any) -> None:
    # "²³".isdigit() is True and int("²³") raises: this answered 500.
    app, recorder = pay_app(app_factory)
    body = envelope_bytes(app, resource_for(app))
    headers = {**signed_headers(app, body), "Wechatpay-Timestamp": "²³"}
    _refused(post_notify(live_server.url, body, headers), 401)
    assert recorder.calls == []
