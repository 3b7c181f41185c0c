"""The sandbox's pay sheet in Chromium: WeixinJSBridge → sheet → 确认支付 / 取消."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from app.integrations import pay_client, redis_client
from app.sandbox.pay import notifications as sandbox_notify
from tests.pay_support import expires


def _order(app: Any, no: str) -> dict[str, str]:
    app.config["WECHAT_PAY_SANDBOX_NOTIFY_THREAD"] = False
    with app.app_context():
        return pay_client().create_jsapi(no, "证件照核验费", 200, "oPayer", expires())


def test_pay_through_the_bridge(app: Any, phone: Any, live_server: Any) -> None:
    params = _order(app, "BROWSER001")
    phone.goto(f"{live_server.url}/_sandbox/pay/sheet")
    phone.evaluate(
        "p => WeixinJSBridge.invoke('getBrandWCPayRequest', p, r => { window.payResult = r.err_msg; })",
        params,
    )
    sheet = phone.locator("#paysheet")
    expect(sheet).to_be_visible()
    expect(phone.locator("#paysheet-amount")).to_have_text("¥2.00")
    expect(phone.locator("#paysheet-desc")).to_have_text("证件照核验费")
    phone.get_by_role("button", name="确认支付").click()
    expect(sheet).to_be_hidden()
    phone.wait_for_function("window.payResult === 'get_brand_wcpay_request:ok'")
    with app.app_context():
        assert pay_client().query("BROWSER001").trade_state == "SUCCESS"
        assert redis_client().zcard(sandbox_notify.DUE) == 1


def test_cancel_leaves_the_order_unpaid(app: Any, phone: Any, live_server: Any) -> None:
    params = _order(app, "BROWSER002")
    prepay_id = params["package"].split("=", 1)[1]
    phone.goto(f"{live_server.url}/_sandbox/pay/sheet?prepay_id={prepay_id}")
    expect(phone.locator("#paysheet-amount")).to_have_text("¥2.00")
    phone.get_by_role("button", name="取消").click()
    expect(phone.locator("#paysheet-result")).to_have_text("get_brand_wcpay_request:cancel")
    with app.app_context():
        assert pay_client().query("BROWSER002").trade_state == "NOTPAY"


def test_a_forged_pay_sign_never_opens_the_sheet(
    app: Any, phone: Any, live_server: Any, browser_errors: Any
) -> None:
    browser_errors.expect_status(400, "/_sandbox/pay/_ctl/prepay/")
    params = {**_order(app, "BROWSER003"), "paySign": "Zm9yZ2Vk"}
    phone.goto(f"{live_server.url}/_sandbox/pay/sheet")
    result = phone.evaluate(
        "p => new Promise(ok => WeixinJSBridge.invoke('getBrandWCPayRequest', p, r => ok(r.err_msg)))", params
    )
    assert result == "get_brand_wcpay_request:fail"
    expect(phone.locator("#paysheet")).to_be_hidden()
