"""The WeChat Pay adapter (app/integrations/wechat_pay.py) against the sandbox over real HTTP, and its
settings."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from settings_support import production_settings

from app import create_app
from app.integrations import pay_client, redis_client
from app.integrations.wechat_pay import PayClient, PayError, PayResponseUnverified
from app.sandbox import state
from app.sandbox.pay import faults as sandbox_faults
from app.sandbox.pay import keys as sandbox_pay_keys
from app.sandbox.pay import notifications as sandbox_notify
from app.services.localtime import BEIJING
from config import SettingsError, load_settings
from tests.pay_support import expires, pay_app

STRONG_SECRET = "s" * 40


def _pay(app: Any, out_trade_no: str, openid: str | None = None) -> dict[str, Any]:
    response = app.test_client().post(
        f"/_sandbox/pay/{out_trade_no}", json={"action": "pay", "openid": openid}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- settings ----------------------------------------------------------------------------------------
def test_sandbox_defaults() -> None:
    settings = load_settings(SANDBOX=True, PUBLIC_BASE_URL="http://127.0.0.1:8000")
    assert settings.WECHAT_PAY_API_BASE == "http://127.0.0.1:8000/_sandbox/pay"
    assert settings.WECHAT_PAY_NOTIFY_URL == "http://127.0.0.1:8000/pay/notify"
    assert settings.WECHAT_PAY_APPID == settings.WECHAT_APPID
    assert load_settings().WECHAT_PAY_API_BASE == "https://api.mch.weixin.qq.com"


def _production(**overrides: object) -> dict[str, object]:
    return production_settings(
        **{"SECRET_KEY": STRONG_SECRET, "WECHAT_APPID": "wx0123456789abcdef", **overrides}
    )


def test_production_with_pay_settings_validates() -> None:
    settings = load_settings(**_production())
    assert (
        settings.pay_configured and settings.WECHAT_PAY_NOTIFY_URL == "https://photo.example.com/pay/notify"
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"WECHAT_PAY_MCHID": ""}, "production needs WeChat Pay"),
        ({"WECHAT_PAY_PRIVATE_KEY_PATH": ""}, "production needs WeChat Pay"),
        ({"WECHAT_PAY_PUBLIC_KEY_ID": "", "WECHAT_PAY_PUBLIC_KEY_PATH": ""}, "production needs WeChat Pay"),
        ({"WECHAT_PAY_PUBLIC_KEY_PATH": ""}, "go together"),
        ({"WECHAT_PAY_APIV3_KEY": "short"}, "32 bytes"),
        ({"WECHAT_PAY_API_BASE": "https://photo.example.com/_sandbox/pay"}, "never the sandbox"),
        ({"WECHAT_PAY_API_BASE": "http://api.mch.weixin.qq.com"}, "https"),
        ({"WECHAT_PAY_NOTIFY_URL": "http://photo.example.com/pay/notify"}, "https"),
        ({"WECHAT_PAY_NOTIFY_URL": "https://photo.example.com/pay/notify?x=1"}, "without"),
        ({"WECHAT_PAY_MCHID": "12a"}, "WECHAT_PAY_MCHID"),
    ],
)
def test_production_refuses_bad_pay_settings(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**_production(**overrides))


def test_certificate_mode_is_accepted_in_production() -> None:
    settings = load_settings(
        **_production(
            WECHAT_PAY_PUBLIC_KEY_ID="", WECHAT_PAY_PUBLIC_KEY_PATH="", WECHAT_PAY_CERT_DIR="/var/wxp"
        )
    )
    assert settings.pay_configured


def test_production_app_refuses_missing_or_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="WECHAT_PAY_PRIVATE_KEY_PATH"):
        create_app(**_production(WECHAT_PAY_PRIVATE_KEY_PATH=str(tmp_path / "missing.pem")))
    bad = tmp_path / "key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    public = tmp_path / "pub_key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(SettingsError, match="not a PEM RSA private key"):
        create_app(
            **_production(WECHAT_PAY_PRIVATE_KEY_PATH=str(bad), WECHAT_PAY_PUBLIC_KEY_PATH=str(public))
        )
    good = tmp_path / "apiclient_key.pem"
    good.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    app = create_app(
        **_production(WECHAT_PAY_PRIVATE_KEY_PATH=str(good), WECHAT_PAY_PUBLIC_KEY_PATH=str(public))
    )
    assert app.extensions["pay_client"].config.mchid == "1230000109"  # loaded at start, no network


def test_sandbox_keys_are_generated_once_outside_the_repository(app_factory: Any, tmp_path: Path) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        config = pay_client().config
    folder = tmp_path / "sandbox-pay"  # MEDIA_ROOT's parent in the tests, var/ under `make run`
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "apiv3_key.txt",
        "merchant_key.pem",
        "platform_cert.pem",
        "platform_key.pem",
    ]
    assert oct(folder.joinpath("merchant_key.pem").stat().st_mode & 0o777) == "0o600"
    assert config.private_key_pem == folder.joinpath("merchant_key.pem").read_text()
    assert (
        len(config.apiv3_key) == 32
        and config.public_key_id
        and config.public_key_id.startswith("PUB_KEY_ID_")
    )
    assert sandbox_pay_keys.sandbox_keys(folder) is sandbox_pay_keys.sandbox_keys(folder)


# -- operations --------------------------------------------------------------------------------------
def test_calls_reach_the_configured_base(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_native("BASE000001", "核验费", 200, expires())
        assert client._library()._core._gate_way == app.config["WECHAT_PAY_API_BASE"]
        raw = redis_client().lrange(state.CALLS, 0, -1)
    assert any("/_sandbox/pay/v3/pay/transactions/native" in c for c in raw)


def test_create_jsapi_gives_signed_bridge_params(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        params = client.create_jsapi("JSAPI00001", "证件照核验费", 200, "oPayer", expires())
        public = client.config.private_key().public_key()
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == app.config["WECHAT_PAY_APPID"] and params["signType"] == "RSA"
    assert params["package"].startswith("prepay_id=wx")
    message = "".join(f"{params[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package")).encode()
    public.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    # The sandbox's WeChat client checks paySign the same way before showing the sheet.
    prepay_id = params["package"].split("=", 1)[1]
    web = app.test_client()
    info = web.get(f"/_sandbox/pay/_ctl/prepay/{prepay_id}", query_string=params)
    assert info.status_code == 200 and info.get_json()["amount_fen"] == 200
    forged = {**params, "nonceStr": "0" * 32}
    assert web.get(f"/_sandbox/pay/_ctl/prepay/{prepay_id}", query_string=forged).status_code == 400


def test_create_native_gives_a_code_url(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        code_url = pay_client().create_native("NATIVE0001", "证件照核验费", 200, expires())
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")


def test_same_order_again_and_conflicts(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        exp = expires()
        first = client.create_jsapi("AGAIN00001", "核验费", 200, "oPayer", exp)
        second = client.create_jsapi("AGAIN00001", "核验费", 200, "oPayer", exp)
        assert first["package"] == second["package"]
        with pytest.raises(PayError) as conflict:
            client.create_jsapi("AGAIN00001", "核验费", 300, "oPayer", exp)
        assert (conflict.value.code, conflict.value.status, conflict.value.retryable) == (
            "INVALID_REQUEST",
            400,
            False,
        )
    _pay(app, "AGAIN00001")
    with app.app_context(), pytest.raises(PayError) as paid:
        pay_client().create_jsapi("AGAIN00001", "核验费", 200, "oPayer", exp)
    assert (paid.value.code, paid.value.status) == ("ORDERPAID", 403)


def test_query_states(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_jsapi("QUERY00001", "核验费", 200, "oPayer", expires())
        before = client.query("QUERY00001")
        assert (before.trade_state, before.transaction_id, before.amount_total) == ("NOTPAY", None, 200)
        with pytest.raises(PayError) as missing:
            client.query("NOSUCHORDER")
        assert (missing.value.code, missing.value.status, missing.value.retryable) == (
            "ORDER_NOT_EXIST",
            404,
            False,
        )
    _pay(app, "QUERY00001")
    with app.app_context():
        after = pay_client().query("QUERY00001")
    assert after.trade_state == "SUCCESS" and after.transaction_id and after.transaction_id.startswith("4200")
    assert (after.amount_total, after.payer_total, after.currency, after.payer_openid) == (
        200,
        200,
        "CNY",
        "oPayer",
    )
    assert after.success_time is not None and after.success_time.tzinfo is not None


def test_close(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_native("CLOSE00001", "核验费", 200, expires())
        client.close("CLOSE00001")
        client.close("CLOSE00001")  # closing twice is harmless
        assert client.query("CLOSE00001").trade_state == "CLOSED"
        client.create_jsapi("CLOSE00002", "核验费", 200, "oPayer", expires())
    response = app.test_client().post("/_sandbox/pay/CLOSE00001", json={"action": "pay", "openid": "oX"})
    assert response.status_code == 400 and response.get_json()["code"] == "ORDER_CLOSED"
    _pay(app, "CLOSE00002")
    with app.app_context(), pytest.raises(PayError) as paid:
        pay_client().close("CLOSE00002")
    assert paid.value.code == "ORDERPAID"


def test_expiry_closes_the_order(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_native("EXPIRE0001", "核验费", 200, expires(3))
        assert client.query("EXPIRE0001").trade_state == "NOTPAY"
    assert app.test_client().post("/_sandbox/api/_clock", json={"advance_seconds": 181}).status_code == 200
    with app.app_context():
        assert pay_client().query("EXPIRE0001").trade_state == "CLOSED"
    response = app.test_client().post("/_sandbox/pay/EXPIRE0001", json={"action": "pay", "openid": "oX"})
    assert response.get_json()["code"] == "ORDER_CLOSED"


def test_refund_and_query_refund(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_jsapi("REFUND0001", "核验费", 200, "oPayer", expires())
        with pytest.raises(PayError) as unpaid:
            client.refund("REFUND0001", "RF1", 200, 200, "测试")
        assert unpaid.value.code == "INVALID_REQUEST"
    _pay(app, "REFUND0001")
    with app.app_context():
        client = pay_client()
        refund = client.refund("REFUND0001", "RF1", 150, 200, "核验服务不可用")
        assert (refund.status, refund.refund_fen, refund.total_fen) == ("PROCESSING", 150, 200)
        again = client.refund("REFUND0001", "RF1", 150, 200, "核验服务不可用")
        assert again.refund_id == refund.refund_id  # the same out_refund_no is the same refund
        with pytest.raises(PayError) as too_much:
            client.refund("REFUND0001", "RF2", 100, 200, "超额")
        assert (too_much.value.code, too_much.value.status) == ("NOT_ENOUGH", 403)
        done = client.query_refund("RF1")
        assert done.status == "SUCCESS" and done.success_time is not None
        assert client.query("REFUND0001").trade_state == "REFUND"
        with pytest.raises(PayError) as missing:
            client.query_refund("NOSUCHREFUND")
        assert missing.value.code == "RESOURCE_NOT_EXISTS"


def test_trade_bill_rows_for_a_day(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        for n in (1, 2):
            client.create_jsapi(f"BILL00000{n}", "核验费", 200, f"oPayer{n}", expires())
        client.create_jsapi("BILL000003", "核验费", 200, "oPayer3", expires())  # never paid
    _pay(app, "BILL000001")
    _pay(app, "BILL000002")
    with app.app_context():
        client = pay_client()
        client.refund("BILL000002", "RF-BILL2", 200, 200, "退款")
        today = datetime.now(BEIJING).date()
        rows = client.trade_bill(today)
        assert client.trade_bill(today - timedelta(days=3)) == []
    paid = sorted((r.out_trade_no, r.trade_state, r.settlement_fen, r.refund_fen) for r in rows)
    assert paid == [
        ("BILL000001", "SUCCESS", 200, 0),
        ("BILL000002", "REFUND", 0, 200),
        ("BILL000002", "SUCCESS", 200, 0),
    ]
    assert all(r.mchid == pay_client_mchid(app) and r.currency == "CNY" for r in rows)
    assert {r.openid for r in rows} == {"oPayer1", "oPayer2"}


def pay_client_mchid(app: Any) -> str:
    with app.app_context():
        return pay_client().config.mchid


# -- errors ----------------------------------------------------------------------------------------------
def test_wrongly_signed_answers_are_refused(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        client.create_jsapi("SIGNED0001", "核验费", 200, "oPayer", expires())
        sandbox_faults.set_faults(redis_client(), wrong_key=True)
        with pytest.raises(PayResponseUnverified) as refused:
            client.query("SIGNED0001")
        assert refused.value.code == "RESPONSE_SIGNATURE_INVALID" and not refused.value.retryable
        with pytest.raises(PayResponseUnverified):
            client.create_native("SIGNED0002", "核验费", 200, expires())
        sandbox_faults.set_faults(redis_client(), wrong_key=None)
        assert client.query("SIGNED0001").trade_state == "NOTPAY"


def test_server_errors_are_retryable(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        client = pay_client()
        sandbox_faults.set_faults(redis_client(), fail_500=1)
        with pytest.raises(PayError) as failed:
            client.create_native("RETRY00001", "核验费", 200, expires())
        assert (failed.value.code, failed.value.status, failed.value.retryable) == ("SYSTEM_ERROR", 500, True)
        assert client.create_native("RETRY00001", "核验费", 200, expires()).startswith("weixin://")


def test_network_errors_are_retryable(app_factory: Any) -> None:
    app, _ = pay_app(app_factory, WECHAT_PAY_API_BASE="http://127.0.0.1:9")
    with app.app_context(), pytest.raises(PayError) as failed:
        pay_client().query("NETWORK001")
    assert failed.value.code == "NETWORK_ERROR" and failed.value.retryable and failed.value.status is None


def test_the_sandbox_refuses_a_request_signed_with_another_key(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with app.app_context():
        impostor = PayClient(dataclasses.replace(pay_client().config, private_key_pem=pem))
        with pytest.raises(PayError) as refused:
            impostor.query("IMPOSTOR01")
    assert (refused.value.code, refused.value.status, refused.value.retryable) == ("SIGN_ERROR", 401, False)


@pytest.mark.parametrize("amount", [2.0, True, 0, -200, "200"])
def test_amounts_are_positive_integer_fen(app_factory: Any, amount: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context(), pytest.raises(ValueError, match="fen"):
        pay_client().create_native("AMOUNT0001", "核验费", amount, expires())


def test_time_expire_must_be_aware_and_is_sent_in_beijing_time(app_factory: Any) -> None:
    app, _ = pay_app(app_factory)
    with app.app_context():
        with pytest.raises(ValueError, match="timezone"):
            pay_client().create_native("NAIVE00001", "核验费", 200, datetime.now() + timedelta(minutes=3))
        pay_client().create_native("AWARE00001", "核验费", 200, datetime(2099, 1, 1, tzinfo=UTC))
        body = next(c for c in redis_client().lrange(state.CALLS, 0, -1) if "AWARE00001" in c)
    assert "2099-01-01T08:00:00+08:00" in body


def test_platform_certificate_mode(app_factory: Any, tmp_path: Path, live_server: Any) -> None:
    cert_dir = tmp_path / "wechatpay-certs"
    app, recorder = pay_app(app_factory, WECHAT_PAY_CERT_DIR=str(cert_dir))
    with app.app_context():
        client = pay_client()
        assert client.config.public_key_id is None
        client.create_jsapi(
            "CERTMODE01", "核验费", 200, "oPayer", expires()
        )  # downloads the certificate first
        assert [p.suffix for p in cert_dir.iterdir()] == [".pem"]
        assert client.query("CERTMODE01").trade_state == "NOTPAY"
        keys = sandbox_pay_keys.app_keys()
        assert client.platform_key(keys.platform_cert_serial) is not None
        assert client.platform_key("ABCDEF") is None and client.platform_key("PUB_KEY_ID_X") is None
    _pay(app, "CERTMODE01")
    with app.app_context():
        [delivery] = sandbox_notify.deliver_due_notifications(redis_client())
    assert delivery["status"] == 204
    assert recorder.calls[0].out_trade_no == "CERTMODE01"
