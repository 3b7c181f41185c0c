"""The audit at the end of every load run (bench/load_journey.py) and of its short CI version
(tests/test_load_short.py): what must hold however many students came at once.

- every order WeChat Pay (the sandbox) says is paid is paid in the service, and applied exactly
  once (one `applied` payment event), and the service has no paid order WeChat Pay does not know;
- every decision was pushed exactly once: one 审核结果通知 in the student's chat per decision, the
  outbox row of its announcement done, and (for decisions of the last 9 minutes, as long as the
  sandbox remembers them) its client_msg_id received by WeChat;
- after a drain period, no attempt is stuck where only the system can move it (paid but still
  待缴费, 核验中), and the outbox has nothing pending;
- no orphan file in storage (an object no photo, signature or document names), and no row naming a
  file storage does not have;
- the dead-letter list is empty.

It reads the stack's PostgreSQL, Redis (the sandbox's keys: WeChat's side of the story) and S3
directly, as an auditor with read access would, so it imports nothing of the service.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.stack import StackState

PAY_ORDERS = "sandbox:pay:orders"  # the sandbox's set of order keys (app/sandbox/pay/orders.py)
RESULT_TITLE = "审核结果通知"
# The sandbox, like WeChat, remembers a template's client_msg_id for 10 minutes: older decisions are
# checked by the chat alone.
CLIENT_MSG_ID_KEPT_SECONDS = 540
DECIDED = ("approved", "returned", "refused")
# Only the system moves these on: after the drain they are stuck.
SYSTEM_STATES = ("verifying",)
# These wait for a person (a student who walked away, a reviewer): reported, not failed.
PERSON_STATES = ("awaiting_payment", "pending_review", "in_review")
PAID_BUT_WAITING = (
    "(s.status = 'awaiting_payment' AND EXISTS"
    " (SELECT 1 FROM payment_orders o WHERE o.submission_id = s.id AND o.status = 'paid'))"
)


@dataclass
class Findings:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, line: str) -> None:
        self.lines.append("PROBLEM: " + line)
        self.problems.append(line)

    def as_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "problems": self.problems}


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _sample(items: Any, n: int = 5) -> str:
    items = sorted(items)
    return ", ".join(map(str, items[:n])) + (" …" if len(items) > n else "")


def audit(stack: StackState, drain_seconds: float = 30) -> Findings:
    import boto3
    import psycopg
    import redis

    found = Findings()
    r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    with psycopg.connect(_libpq(stack.database_url), autocommit=True) as conn:
        # --- drain: the workers finish what is due (pushes, identity checks) ----------------------
        deadline = time.monotonic() + drain_seconds
        while True:
            pending = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
            stuck = conn.execute(
                f"SELECT count(*) FROM submissions s WHERE s.status = ANY(%s) OR {PAID_BUT_WAITING}",
                (list(SYSTEM_STATES),),
            ).fetchone()[0]
            if (pending == 0 and stuck == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        _payments(conn, r, found)
        _pushes(conn, r, found)
        _states(conn, found)
        _storage(conn, stack, found, boto3)
    return found


def _payments(conn: Any, r: Any, found: Findings) -> None:
    paid_there: set[str] = set()
    for key in r.smembers(PAY_ORDERS):
        raw = r.get(key)
        order = json.loads(raw) if raw else {}
        if order.get("trade_state") in ("SUCCESS", "REFUND"):
            paid_there.add(order["out_trade_no"])
    rows = conn.execute(
        "SELECT o.out_trade_no, o.status, s.paid_at IS NOT NULL,"
        " (SELECT count(*) FROM payment_events e WHERE e.out_trade_no = o.out_trade_no"
        "  AND e.outcome LIKE 'applied%%' AND e.source <> 'refund_notify')"
        " FROM payment_orders o JOIN submissions s ON s.id = o.submission_id"
    ).fetchall()
    here = {row[0]: row for row in rows}
    paid_here = {no for no, (_, status, _, _) in here.items() if status in ("paid", "refunded")}
    found.note(f"orders: {len(rows)} in the service, {len(paid_there)} paid at WeChat Pay (the sandbox)")
    if missing := paid_there - paid_here:
        found.fail(f"{len(missing)} order(s) paid at WeChat Pay but not in the service: {_sample(missing)}")
    if unknown := paid_here - paid_there:
        found.fail(
            f"{len(unknown)} order(s) paid in the service that WeChat Pay never paid: {_sample(unknown)}"
        )
    applied = Counter({no: here[no][3] for no in paid_there & paid_here})
    if wrong := {no: n for no, n in applied.items() if n != 1}:
        counts = _sample(f"{k}×{v}" for k, v in wrong.items())
        found.fail(f"{len(wrong)} paid order(s) not applied exactly once: {counts}")
    if unpaid := {no for no in paid_here if not here[no][2]}:
        found.fail(f"{len(unpaid)} paid order(s) whose attempt has no paid_at: {_sample(unpaid)}")
    events = conn.execute("SELECT outcome, count(*) FROM payment_events GROUP BY outcome").fetchall()
    found.note("payment events: " + (", ".join(f"{o} {n}" for o, n in sorted(events)) or "none"))


def _pushes(conn: Any, r: Any, found: Findings) -> None:
    decided = conn.execute(
        "SELECT u.openid, count(*) FROM submissions s JOIN users u ON u.id = s.user_id"
        " WHERE s.status = ANY(%s) GROUP BY u.openid",
        (list(DECIDED),),
    ).fetchall()
    wrong: list[str] = []
    total = 0
    for openid, decisions in decided:
        total += decisions
        cards = sum(
            1
            for raw in r.lrange(f"sandbox:chat:{openid}", 0, -1)
            if (entry := json.loads(raw)).get("type") == "template" and entry.get("title") == RESULT_TITLE
        )
        if cards != decisions:
            wrong.append(f"{openid}: {decisions} decision(s), {cards} card(s)")
    found.note(f"decisions: {total} of {len(decided)} students; result cards in their chats checked")
    if wrong:
        found.fail(
            f"{len(wrong)} student(s) without exactly one 审核结果通知 per decision: {_sample(wrong, 3)}"
        )
    rows = conn.execute(
        "SELECT s.id, o.status, u.openid, o.payload ->> 'client_msg_id',"
        " s.decided_at > now() - make_interval(secs => %s)"
        " FROM submissions s JOIN users u ON u.id = s.user_id"
        " LEFT JOIN outbox o ON o.idempotency_key = 'decision:' || s.id WHERE s.status = ANY(%s)",
        (CLIENT_MSG_ID_KEPT_SECONDS, list(DECIDED)),
    ).fetchall()
    if not_done := [sid for sid, status, *_ in rows if status != "done"]:
        found.fail(f"{len(not_done)} decision(s) whose announcement is not done: {_sample(not_done)}")
    # What WeChat (the sandbox) received, by client_msg_id: each recent decision's own, once.
    recent = [(sid, openid, msg_id) for sid, _, openid, msg_id, fresh in rows if fresh]
    pipe = r.pipeline()
    for _, openid, msg_id in recent:
        pipe.exists(f"sandbox:tmpl_sent:{openid}:{msg_id}")
    if unseen := [sid for (sid, _, _), seen in zip(recent, pipe.execute(), strict=True) if not seen]:
        found.fail(f"{len(unseen)} decision(s) whose client_msg_id WeChat never received: {_sample(unseen)}")
    found.note(f"client_msg_id: {len(recent) - len(unseen)} of {len(recent)} recent decisions received")


def _states(conn: Any, found: Findings) -> None:
    counts = dict(conn.execute("SELECT status, count(*) FROM submissions GROUP BY status").fetchall())
    found.note("attempts: " + (", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none"))
    if stuck := {s: counts[s] for s in SYSTEM_STATES if counts.get(s)}:
        found.fail(f"attempts stuck after the drain: {stuck}")
    paid_waiting = conn.execute(f"SELECT count(*) FROM submissions s WHERE {PAID_BUT_WAITING}").fetchone()[0]
    if paid_waiting:
        found.fail(f"{paid_waiting} attempt(s) paid but still 待缴费")
    if waiting := {s: counts[s] for s in PERSON_STATES if counts.get(s)}:
        found.note(f"waiting for a person (not a failure): {waiting}")
    outbox = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    found.note("outbox: " + ", ".join(f"{s} {n}" for s, n in sorted(outbox.items())))
    if outbox.get("pending"):
        found.fail(f"{outbox['pending']} outbox row(s) still pending after the drain")
    if outbox.get("dead"):
        kinds = conn.execute("SELECT kind, last_error FROM outbox WHERE status = 'dead' LIMIT 3").fetchall()
        examples = "; ".join(f"{kind}: {(error or '')[:80]}" for kind, error in kinds)
        found.fail(f"dead letters: {outbox['dead']} ({examples})")


def _storage(conn: Any, stack: StackState, found: Findings, boto3: Any) -> None:
    prefix = stack.env["MEDIA_URL"].removeprefix(f"s3://{stack.bucket}").strip("/")  # s3://bucket/prefix
    client = boto3.client(
        "s3",
        endpoint_url=stack.s3,
        region_name="us-east-1",
        aws_access_key_id=stack.env["MEDIA_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["MEDIA_S3_SECRET_ACCESS_KEY"],
    )
    stored: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket):
        for item in page.get("Contents", []):
            name = item["Key"]
            stored.add(name[len(prefix) + 1 :] if prefix and name.startswith(prefix + "/") else name)
    named: set[str] = set()
    for query in (
        "SELECT original_key FROM photos",
        "SELECT normalized_key FROM photos WHERE normalized_key IS NOT NULL",
        "SELECT signature_key FROM submissions WHERE signature_key IS NOT NULL",
        "SELECT storage_key FROM documents",
    ):
        named.update(row[0] for row in conn.execute(query))
    found.note(f"storage: {len(stored)} object(s), {len(named)} named by rows")
    if orphans := stored - named:
        found.fail(f"{len(orphans)} orphan file(s) in storage: {_sample(orphans, 3)}")
    if missing := named - stored:
        found.fail(f"{len(missing)} file(s) named by rows but not in storage: {_sample(missing, 3)}")
