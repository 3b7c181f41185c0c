"""Notifications (支付通知 / 退款结果通知) as WeChat Pay sends them: the envelope with its resource
encrypted under the APIv3 key, a fresh signature per delivery, WeChat Pay's retry schedule until a
2xx answer.

Delivery is a due-queue in Redis (score = when). Whoever calls `deliver_due_notifications(r, now)`
delivers what is due at `now`: the notifier thread (notifier.py) on the real clock, or a test.
https://pay.weixin.qq.com/doc/v3/merchant/4012791861 (支付成功回调通知)
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests
from flask import Flask, current_app
from redis import Redis

from app.integrations import redis_client
from app.sandbox import store
from app.sandbox.pay import PREFIX, notifier
from app.sandbox.pay.faults import FAULTS
from app.sandbox.pay.merchant import current_merchant
from app.sandbox.pay.wire import encrypt, now_rfc3339, signature_headers

DUE = PREFIX + "notify:due"  # zset notification id -> when it is due (epoch seconds)
DELIVERIES = PREFIX + "deliveries"  # list of JSON delivery attempts, oldest first (for tests/phone)
# WeChat Pay retries an unanswered notification after these delays (15 retries, ~24 h 4 m in all).
RETRY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
NOTIFY_TIMEOUT_SECONDS = 5.0


def build_notification(
    apiv3_key: str,
    event_type: str,
    original_type: str,
    summary: str,
    resource: dict[str, Any],
    nid: str | None = None,
) -> dict[str, Any]:
    """The notification envelope WeChat Pay posts, its resource encrypted with the APIv3 key."""
    return {
        "id": nid or str(uuid.uuid4()),
        "create_time": now_rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            **encrypt(
                apiv3_key, json.dumps(resource, ensure_ascii=False, separators=(",", ":")), original_type
            ),
        },
    }


def signed_post(envelope: dict[str, Any] | bytes, r: Redis) -> tuple[dict[str, str], bytes]:
    """Headers and body of one delivery: signed now (every retry carries a fresh signature)."""
    body = (
        envelope
        if isinstance(envelope, bytes)
        else json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    )
    headers = {"Content-Type": "application/json", **signature_headers(body, r)}
    return headers, body


def enqueue_notification(
    r: Redis, url: str, event_type: str, original_type: str, summary: str, resource: dict[str, Any]
) -> str | None:
    """Queue a notification for immediate delivery (or as the faults say). Returns its id."""
    envelope = build_notification(current_merchant().apiv3_key, event_type, original_type, summary, resource)
    nid = envelope["id"]
    if r.hget(FAULTS, "drop_notifications") == "1":
        _record_delivery(r, {"id": nid, "event_type": event_type, "url": url, "dropped": True})
        return None
    delay = float(r.hget(FAULTS, "notify_delay_seconds") or 0)
    record = {"id": nid, "url": url, "envelope": envelope, "attempts": 0, "created_at": store.now(r)}
    r.set(f"{PREFIX}notify:{nid}", json.dumps(record, ensure_ascii=False))
    r.zadd(DUE, {nid: store.now(r) + delay})
    notifier.wake(current_app._get_current_object(), _deliver_all, _next_due)  # type: ignore[attr-defined]
    return nid


def _record_delivery(r: Redis, entry: dict[str, Any]) -> None:
    r.rpush(DELIVERIES, json.dumps({"at": time.time(), **entry}, ensure_ascii=False))
    r.ltrim(DELIVERIES, -500, -1)


def deliveries(r: Redis) -> list[dict[str, Any]]:
    return [json.loads(v) for v in r.lrange(DELIVERIES, 0, -1)]


def deliver_due_notifications(r: Redis, now: float | None = None) -> list[dict[str, Any]]:
    """Post every notification due at `now` once; reschedule the unanswered ones. Needs an app context.

    Several deliverers (threads, processes, a test) may run at once: ZREM decides who owns an item.
    """
    now = store.now(r) if now is None else now
    done: list[dict[str, Any]] = []
    for nid in r.zrangebyscore(DUE, "-inf", now):
        if not r.zrem(DUE, nid):
            continue  # someone else took it
        raw = r.get(f"{PREFIX}notify:{nid}")
        if raw is None:
            continue
        record = json.loads(raw)
        headers, body = signed_post(record["envelope"], r)
        status: int | None
        try:
            response = requests.post(
                record["url"], data=body, headers=headers, timeout=NOTIFY_TIMEOUT_SECONDS
            )
            status, answer = response.status_code, response.text[:200]
        except requests.RequestException as exc:
            status, answer = None, type(exc).__name__
        record["attempts"] += 1
        entry = {
            "id": nid,
            "event_type": record["envelope"]["event_type"],
            "url": record["url"],
            "attempt": record["attempts"],
            "scheduled_at": now,
            "status": status,
            "answer": answer,
        }
        if status is not None and 200 <= status < 300:
            r.delete(f"{PREFIX}notify:{nid}")
            entry["final"] = "acknowledged"
        elif record["attempts"] > len(RETRY_SCHEDULE):
            r.delete(f"{PREFIX}notify:{nid}")
            entry["final"] = "gave_up"
        else:
            entry["next_at"] = now + RETRY_SCHEDULE[record["attempts"] - 1]
            r.set(f"{PREFIX}notify:{nid}", json.dumps(record, ensure_ascii=False))
            r.zadd(DUE, {nid: entry["next_at"]})
        _record_delivery(r, entry)
        done.append(entry)
    return done


def resume_delivery(app: Flask) -> None:
    """At the start of the emulator's own process: with a shared Redis, notifications queued before a
    restart are still due, and nothing else would wake the notifier for them."""
    with app.app_context():
        if _next_due(redis_client()) is not None:
            notifier.wake(app, _deliver_all, _next_due)


def _deliver_all(r: Redis) -> None:
    deliver_due_notifications(r)


def _next_due(r: Redis) -> float | None:
    """When the earliest queued notification is due; None when the queue is empty."""
    first = r.zrange(DUE, 0, 0, withscores=True)
    return float(first[0][1]) if first else None
