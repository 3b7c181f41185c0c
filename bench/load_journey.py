"""The whole journey under load, against the stack (`make stack`, bench/stack.py), with Locust's API.

    .venv/bin/python bench/load_journey.py --duration 180 --users 20 --spawn-rate 2
    .venv/bin/python bench/load_journey.py --state-file var/stack/stack.json --reviewers 2

Simulated students, each journey a new WeChat user: 关注 on the sandbox phone, sign in through the
emulated OAuth2, bind an identity the sandbox roster knows (实名绑定), link 湖南师范大学's open batch
(pay first, 2 元), read the 须知, upload photos (480×640 JPEGs and 12 MP phone photos; a third upload
a failing picture first), submit, pay by scanning in the sandbox (WeChat Pay's notification arrives
from the emulator's notifier, with its retries), wait for the identity check, wait for the review,
see the 审核结果通知 arrive in the phone's chat, and sign the final confirmation. Simulated reviewers
sign in on the staff pages and claim and approve what waits (the forms' CSRF tokens, as a browser).

Run it as its own process (gevent patches the whole interpreter): never import it into pytest.
After `--duration` the students start no new journey; those under way finish (reviewers keep
working) for up to `--drain` seconds; then the audit (bench/journey_audit.py) runs, and the run fails
(exit 1) when it finds anything. The report goes to stdout and, with --report, to a JSON file.
"""

from __future__ import annotations

# Locust patches the standard library with gevent when imported: first, before anything opens a socket.
import locust  # isort: skip  # noqa: F401

import argparse
import base64
import io
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import gevent
import psutil
from locust import HttpUser, between, events, task
from locust.env import Environment
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.journey_audit import audit
from bench.machine import cpu_model
from bench.stack import DEFAULT_STATE, StackState, database_name

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "photos"
HUNAN = "10542"  # 湖南师范大学: pay first, identity check, review, signed final confirmation
ROSTER_MAX = 900  # the sandbox roster keeps 1,000 entries; numbers not on it match too
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

# --- what the students carry -------------------------------------------------------------------


@dataclass
class Pictures:
    small: bytes  # 480×640, passes 湖南师范大学's checks after the auto-fix
    phone: bytes  # 4000×3000 (12 MP) phone photo, cropped and compressed by the auto-fix
    failing: bytes  # 480×640, no face: checked, stored, failed


def pictures() -> Pictures:
    coffee = Image.open(FIXTURES / "no_face_coffee.jpg").convert("RGB").resize((480, 640))
    out = io.BytesIO()
    coffee.save(out, "JPEG", quality=92)
    return Pictures(
        small=(FIXTURES / "id_ok.jpg").read_bytes(),
        phone=(FIXTURES / "phone_4000x3000.jpg").read_bytes(),
        failing=out.getvalue(),
    )


