"""The emulated WeChat Pay (api.mch.weixin.qq.com, API v3) at WECHAT_PAY_API_BASE.

Paths mirror WeChat Pay's exactly (`/_sandbox/pay` + `/v3/pay/transactions/jsapi`), so the service's
client (wechatpayv3 behind app/integrations/wechat_pay.py) talks to it unchanged. Faithful to the wire:

- every request's `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,
  timestamp=…,serial_no=…` is verified with the merchant's public key (401 SIGN_ERROR otherwise);
- every answer is signed with the emulator's own "WeChat Pay" key (Wechatpay-Serial/Signature/
  Timestamp/Nonce over "timestamp\\nnonce\\nbody\\n"), in public-key mode (serial PUB_KEY_ID_…) or
  platform-certificate mode (GET /v3/certificates serves an encrypted self-signed certificate);
- errors are WeChat Pay's JSON `{"code", "message"}` with its HTTP statuses and codes;
- orders live in Redis: NOTPAY → SUCCESS (paid) / CLOSED (closed, or past time_expire) → REFUND;
- notifications are signed, AES-256-GCM encrypted with the APIv3 key and posted to the order's
  notify_url with WeChat Pay's retry schedule until a 2xx answer.

Notification delivery is a due-queue in Redis (`sandbox:pay:notify:due`, score = when). Whoever
calls `deliver_due_notifications(r, now)` delivers what is due at `now`: a daemon thread in the
process serving the emulator (its own with SANDBOX_URL) does it on the real clock
(WECHAT_PAY_SANDBOX_NOTIFY_THREAD, on by default); tests turn the thread off and pass `now`
themselves, or call POST /_sandbox/pay/_ctl/deliver {"now": …}.
Signatures always carry the real time, whatever `now` the schedule is driven with.

Sandbox-only controls (not WeChat Pay's) sit under /_sandbox/pay/_ctl/… and the two "user" actions:
POST /_sandbox/pay/<out_trade_no> {"action": "pay"|"cancel"} (the phone's pay sheet) and
POST /_sandbox/pay/scan {"code_url", "openid"} (scanning a Native QR code with the phone).
Faults for tests (POST /_sandbox/pay/_ctl/faults): drop_notifications, notify_delay_seconds,
wrong_key (answers and notifications signed with a key WeChat Pay does not have), fail_500 (the
next N API calls answer 500 SYSTEM_ERROR).

Modules: `keys` (the emulator's and the test merchant's key material), `merchant` (the merchant
registered here), `wire` (request verification, answer signing, resource encryption), `orders`,
`refunds`, `certificates`, `bills`, `notifications` (the due-queue and its delivery), `notifier`
(the delivery thread), `faults` and `controls` (the phone's pay sheet and the sandbox-only controls).
It restates WeChat Pay's contract (bill columns, signatures, key handling) rather than importing the
service's client, so a wrong definition cannot pass on both sides.

Reference: https://pay.weixin.qq.com/doc/v3/merchant/4012365342 (签名与验签), 4012791861 (支付通知)
"""

from __future__ import annotations

PREFIX = "sandbox:pay:"  # every Redis key the emulated WeChat Pay keeps

# Routes register on the sandbox blueprint when their modules are imported.
from app.sandbox.pay import bills, certificates, controls, orders, refunds  # noqa: E402,F401
