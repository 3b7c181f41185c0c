"""GET /v3/certificates: the platform certificate, encrypted, for platform-certificate mode (a
merchant configured without a WeChat Pay public key downloads it to check answers and notifications).

https://pay.weixin.qq.com/doc/v3/merchant/4012551764 (下载平台证书)
"""

from __future__ import annotations

from cryptography import x509
from flask import Response

from app.sandbox import bp
from app.sandbox.pay.keys import app_keys
from app.sandbox.pay.merchant import Merchant
from app.sandbox.pay.wire import answer, encrypt, v3_api
from app.services.localtime import BEIJING


@bp.get("/pay/v3/certificates")
@v3_api
def certificates(merchant: Merchant) -> Response:
    keys = app_keys()
    cert = x509.load_pem_x509_certificate(keys.platform_cert_pem.encode())
    entry = {
        "serial_no": keys.platform_cert_serial,
        "effective_time": cert.not_valid_before_utc.astimezone(BEIJING).isoformat(timespec="seconds"),
        "expire_time": cert.not_valid_after_utc.astimezone(BEIJING).isoformat(timespec="seconds"),
        "encrypt_certificate": encrypt(merchant.apiv3_key, keys.platform_cert_pem, "certificate"),
    }
    return answer({"data": [entry]}, merchant=merchant)
