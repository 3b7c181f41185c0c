"""The floor plus one Redis round trip: a bound, not a competitor.

The floor (floor_app.py) with the least dedupe any endpoint can do against WeChat's retries: one
`SET <MsgId key> <reply> NX GET EX 60` per message (store the reply unless a try of the same message
stored one, and answer that one then). No user lookup, no handler. Whatever deduplicates through
Redis on this stack costs at least this much, so its rate is the ceiling for the real app;
bench/wechat_endpoint.py reports it beside the targets.
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, abort, request
from wechatpy import create_reply, parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

TOKEN = os.environ["WECHAT_TOKEN"]
r = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True)

app = Flask(__name__)


@app.post("/wechat")
def wechat() -> Response:
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
    reply = create_reply(f"收到：{getattr(message, 'content', '')}", message).render()
    earlier = r.set(f"bench:floor-redis:{message.id}", reply, nx=True, get=True, ex=60)
    return Response(earlier or reply, content_type="application/xml")
