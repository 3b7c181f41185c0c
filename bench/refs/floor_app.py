"""The floor of this stack: Flask + wechatpy, nothing else.

It checks the signature, parses the message and replies, which every /wechat endpoint on Flask and
wechatpy must do; bench/wechat_endpoint.py serves it with gunicorn beside the real app, so the
real app's cost above this is what dedupe, the user lookup and the handler add.
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from wechatpy import create_reply, parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.utils import check_signature

TOKEN = os.environ["WECHAT_TOKEN"]

app = Flask(__name__)


def signed_reply() -> tuple[BaseMessage, str]:
    """Check the signature (403 if wrong), parse the message and render the reply."""
    try:
        check_signature(
            TOKEN,
            request.args.get("signature", ""),
            request.args.get("timestamp", ""),
            request.args.get("nonce", ""),
        )
    except InvalidSignatureException:
        abort(403)
    message = parse_message(request.get_data())
    reply = create_reply(f"收到：{getattr(message, 'content', '')}", message)
    return message, reply.render()


@app.post("/wechat")
def wechat() -> Response:
    return Response(signed_reply()[1], content_type="application/xml")
