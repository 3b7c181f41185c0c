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
from flask import Flask, Response
from floor_app import signed_reply

r = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True)

app = Flask(__name__)


@app.post("/wechat")
def wechat() -> Response:
    message, reply = signed_reply()
    earlier = r.set(f"bench:floor-redis:{message.id}", reply, nx=True, get=True, ex=60)
    return Response(earlier or reply, content_type="application/xml")
