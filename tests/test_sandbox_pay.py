"""The emulated WeChat Pay: its wire format, the user's actions, notification delivery and faults."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from wechatpayv3.utils import build_authorization

from app.integrations import pay_client, redis_client
from app.sandbox.pay import keys as sandbox_pay_keys
from app.sandbox.pay import notifications as sandbox_notify
from tests.pay_support import expires, pay_app


def _signed_request(
    app: Any, base: str, method: str, path: str, body: dict[str, Any] | None = None
) -> requests.Response:
    with app.app_context():
        cfg = pay_client().config
    data = json.dumps(body) if body is not None else ""
    auth = build_authorization(
        path, method, cfg.mchid, cfg.merchant_serial, cfg.private_key(), data=data or None
    )
    headers = {"Authorization": auth, "Content-Type": "application/json", "Accept": "application/json"}
    return requests.request(
        method, f"{base}/_sandbox/pay{path}", data=data or None, headers=headers, timeout=10
    )


def _order_body(app: Any, out_trade_no: str, **changes: Any) -> dict[str, Any]:
    with app.app_context():
        cfg = pay_client().config
    body = {
        "appid": cfg.appid,
        "mchid": cfg.mchid,
        "description": "证件照核验费",
        "out_trade_no": out_trade_no,
        "notify_url": cfg.notify_url,
        "amount": {"total": 200, "currency": "CNY"},
        "payer": {"openid": "oPayer"},
    }
    body.update(changes)
    return body


def test_answers_are_signed_with_the_platform_key(app_factory: Any, live_server: Any) -> None:
    app, _ = pay_app(app_factory)
    response = _signed_request(
        app, live_server.url, "POST", "/v3/pay/transactions/jsapi", _order_body(app, "WIRE000001")
    )
    assert response.status_code == 200 and response.json()["prepay_id"].startswith("wx")
    h = response.headers
    with app.app_context():
        keys = sandbox_pay_keys.app_keys()
    assert h["Wechatpay-Serial"] == keys.public_key_id
    assert h["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048" and h["Request-ID"]
    message = f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n".encode() + response.content + b"\n"
    keys.platform_key().public_key().verify(
        base64.b64decode(h["Wechatpay-Signature"]), message, padding.PKCS1v15(), hashes.SHA256()
    )


def test_unsigned_or_tampered_requests_get_sign_error(app_factory: Any, live_server: Any) -> None:
    app, _ = pay_app(app_factory)
    url = f"{live_server.url}/_sandbox/pay/v3/pay/transactions/out-trade-no/WIRE000002?mchid=1900000109"
    unsigned = requests.get(url, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGN_ERROR"
    # Signed for one query string, sent with another.
    with app.app_context():
        cfg = pay_client().config
    auth = build_authorization(
        "/v3/pay/transactions/out-trade-no/WIRE000002?mchid=1",
        "GET",
        cfg.mchid,
        cfg.merchant_serial,
        cfg.private_key(),
    )
    tampered = requests.get(url, headers={"Authorization": auth}, timeout=10)
    assert tampered.status_code == 401 and tampered.json()["code"] == "SIGN_ERROR"


def test_parameter_errors(app_factory: Any, live_server: Any) -> None:
    app, _ = pay_app(app_factory)
    path = "/v3/pay/transactions/jsapi"
    cases = [
        (_order_body(app, "PARAM00001", description=""), 400, "PARAM_ERROR"),
        (_order_body(app, "bad no!"), 400, "PARAM_ERROR"),
        (_order_body(app, "PARAM00002", amount={"total": 0}), 400, "PARAM_ERROR"),
        (_order_body(app, "PARAM00003", amount={"total": 2.5}), 400, "PARAM_ERROR"),
        (_order_body(app, "PARAM00004", payer={}), 400, "PARAM_ERROR"),
        (_order_body(app, "PARAM00005", time_expire="2000-01-01T00:00:00+08:00"), 400, "PARAM_ERROR"),
        (_order_body(app, "PARAM00006", mchid="1230000109"), 400, "MCH_NOT_EXISTS"),
        (_order_body(app, "PARAM00007", appid="wx0000000000000000"), 400, "APPID_MCHID_NOT_MATCH"),
    ]
    for body, status, code in cases:
        response = _signed_request(app, live_server.url, "POST", path, body)
        assert (response.status_code, response.json()["code"]) == (status, code), body


def test_pay_sheet_actions(app_factory: Any) -> None:
    app, _recorder = pay_app(app_factory)
    with app.app_context():
        pay_client().create_jsapi("SHEET00001", "核验费", 200, "oPayer", expires())
    web = app.test_client()
    cancel = web.post("/_sandbox/pay/SHEET00001", json={"action": "cancel"})
    assert cancel.status_code == 200 and cancel.get_json()["trade_state"] == "NOTPAY"
    with app.app_context():
        assert pay_client().query("SHEET00001").trade_state == "NOTPAY"
        assert redis_client().zcard(sandbox_notify.DUE) == 0  # cancelling notifies nobody
    other = web.post("/_sandbox/pay/SHEET00001", json={"action": "pay", "openid": "oSomeoneElse"})
    assert other.status_code == 403 and other.get_json()["code"] == "PAYER_MISMATCH"
    web.set_cookie("sandbox_phone_user", "oPayer", path="/_sandbox")
    paid = web.post("/_sandbox/pay/SHEET00001", json={"action": "pay"})
    assert paid.status_code == 200 and paid.get_json()["trade_state"] == "SUCCESS"
    again = web.post("/_sandbox/pay/SHEET00001", json={"action": "pay"})
    assert again.status_code == 403 and again.get_json()["code"] == "ORDERPAID"
    assert web.post("/_sandbox/pay/SHEET00001", json={"action": "steal"}).status_code == 400
    assert web.post("/_sandbox/pay/NOSUCH0001", json={"action": "pay", "openid": "o"}).status_code == 404
    with app.app_context():
        assert redis_client().zcard(sandbox_notify.DUE) == 1  # exactly one notification for one payment


def test_scanning_a_native_code_pays_as_that_user(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        code_url = pay_client().create_native("SCAN000001", "核验费", 200, expires())
    web = app.test_client()
    assert (
        web.post(
            "/_sandbox/pay/scan", json={"code_url": "weixin://wxpay/bizpayurl?pr=nope", "openid": "o"}
        ).status_code
        == 404
    )
    assert web.post("/_sandbox/pay/scan", json={"code_url": code_url}).status_code == 400
    scanned = web.post("/_sandbox/pay/scan", json={"code_url": code_url, "openid": "oScanner"})
    assert scanned.status_code == 200
    with app.app_context():
        state = pay_client().query("SCAN000001")
    assert (state.trade_state, state.payer_openid, state.trade_type) == ("SUCCESS", "oScanner", "NATIVE")
    # A code can be used once.
    assert (
        web.post("/_sandbox/pay/scan", json={"code_url": code_url, "openid": "oOther"}).get_json()["code"]
        == "ORDERPAID"
    )


def test_retry_schedule_until_acknowledged(app_factory: Any) -> None:
    app, recorder = pay_app(app_factory)
    recorder.reject = 2  # the service answers 500 twice, then 204
    with app.app_context():
        pay_client().create_jsapi("RETRY00001", "核验费", 200, "oPayer", expires())
    app.test_client().post("/_sandbox/pay/RETRY00001", json={"action": "pay"})
    with app.app_context():
        r = redis_client()
        [(_nid, t0)] = r.zrange(sandbox_notify.DUE, 0, -1, withscores=True)
        first = sandbox_notify.deliver_due_notifications(r, t0)
        assert [d["status"] for d in first] == [500] and first[0]["next_at"] == t0 + 15
        assert sandbox_notify.deliver_due_notifications(r, t0 + 14.9) == []
        second = sandbox_notify.deliver_due_notifications(r, t0 + 15)
        assert [d["status"] for d in second] == [500] and second[0]["next_at"] == t0 + 30
        assert sandbox_notify.deliver_due_notifications(r, t0 + 29) == []
        third = sandbox_notify.deliver_due_notifications(r, t0 + 30)
        assert [(d["status"], d.get("final")) for d in third] == [(204, "acknowledged")]
        assert sandbox_notify.deliver_due_notifications(r, t0 + 10**6) == []
        assert [d["scheduled_at"] - t0 for d in sandbox_notify.deliveries(r)] == [0, 15, 30]
    assert len(recorder.calls) == 3 and len({n.id for n in recorder.calls}) == 1


def test_full_schedule_then_give_up(app_factory: Any) -> None:
    app, recorder = pay_app(app_factory)
    recorder.reject = 100
    with app.app_context():
        pay_client().create_jsapi("GIVEUP0001", "核验费", 200, "oPayer", expires())
    app.test_client().post("/_sandbox/pay/GIVEUP0001", json={"action": "pay"})
    with app.app_context():
        r = redis_client()
        [(_, now)] = r.zrange(sandbox_notify.DUE, 0, -1, withscores=True)
        t0, attempts = now, []
        while True:
            [delivery] = sandbox_notify.deliver_due_notifications(r, now)
            attempts.append(delivery["scheduled_at"] - t0)
            if "next_at" not in delivery:
                break
            now = delivery["next_at"]
        assert delivery["final"] == "gave_up"
        assert r.zcard(sandbox_notify.DUE) == 0
    offsets = [0]
    for delay in (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600):
        offsets.append(offsets[-1] + delay)
    assert attempts == offsets  # 16 posts over 24 h 4 m, as WeChat Pay documents
    assert offsets[-1] == 24 * 3600 + 4 * 60
    assert len(recorder.calls) == 16


def test_deliver_endpoint_drives_the_queue(app_factory: Any) -> None:
    app, recorder = pay_app(app_factory)
    recorder.reject = 1
    with app.app_context():
        pay_client().create_jsapi("DRIVE00001", "核验费", 200, "oPayer", expires())
    web = app.test_client()
    web.post("/_sandbox/pay/DRIVE00001", json={"action": "pay"})
    first = web.post("/_sandbox/pay/_ctl/deliver", json={}).get_json()["deliveries"]
    assert [d["status"] for d in first] == [500]
    assert web.post("/_sandbox/pay/_ctl/deliver", json={}).get_json()["deliveries"] == []
    later = web.post("/_sandbox/pay/_ctl/deliver", json={"now": first[0]["next_at"]}).get_json()["deliveries"]
    assert [d["status"] for d in later] == [204]
    listing = web.get("/_sandbox/pay/_ctl/deliveries").get_json()
    assert [d["status"] for d in listing["deliveries"]] == [500, 204] and listing["due"] == []


def test_drop_and_delay_faults(app_factory: Any) -> None:
    app, recorder = pay_app(app_factory)
    web = app.test_client()
    with app.app_context():
        client = pay_client()
        client.create_jsapi("DROP000001", "核验费", 200, "oPayer", expires())
        client.create_jsapi("DELAY00001", "核验费", 200, "oPayer", expires())
    assert web.post("/_sandbox/pay/_ctl/faults", json={"drop_notifications": True}).status_code == 200
    web.post("/_sandbox/pay/DROP000001", json={"action": "pay"})
    web.post("/_sandbox/pay/_ctl/faults", json={"drop_notifications": False, "notify_delay_seconds": 60})
    web.post("/_sandbox/pay/DELAY00001", json={"action": "pay"})
    with app.app_context():
        r = redis_client()
        assert sandbox_notify.deliver_due_notifications(r, time.time()) == []
        assert [d.get("dropped") for d in sandbox_notify.deliveries(r)] == [True]
        [(_, due)] = r.zrange(sandbox_notify.DUE, 0, -1, withscores=True)
        assert [d["status"] for d in sandbox_notify.deliver_due_notifications(r, due)] == [204]
        # The dropped payment is still paid: only a query finds out.
        assert pay_client().query("DROP000001").trade_state == "SUCCESS"
    assert [n.out_trade_no for n in recorder.calls] == ["DELAY00001"]


def test_the_embedded_thread_delivers_on_its_own(app_factory: Any) -> None:
    app, recorder = pay_app(app_factory, WECHAT_PAY_SANDBOX_NOTIFY_THREAD=True)
    with app.app_context():
        pay_client().create_jsapi("THREAD0001", "核验费", 200, "oPayer", expires())
    app.test_client().post("/_sandbox/pay/THREAD0001", json={"action": "pay"})
    deadline = time.monotonic() + 10
    while not recorder.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [n.out_trade_no for n in recorder.calls] == ["THREAD0001"]
    thread = app.extensions["sandbox_pay_notifier"]
    deadline = time.monotonic() + 10
    while thread["thread"] is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert thread["thread"] is None  # an empty queue ends the thread


def test_certificates_endpoint_serves_the_encrypted_certificate(app_factory: Any, live_server: Any) -> None:
    app, _ = pay_app(app_factory)
    response = _signed_request(app, live_server.url, "GET", "/v3/certificates")
    assert response.status_code == 200
    [entry] = response.json()["data"]
    with app.app_context():
        apiv3_key = pay_client().config.apiv3_key
        keys = sandbox_pay_keys.app_keys()
    from wechatpayv3.utils import aes_decrypt

    box = entry["encrypt_certificate"]
    pem = aes_decrypt(box["nonce"], box["ciphertext"], box["associated_data"], apiv3_key)
    assert pem == keys.platform_cert_pem and entry["serial_no"] == keys.platform_cert_serial


def test_prepay_info_and_sheet_page(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        params = pay_client().create_jsapi("PAGE000001", "证件照核验费", 200, "oPayer", expires())
    web = app.test_client()
    prepay_id = params["package"].split("=", 1)[1]
    info = web.get(f"/_sandbox/pay/_ctl/prepay/{prepay_id}").get_json()
    assert info == {
        "out_trade_no": "PAGE000001",
        "amount_fen": 200,
        "description": "证件照核验费",
        "merchant_name": app.config["WECHAT_PAY_MERCHANT_NAME"],
        "trade_state": "NOTPAY",
        "payer_openid": "oPayer",
    }
    assert web.get("/_sandbox/pay/_ctl/prepay/wxnope").status_code == 404
    page = web.get(f"/_sandbox/pay/sheet?prepay_id={prepay_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "确认支付" in html and "paysheet.js" in html
    assert web.get("/_sandbox/static/paysheet.js").status_code == 200