def unique(jpeg: bytes, tag: str) -> bytes:
    """The same picture with a JPEG comment of its own right after SOI: every upload is a new
    file in storage (files are stored by content), the pixels are the same."""
    text = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def signature_data_url() -> str:
    image = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(
        [(20, 80), (80, 30), (140, 90), (200, 35), (270, 85)], fill=(17, 17, 17, 255), width=4
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


class Identities:
    """Valid resident ID numbers (GB 11643 check digit), none used twice in a run."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.used: set[str] = set()

    def next(self) -> tuple[str, str]:
        while True:
            born = date(1975, 1, 1) + timedelta(days=self.random.randrange(11000))
            body = f"430102{born:%Y%m%d}{self.random.randrange(1000):03d}"
            if body not in self.used:
                self.used.add(body)
                check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
                name = self.random.choice(SURNAMES) + "".join(self.random.choices(GIVEN, k=2))
                return body + check, name


# --- shared state of the run -------------------------------------------------------------------


class Run:
    stack: StackState
    pictures: Pictures
    signature: str
    identities: Identities
    phone_share: float
    batch_id: int | None = None
    draining = False
    in_flight = 0
    started = 0
    completed = 0
    rostered = 0
    journey_seconds: ClassVar[list[float]] = []
    user_seq = 0
    reviewer_seq = 0


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
QUEUE_CLAIM = re.compile(r'action="/review/submissions/(\d+)/claim"')


class JourneyError(Exception):
    pass


def fire(name: str, started: float, exc: Exception | None = None, kind: str = "step") -> None:
    """A step measured by hand (waits and polls): reported beside the HTTP requests."""
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        exception=exc,
        context={},
    )


class Student(HttpUser):
    """One journey per task run; a new WeChat user each time."""

    wait_time = between(0.5, 2)
    weight = 10

    def _json(
        self, method: str, url: str, name: str, expect: int | tuple[int, ...] = 200, **kwargs: Any
    ) -> Any:
        if url.startswith(Run.stack.sandbox):
            # A new connection for each call to WeChat's side, as each phone has its own: a reused one
            # idle past the emulator's keep-alive (5 s) can be closed by gunicorn just as the next
            # request arrives (connection reset; seen 2 in 2,000 calls on the loaded machine).
            kwargs["headers"] = {**kwargs.get("headers", {}), "Connection": "close"}
        with self.client.request(method, url, name=name, catch_response=True, **kwargs) as response:
            if response.status_code not in (expect if isinstance(expect, tuple) else (expect,)):
                # Short: Locust groups the errors by their text.
                why = response.text[:80] if response.status_code else repr(response.error)[:120]
                response.failure(f"{response.status_code}: {why}")
                raise JourneyError(f"{name}: {response.status_code} {response.text[:200]}")
            return response.json() if response.content else None

    def _wait_for(self, name: str, check: Any, seconds: float, every: float = 1.0) -> Any:
        began = time.perf_counter()
        deadline = time.monotonic() + seconds
        while True:
            found = check()
            if found:
                fire(name, began)
                return found
            if time.monotonic() > deadline:
                exc = JourneyError(f"{name}: not within {seconds:.0f} s")
                fire(name, began, exc)
                raise exc
            gevent.sleep(every)

    @task
    def journey(self) -> None:
        if Run.draining:
            gevent.sleep(1)
            return
        Run.in_flight += 1
        Run.started += 1
        began = time.perf_counter()
        try:
            self._journey()
        except JourneyError:
            fire("journey", began, JourneyError("the journey did not finish"), kind="journey")
        else:
            Run.completed += 1
            Run.journey_seconds.append(time.perf_counter() - began)
            fire("journey", began, kind="journey")
        finally:
            Run.in_flight -= 1
            self.client.cookies.clear()

    def _journey(self) -> None:
        sandbox = Run.stack.sandbox
        Run.user_seq += 1
        seq = Run.user_seq
        phone = f"{sandbox}/_sandbox/phone"
        openid = self._json(
            "POST", f"{phone}/users", "sandbox: new user", 201, json={"nickname": f"学生{seq}"}
        )["user"]["openid"]
        followed = self._json("POST", f"{phone}/follow", "关注", json={"openid": openid})
        if followed.get("failed"):
            raise JourneyError(f"关注: {followed}")
        number, name = Run.identities.next()
        if Run.rostered < ROSTER_MAX:
            Run.rostered += 1
            self._json(
                "POST",
                f"{sandbox}/_sandbox/roster",
                "sandbox: roster entry",
                (200, 201),
                json={"id_number": number, "name": name, "result": "match"},
            )
        with self.client.get(
            f"{sandbox}/_sandbox/login-as/{openid}",
            params={"next": "/h5/photo"},
            headers={"Connection": "close"},
            name="OAuth2 sign-in",
            catch_response=True,
        ) as page:
            token = CSRF_META.search(page.text) if page.status_code == 200 else None
            if token is None:
                page.failure(f"{page.status_code} at {page.url}")
                raise JourneyError("sign-in")
        headers = {"X-CSRFToken": token.group(1)}
        self._json(
            "PUT",
            "/api/v1/me/identity",
            "实名绑定",
            headers=headers,
            json={"id_type": "resident_id", "id_number": number, "name": name},
        )
        if Run.batch_id is None:
            batches = self._json("GET", f"/api/v1/schools/{HUNAN}/batches", "批次")["batches"]
            Run.batch_id = next(b["id"] for b in batches if b.get("open"))
        self._json(
            "PUT", "/api/v1/me/enrollment", "关联学校", headers=headers, json={"batch_id": Run.batch_id}
        )
        self._json("POST", "/api/v1/me/notice", "须知", headers=headers)
        if seq % 3 == 0:
            failed = self._json(
                "POST",
                "/api/v1/me/photos",
                "上传 (failing)",
                201,
                headers=headers,
                files={"file": ("IMG_0001.jpg", unique(Run.pictures.failing, openid), "image/jpeg")},
            )
            if failed["passed"]:
                raise JourneyError("the failing photo passed")
        phone_photo = random.random() < Run.phone_share
        photo = self._json(
            "POST",
            "/api/v1/me/photos",
            "上传 (12 MP)" if phone_photo else "上传 (480×640)",
            201,
            headers=headers,
            files={
                "file": (
                    "IMG_0002.jpg",
                    unique(Run.pictures.phone if phone_photo else Run.pictures.small, openid),
                    "image/jpeg",
                )
            },
        )
        if not photo["passed"]:
            raise JourneyError(
                f"the photo failed: {[c for c in photo.get('checks', []) if not c.get('passed')]}"
            )
        created = self._json(
            "POST",
            "/api/v1/me/submissions",
            "开始核验 (下单)",
            201,
            headers=headers,
            json={"photo_id": photo["id"], "channel": "native"},
        )
        submission = f"/api/v1/me/submissions/{created['id']}"
        self._json(
            "POST",
            f"{sandbox}/_sandbox/pay/scan",
            "扫码支付",
            json={"code_url": created["order"]["code_url"], "openid": openid},
        )

        def status_is(*wanted: str) -> Any:
            def check() -> Any:
                status = self._json("GET", submission, "查询状态")["status"]
                if status in ("verify_failed", "refused", "returned", "cancelled", "refunded"):
                    raise JourneyError(f"status {status}")
                return status in wanted

            return check

        self._wait_for("到账并核验 (wait)", status_is("pending_review", "in_review", "approved"), 120)
        self._wait_for("审核 (wait)", status_is("approved"), 600, every=2)

        def card() -> bool:
            entries = self._json("GET", f"{phone}/chat", "手机聊天", params={"openid": openid})["entries"]
            return any(e.get("type") == "template" for e in entries)

        self._wait_for("结果推送到达 (wait)", card, 120)
        self._json(
            "POST",
            f"{submission}/confirm",
            "最终确认 (签名)",
            headers=headers,
            json={"pledge": True, "signature": Run.signature},
        )


class Reviewer(HttpUser):
    """A reviewer at the desk: the queue, 领取, 通过; signs in once."""

    wait_time = between(0.2, 0.5)
    weight = 0  # spawned by fixed_count
    fixed_count = 1

    def on_start(self) -> None:
        Run.reviewer_seq += 1
        accounts = Run.stack.reviewers or ["admin"]
        username = accounts[(Run.reviewer_seq - 1) % len(accounts)]
        page = self.client.get("/review/login", name="staff: login page")
        token = CSRF_INPUT.search(page.text)
        assert token is not None
        signed = self.client.post(
            "/review/login",
            data={"username": username, "password": Run.stack.admin_password, "csrf_token": token.group(1)},
            name="staff: sign in",
            allow_redirects=False,
        )
        if signed.status_code != 303:
            raise JourneyError(f"sign-in: {signed.status_code}")

    @task
    def review_one(self) -> None:
        queue = self.client.get("/review/?state=pending", name="staff: queue")
        ids = QUEUE_CLAIM.findall(queue.text)
        token = CSRF_INPUT.search(queue.text)
        if not ids or token is None:
            gevent.sleep(1)
            return
        chosen = random.choice(ids[:10])
        claimed = self.client.post(
            f"/review/submissions/{chosen}/claim",
            data={"csrf_token": token.group(1), "back": "/review/"},
            name="staff: 领取",
            allow_redirects=False,
        )
        if claimed.status_code != 303 or not claimed.headers.get("Location", "").endswith(
            f"/submissions/{chosen}"
        ):
            return  # another reviewer took it first
        page = self.client.get(f"/review/submissions/{chosen}", name="staff: decision page")
        token = CSRF_INPUT.search(page.text)
        if token is None:
            return
        with self.client.post(
            f"/review/submissions/{chosen}/decide",
            data={"csrf_token": token.group(1), "decision": "approve"},
            name="staff: 通过",
            allow_redirects=False,
            catch_response=True,
        ) as decided:
            if decided.status_code != 303:
                decided.failure(f"{decided.status_code}")


# --- CPU per process kind ----------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of each kind of process over the run: the stack's process trees (web, worker,
    sandbox, nginx, s3), PostgreSQL's backends of the stack's database (the postmaster's own
    processes serve every database of the cluster: left out), the Redis server (shared), this
    process. Sampled every second so that processes that come and go are counted."""

    def __init__(self, stack: StackState) -> None:
        self.stack = stack
        self.dbname = database_name(stack.database_url)
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}

    def _kinds(self) -> dict[int, str]:
        found: dict[int, str] = {}
        for kind, roots in self.stack.pids.items():
            for pid in roots:
                try:
                    root = psutil.Process(pid)
                    for p in [root, *root.children(recursive=True)]:
                        found[p.pid] = kind
                except psutil.NoSuchProcess:
                    pass
        for p in psutil.process_iter(["name", "cmdline"]):
            name = p.info["name"] or ""
            cmdline = " ".join(p.info["cmdline"] or [])
            if name.startswith("postgres") and f" {self.dbname} " in f" {cmdline} ":
                found[p.pid] = "postgresql"
            elif name.startswith("redis-server"):
                found[p.pid] = "redis"
        found[os.getpid()] = "locust"
        return found

    def sample(self, initial: bool = False) -> None:
        for pid, kind in self._kinds().items():
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            used = times.user + times.system
            if initial:
                self.first[pid] = used
            self.last[pid] = (kind, used)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (kind, used) in self.last.items():
            out[kind] = out.get(kind, 0.0) + used - self.first.get(pid, 0.0)
        return out

    def run(self) -> None:
        while True:
            gevent.sleep(1)
            self.sample()


# --- the run -----------------------------------------------------------------------------------


def percentiles(env: Environment) -> list[dict[str, Any]]:
    rows = []
    for entry in sorted(env.stats.entries.values(), key=lambda e: (e.method != "journey", e.name)):
        rows.append(
            {
                "step": entry.name,
                "kind": entry.method,
                "count": entry.num_requests,
                "failures": entry.num_failures,
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "max_ms": round(entry.max_response_time or 0),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE, help="written by bench/stack.py")
    parser.add_argument("--target", default="", help="the service's URL (default: the stack's nginx)")
    parser.add_argument("--duration", type=float, default=180, help="seconds of new journeys")
    parser.add_argument("--users", type=int, default=20, help="students at once")
    parser.add_argument("--spawn-rate", type=float, default=2, help="students started per second")
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--phone-share", type=float, default=0.3, help="share of 12 MP photos")
    parser.add_argument("--drain", type=float, default=120, help="seconds for journeys under way to finish")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--report", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)

    Run.stack = StackState.load(args.state_file)
    target = args.target or Run.stack.url
    Run.pictures = pictures()
    Run.signature = signature_data_url()
    Run.identities = Identities(args.seed)
    Run.phone_share = args.phone_share
    Reviewer.fixed_count = args.reviewers

    env = Environment(user_classes=[Student, Reviewer], host=target, events=events, stop_timeout=5)
    runner = env.create_local_runner()
    meter = CpuMeter(Run.stack)
    meter.sample(initial=True)
    sampler = gevent.spawn(meter.run)
    began = time.monotonic()
    runner.start(args.users + args.reviewers, spawn_rate=args.spawn_rate)
    gevent.sleep(args.duration)
    Run.draining = True
    load_seconds = time.monotonic() - began
    drain_until = time.monotonic() + args.drain
    while Run.in_flight and time.monotonic() < drain_until:
        gevent.sleep(0.5)
    runner.quit()
    meter.sample()
    sampler.kill()
    elapsed = time.monotonic() - began

    # The journeys finished before the audit looks; the worker may still be sending the last pushes.
    findings = audit(Run.stack, drain_seconds=30)
    cpu = meter.totals()
    completed = Run.completed
    report = {
        "cpu_model": cpu_model(),
        "cores": psutil.cpu_count(),
        "load_average_end": os.getloadavg(),
        "target": target,
        "users": args.users,
        "reviewers": args.reviewers,
        "spawn_rate": args.spawn_rate,
        "duration_s": round(load_seconds, 1),
        "elapsed_s": round(elapsed, 1),
        "journeys_started": Run.started,
        "journeys_completed": completed,
        "journeys_unfinished": Run.in_flight,
        "journeys_per_s": round(completed / elapsed, 3) if elapsed else 0,
        "journey_p50_s": round(sorted(Run.journey_seconds)[len(Run.journey_seconds) // 2], 1)
        if Run.journey_seconds
        else None,
        "errors": {f"{e.method} {e.name}: {e.error}": e.occurrences for e in env.stats.errors.values()},
        "steps": percentiles(env),
        "cpu_s": {k: round(v, 2) for k, v in sorted(cpu.items())},
        "cpu_ms_per_journey": {k: round(1000 * v / completed, 1) for k, v in sorted(cpu.items())}
        if completed
        else {},
        "audit": findings.as_dict(),
    }
    print_report(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    failed = bool(findings.problems) or completed == 0
    return 1 if failed else 0


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\nMachine: {report['cpu_model']} ({report['cores']} cores), load average at the end "
        f"{', '.join(f'{x:.1f}' for x in report['load_average_end'])}"
    )
    print(
        f"Run: {report['users']} students, {report['reviewers']} reviewers, spawn {report['spawn_rate']}/s, "
        f"{report['duration_s']} s of new journeys, {report['elapsed_s']} s in all, "
        f"against {report['target']}"
    )
    print(
        f"Journeys: {report['journeys_completed']} completed of {report['journeys_started']} started "
        f"({report['journeys_unfinished']} unfinished), {report['journeys_per_s']} per second; "
        f"median journey {report['journey_p50_s']} s"
    )
    print(f"\n{'step':<28} {'kind':<8} {'count':>6} {'fail':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for row in report["steps"]:
        print(
            f"{row['step']:<28} {row['kind']:<8} {row['count']:>6} {row['failures']:>5} "
            f"{row['p50_ms']:>8.0f} {row['p99_ms']:>8.0f} {row['max_ms']:>8}"
        )
    print("\nCPU per completed journey (ms):")
    for kind, ms in report["cpu_ms_per_journey"].items():
        print(f"  {kind:<11} {ms:>8.1f}   ({report['cpu_s'][kind]} s in all)")
    if report["errors"]:
        print("\nErrors:")
        for what, count in report["errors"].items():
            print(f"  {count} × {what}")
    print("\nAudit:")
    for line in report["audit"]["lines"]:
        print(f"  {line}")
    print(
        "  clean"
        if not report["audit"]["problems"]
        else f"  FAILED: {len(report['audit']['problems'])} problem(s)"
    )


if __name__ == "__main__":
    sys.exit(main())
