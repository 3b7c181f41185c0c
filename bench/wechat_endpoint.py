"""Benchmark POST /wechat under gunicorn against two reference apps, with wrk.

    .venv/bin/python bench/wechat_endpoint.py [--duration 15] [--connections 16] [--rate 200] [--skip-refs]

What it does, in one run (see bench/README.md for the prerequisites and how to read the output):
1. creates the `bench` PostgreSQL database if missing and migrates it;
2. starts the apps — the real one (wsgi:app with gunicorn.conf.py, 2 workers,
   APP_ENV=production, PostgreSQL, Redis), WeRoBot with its default settings, the floor (bare
   Flask + wechatpy), and the floor plus one Redis round trip (a bound, not a target) — under
   gunicorn on 127.0.0.1 and waits until each answers a signed probe;
3. runs wrk: a short warm-up per app, then the max-throughput runs in rounds (the apps take turns
   within each round, so a drifting virtual machine treats them alike; medians count), then a
   fixed-rate run per app;
4. prints a markdown table (requests/s, p50/p99, the ratios and PASS/FAIL against the targets) and
   writes it to bench/results/wechat_endpoint-<date>.md.

Every request is a distinct signed text message (its own MsgId, nonce and signature), generated just
before each wrk run so the timestamps are fresh; the real app dedupes by MsgId, and a repeated
message would only measure the dedupe shortcut. The senders are a pool of openids that followed the
account first (subscribe events posted to the real app), so the user lookup finds real rows.
wrk checks every response (status 200 and an XML reply); a run with any failed request, socket
error or reused message is reported as FAILED, never as fast.

Exit status: 0 all targets met, 1 a run failed (errors, bad replies, wrapped), 2 a target missed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import platform
import re
import runpy
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LUA = BENCH / "wrk" / "wechat.lua"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent

# Targets (bench/README.md says where they come from).
TARGET_VS_FLOOR = 0.45
TARGET_P99_AT_RATE_MS = 25.0
# Processes outside the benchmark keeping more cores than this busy mark a run as disturbed.
DISTURBED_CORES = 0.2

# What students type most, sent in turn: three keywords and a free text, as students send them.
CONTENTS = ("帮助", "你好", "绑定", "进度")
# What the real app does for each (the report says it, so a figure is read with its mix).
WHAT_IT_DOES = {
    "帮助": "keyword; reads the sender's batch fee (one SELECT)",
    "你好": "free text, kept for staff in the inbox (claimed first; one INSERT, a write)",
    "绑定": "keyword; no database",
    "进度": "keyword; the sender's progress (one SELECT)",
}
TO_USER = "gh_0123456789ab"

TEXT_XML = (
    "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content><MsgId>{msgid}</MsgId></xml>"
)
SUBSCRIBE_XML = (
    "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>"
)

# MsgIds unique across runs too: the real app's dedupe keys outlive a run by up to a minute.
_msgids = itertools.count(time.time_ns() // 100)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- signed messages ----------------------------------------------------------------------------


def signed_query(token: str, openid: str) -> tuple[str, str]:
    """WeChat's plain-mode query: signature = sha1 of sorted (token, timestamp, nonce)."""
    ts = str(int(time.time()))
    nonce = secrets.token_hex(8)
    signature = hashlib.sha1("".join(sorted((token, ts, nonce))).encode()).hexdigest()
    return f"signature={signature}&timestamp={ts}&nonce={nonce}&openid={openid}", ts


def raw_post(host: str, query: str, body: bytes) -> bytes:
    head = (
        f"POST /wechat?{query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def text_message(token: str, openid: str, index: int, texts: tuple[str, ...] = CONTENTS) -> tuple[str, bytes]:
    query, ts = signed_query(token, openid)
    content = texts[index % len(texts)]
    body = TEXT_XML.format(to=TO_USER, openid=openid, ts=ts, content=content, msgid=next(_msgids))
    return query, body.encode()


def write_requests(
    prefix: Path, count: int, threads: int, host: str, token: str, openids: list[str], texts: tuple[str, ...]
) -> None:
    """Thread i of wrk reads <prefix>.<i> (1-based): records "<length>\\n<raw request>"."""
    files = [open(f"{prefix}.{i + 1}", "wb") for i in range(threads)]  # noqa: SIM115
    try:
        for n in range(count):
            # Each sender goes through every content in turn (not always the same one).
            query, body = text_message(token, openids[n % len(openids)], n + n // len(openids), texts)
            raw = raw_post(host, query, body)
            files[n % threads].write(b"%d\n%s" % (len(raw), raw))
    finally:
        for f in files:
            f.close()


def post(port: int, query: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", f"/wechat?{query}", body=body, headers={"Content-Type": "text/xml"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def is_reply(status: int, body: bytes) -> bool:
    # Mirrors the check in bench/wrk/wechat.lua.
    return status == 200 and b"<xml>" in body and b"<MsgType>" in body


# --- servers ------------------------------------------------------------------------------------


@dataclass
class App:
    key: str
    label: str
    gunicorn_args: list[str]
    env: dict[str, str]
    server: str  # how gunicorn runs it, for the table
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(app: App, workdir: Path) -> None:
    app.port = free_port()
    app.log_path = workdir / f"{app.key}.log"
    cwd = workdir / app.key
    cwd.mkdir(exist_ok=True)
    env = {**os.environ, **app.env}
    # No control socket: gunicorn 27 puts one at ~/.gunicorn/gunicorn.ctl, shared with any other
    # gunicorn of this user (a `make run` beside the benchmark).
    argv = [
        str(BIN / "gunicorn"),
        *app.gunicorn_args,
        "--bind",
        f"127.0.0.1:{app.port}",
        "--no-control-socket",
    ]
    log(f"starting {app.label}: {' '.join(argv[1:])}")
    with open(app.log_path, "wb") as out:
        # Own session: a Ctrl-C in the terminal reaches this script, which stops gunicorn in order.
        app.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(app: App) -> None:
    process = app.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        # The gunicorn master's own process group (start_new_session): its workers, nothing else.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    app.process = None


def log_tail(app: App, lines: int = 12, width: int = 300) -> str:
    """The end of a server log, with JSON log lines cut down to their message and exception."""
    if app.log_path is None or not app.log_path.exists():
        return ""
    summary: list[str] = []
    for line in app.log_path.read_text(errors="replace").splitlines():
        text = _log_line(line)[:width]
        if summary and summary[-1].split(" (×", 1)[0] == text:
            head, _, count = summary[-1].partition(" (×")
            summary[-1] = f"{head} (×{int(count.rstrip(')') or 1) + 1})"
        else:
            summary.append(text)
    return "\n".join(summary[-lines:])


def _log_line(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    exception = next(
        (
            ln
            for ln in reversed(str(record.get("exc_info") or "").splitlines())
            if re.match(r"^[\w.]+(Error|Exception|Warning)\b", ln)
        ),
        "",
    )
    return " ".join(str(x) for x in (record.get("level"), record.get("message"), exception) if x)


def wait_ready(app: App, token: str, openid: str, timeout: float = 60.0) -> None:
    """Ready = a signed text message gets a valid reply (the same check wrk applies)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        assert app.process is not None
        if app.process.poll() is not None:
            raise BenchError(f"{app.label} exited during start-up:\n{log_tail(app)}")
        try:
            query, body = text_message(token, openid, 0)
            status, reply = post(app.port, query, body, timeout=2.0)
        except OSError as exc:
            last = str(exc)
        else:
            if is_reply(status, reply):
                return
            last = f"HTTP {status}: {reply[:200]!r}"
        time.sleep(0.2)
    raise BenchError(f"{app.label} not ready after {timeout:.0f} s ({last}):\n{log_tail(app)}")


def keep_log(app: App, stamp: str, *, write: bool) -> str:
    """A failed app's server log outlives the temporary directory: what went wrong is in there."""
    log(f"{app.label} failed; the end of its server log:\n{log_tail(app)}")
    if not write or app.log_path is None or not app.log_path.exists():
        return "server log shown above"
    RESULTS.mkdir(exist_ok=True)
    kept = RESULTS / f"wechat_endpoint-{stamp}-{app.key}.log"
    shutil.copyfile(app.log_path, kept)
    return f"server log: {kept.relative_to(ROOT)}"


class BenchError(RuntimeError):
    pass


# --- where the CPU went ---------------------------------------------------------------------------

CPU_GROUPS = ("app", "postgres", "redis", "wrk", "other")


def _proc_stat(pid: str) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds including reaped children) of one process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14-17 of proc(5): utime, stime, cutime, cstime (children this process has waited for:
    # the gunicorn master reaps restarted workers, the postmaster its exited backends).
    ticks = sum(int(x) for x in fields[11:15])
    return comm, int(fields[1]), ticks / os.sysconf("SC_CLK_TCK")


def _serves_database(pid: str, database: str) -> bool:
    # A backend's title is "postgres: <cluster>: <user> <database> <client> <state>".
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return f" {database} " in title


@dataclass
class CpuSnapshot:
    app: float  # the gunicorn master and its workers (the master reaps restarted workers: exact)
    postgres: dict[str, float]  # per backend: a backend that exits takes its CPU with it
    redis: float
    wrk: float  # this script's reaped children: only wrk exits during a run
    busy: float  # the whole machine
    stolen: float  # by the hypervisor from this (virtual) machine


def cpu_snapshot(app_pid: int, database: str) -> CpuSnapshot:
    """CPU seconds so far: the app's gunicorn tree, the PostgreSQL backends serving `database`,
    Redis, wrk, and the whole machine's busy time (see `cpu_used`)."""
    snap = CpuSnapshot(app=0.0, postgres={}, redis=0.0, wrk=0.0, busy=0.0, stolen=0.0)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        stat = _proc_stat(pid)
        if stat is None:
            continue
        comm, ppid, seconds = stat
        if int(pid) == app_pid or ppid == app_pid:
            snap.app += seconds
        elif comm.startswith("postgres") and _serves_database(pid, database):
            snap.postgres[pid] = seconds
        elif comm.startswith("redis-server"):
            snap.redis += seconds
    children = os.times()
    snap.wrk = children.children_user + children.children_system
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: busy = user to softirq but idle and iowait;
    # steal is time the hypervisor gave to other guests while this one wanted to run.
    ticks = os.sysconf("SC_CLK_TCK")
    snap.busy = (sum(values[:7]) - values[3] - values[4]) / ticks
    snap.stolen = values[7] / ticks if len(values) > 7 else 0.0
    return snap


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds between two snapshots by group; `other` is the rest of the machine's busy time
    (other processes, e.g. tests running beside the benchmark, which skew the figures)."""
    used = {
        "app": after.app - before.app,
        "postgres": sum(v - before.postgres.get(pid, 0.0) for pid, v in after.postgres.items()),
        "redis": after.redis - before.redis,
        "wrk": after.wrk - before.wrk,
    }
    used["other"] = max(0.0, (after.busy - before.busy) - sum(used.values()))
    used["stolen"] = after.stolen - before.stolen
    return used


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run, as reported by the done() of bench/wrk/wechat.lua."""

    kind: str
    rate: float  # requested rate, 0 = as fast as possible
    prepared: int
    raw: dict[str, Any]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the run, by group

    @property
    def other_cores(self) -> float:
        """Cores kept busy by processes outside the benchmark during the run."""
        return self.cpu.get("other", 0.0) / self.seconds

    @property
    def stolen_cores(self) -> float:
        """Cores the hypervisor took away during the run (a virtual machine's noisy neighbours)."""
        return self.cpu.get("stolen", 0.0) / self.seconds

    def cpu_ms_per_request(self) -> dict[str, float]:
        n = max(1, int(self.raw["requests"]))
        return {k: v * 1000 / n for k, v in self.cpu.items() if k in CPU_GROUPS}

    @property
    def seconds(self) -> float:
        return float(self.raw["duration_us"]) / 1e6

    @property
    def rps(self) -> float:
        return float(self.raw["requests"]) / self.seconds

    def ms(self, name: str) -> float:
        return float(self.raw["latency_us"][name]) / 1000

    @property
    def problems(self) -> list[str]:
        r = self.raw
        found = []
        errors = {k: v for k, v in r["errors"].items() if v}
        if errors:
            found.append("socket/HTTP errors " + ", ".join(f"{k}={v}" for k, v in errors.items()))
        if r["bad_status"]:
            found.append(f"{r['bad_status']} non-200 responses")
        if r["bad_body"]:
            found.append(f"{r['bad_body']} responses that are not an XML reply")
        if r["wraps"]:
            found.append(f"ran out of distinct messages ({r['prepared_total']} prepared) and reused them")
        if r["requests"] == 0:
            found.append("no request completed")
        if found and r.get("first_bad"):
            found.append(f"first bad response: {r['first_bad'][:160]}")
        return found


def run_wrk(
    app: App,
    kind: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    rate: float,
    count: int,
    token: str,
    openids: list[str],
    workdir: Path,
    database: str,
    texts: tuple[str, ...],
) -> Run:
    prefix = workdir / f"{app.key}-{re.sub(r'[^a-z0-9]+', '-', kind)}.req"
    host = f"127.0.0.1:{app.port}"
    # Generated right before the run: the timestamps must be within the app's allowed clock skew.
    write_requests(prefix, count, threads, host, token, openids, texts)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        f"http://{host}/wechat",
        "--",
        str(prefix),
        f"{rate:g}",
        str(threads),
    ]
    log(
        f"{app.label} {kind}: wrk -t{threads} -c{connections} -d{duration:g}s"
        + (f" at {rate:g} req/s" if rate else "")
    )
    assert app.process is not None
    cpu_before = cpu_snapshot(app.process.pid, database)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    cpu = cpu_used(cpu_before, cpu_snapshot(app.process.pid, database))
    for i in range(threads):
        Path(f"{prefix}.{i + 1}").unlink(missing_ok=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    raw["prepared_total"] = count
    result = Run(kind=kind, rate=rate, prepared=count, raw=raw, cpu=cpu)
    log(
        f"  {result.rps:.0f} req/s, p50 {result.ms('p50'):.1f} ms, p99 {result.ms('p99'):.1f} ms"
        + (f"  PROBLEMS: {'; '.join(result.problems)}" if result.problems else "")
    )
    return result


@dataclass
class Measured:
    app: App
    warm_rps: float = 0.0
    peaks: list[Run] = field(default_factory=list)  # one per round
    paced: Run | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def peak(self) -> Run | None:
        """The median of the rounds' peak runs, by requests/s (the lower one of an even count)."""
        if not self.peaks:
            return None
        ordered = sorted(self.peaks, key=lambda run: run.rps)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def failed(self) -> bool:
        if self.error or not self.peaks or self.paced is None:
            return True
        return any(run.problems for run in (*self.peaks, self.paced))


def wrk_settings(args: argparse.Namespace, token: str, openids: list[str], workdir: Path) -> dict[str, Any]:
    return {
        "connections": args.connections,
        "threads": args.threads,
        "token": token,
        "openids": openids,
        "workdir": workdir,
        "database": database_name(args.database_url),
        "texts": args.texts,
    }


def warm_up(m: Measured, args: argparse.Namespace, common: dict[str, Any]) -> None:
    warm = run_wrk(m.app, "warm-up", duration=args.warmup, rate=0, count=int(6000 * args.warmup), **common)
    m.warm_rps = warm.rps


def peak_round(m: Measured, args: argparse.Namespace, common: dict[str, Any], kind: str) -> None:
    # Enough distinct messages for the whole run at twice the warm-up's pace (at least 3,000/s).
    count = int(max(m.warm_rps * 2, 3000) * args.duration) + 4 * args.connections
    run = run_wrk(m.app, kind, duration=args.duration, rate=0, count=count, **common)
    if run.raw["wraps"]:
        # The warm-up misjudged the pace (a busy machine): once more, with twice what was used.
        count = int(run.rps * args.duration * 2) + 4 * args.connections
        log(f"  ran out of distinct messages; again with {count}")
        run = run_wrk(m.app, kind, duration=args.duration, rate=0, count=count, **common)
    m.peaks.append(run)


def paced_run(m: Measured, args: argparse.Namespace, common: dict[str, Any]) -> None:
    count = int(args.rate * args.rate_duration * 1.2) + 4 * args.connections
    m.paced = run_wrk(m.app, "fixed-rate", duration=args.rate_duration, rate=args.rate, count=count, **common)


def add_notes(m: Measured, args: argparse.Namespace) -> None:
    runs = [*m.peaks, *([m.paced] if m.paced else [])]
    disturbed = [f"{run.kind} {run.other_cores:.2f}" for run in runs if run.other_cores > DISTURBED_CORES]
    if disturbed:
        m.notes.append(f"disturbed: other processes kept cores busy ({', '.join(disturbed)})")
    stolen = [f"{run.kind} {run.stolen_cores:.2f}" for run in runs if run.stolen_cores > DISTURBED_CORES]
    if stolen:
        m.notes.append(f"disturbed: the hypervisor took cores away ({', '.join(stolen)})")
    server_log = m.app.log_path.read_text(errors="replace") if m.app.log_path else ""
    restarts = server_log.count("Autorestarting worker")
    if restarts:
        m.notes.append(f"{restarts} worker restart(s) by max_requests during the runs")
    if m.paced is not None and m.paced.rps < 0.95 * args.rate:
        m.notes.append(f"achieved {m.paced.rps:.0f} of {args.rate:g} req/s requested at the fixed rate")


def measure_all(
    results: list[Measured], args: argparse.Namespace, token: str, openids: list[str], workdir: Path
) -> None:
    """Warm every app up, then the peak runs in rounds, one app after the other in each round, then
    the fixed-rate runs. All apps are up the whole time (idle ones cost nothing): on a virtual
    machine whose speed drifts by tens of percent over minutes, interleaving puts each round's
    runs of all the apps on the same machine, and the ratios come from the same rounds."""
    common = wrk_settings(args, token, openids, workdir)

    def attempt(m: Measured, step: Any, *extra: Any) -> None:
        if m.error:
            return
        try:
            step(m, args, common, *extra)
        except BenchError as exc:
            log(str(exc))
            m.error = str(exc).splitlines()[0]

    for m in results:
        attempt(m, warm_up)
    for n in range(1, args.rounds + 1):
        for m in results:
            attempt(m, peak_round, "peak" if args.rounds == 1 else f"peak {n}/{args.rounds}")
    for m in results:
        attempt(m, paced_run)
    for m in results:
        add_notes(m, args)


# --- the apps ---------------------------------------------------------------------------------


# Settings production insists on that a text message never uses: placeholders that lead nowhere
# (.invalid is reserved, RFC 2606), unless the environment sets them. Add here what later issues
# make production require.
PRODUCTION_PLACEHOLDERS = {
    "VERIFY_PROVIDER": "http",
    "VERIFY_HTTP_URL": "https://verify.bench.invalid/v1",
    "VERIFY_HTTP_KEY_ID": "bench",
    "VERIFY_HTTP_SECRET": "bench-placeholder-secret",
    "WECHAT_PAY_MCHID": "1900000109",
    "WECHAT_PAY_MERCHANT_SERIAL": "BE0C4B1D0E5A6F7081923A4B5C6D7E8F90A1B2C3",
    "WECHAT_PAY_APIV3_KEY": "bench-placeholder-apiv3-key-0032",
    "WECHAT_PAY_PUBLIC_KEY_ID": "PUB_KEY_ID_BENCH",
    "WECHAT_PAY_API_BASE": "https://api.mch.bench.invalid",
    "WECHAT_PAY_NOTIFY_URL": "https://bench.invalid/pay/notify",
}


def throwaway_pay_keys() -> dict[str, str]:
    """Production reads the merchant's and WeChat Pay's keys at start-up: throwaway RSA keys, in a
    temporary folder removed when the bench exits (no payment is made in this benchmark)."""
    import atexit
    import shutil
    import tempfile

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder = Path(tempfile.mkdtemp(prefix="bench-pay-keys-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    paths = {}
    for name in ("merchant", "wechatpay"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = folder / f"{name}_private.pem"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        public = folder / f"{name}_public.pem"
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        paths[name] = (str(private), str(public))
    return {
        "WECHAT_PAY_PRIVATE_KEY_PATH": paths["merchant"][0],
        "WECHAT_PAY_PUBLIC_KEY_PATH": paths["wechatpay"][1],
    }


def real_app(args: argparse.Namespace, token: str) -> App:
    from cryptography.fernet import Fernet

    env = {k: os.environ.get(k, v) for k, v in {**PRODUCTION_PLACEHOLDERS, **throwaway_pay_keys()}.items()}
    # Production refuses default secrets: fresh ones per run (the bench database holds nothing that
    # needs them later, only the followers).
    env.update(
        {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "PII_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PII_HMAC_KEY": secrets.token_urlsafe(48),
            "WECHAT_TOKEN": token,
            "SANDBOX": "0",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(args.workers),
            "WORKER_IN_PROCESS": "0",
            "PYTHONPATH": str(ROOT),
        }
    )
    gargs = ["-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT), "wsgi:app"]
    conf = gunicorn_conf(env)
    server = f"gunicorn.conf.py: {conf.get('workers')} × {conf.get('worker_class')}"
    if conf.get("worker_class") == "gthread":
        server += f", {conf.get('threads')} threads"
    return App("real", "real /wechat", gargs, env, server)


def gunicorn_conf(env: dict[str, str]) -> dict[str, Any]:
    """The settings gunicorn.conf.py gives under `env` (it reads the environment when loaded)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def ref_apps(args: argparse.Namespace, token: str) -> list[App]:
    env = {"WECHAT_TOKEN": token, "PYTHONPATH": str(BENCH / "refs")}
    base = ["-w", str(args.workers), "--pythonpath", str(BENCH / "refs")]
    if args.ref_server == "same":
        # The real app's gunicorn settings, so that the comparison is between the apps.
        threads = os.environ.get("GUNICORN_THREADS", "4")
        base += ["-k", "gthread", "--threads", threads, "--keep-alive", "5"]
        server = f"-w {args.workers} -k gthread --threads {threads}"
    else:
        server = f"-w {args.workers} (sync)"
    return [
        # The working directory is a fresh temporary one: WeRoBot's session file goes there.
        App("werobot", "WeRoBot 1.13 default", [*base, "werobot_app:app"], env, server),
        App("floor", "floor (Flask + wechatpy)", [*base, "floor_app:app"], env, server),
        # Not a target: the ceiling for anything that dedupes through Redis (refs/floor_redis_app.py).
        App(
            "floor_redis",
            "floor + one Redis round trip",
            [*base, "floor_redis_app:app"],
            {**env, "BENCH_REDIS_URL": args.redis_url},
            server,
        ),
    ]


# --- database, users, machine -------------------------------------------------------------------


def database_name(database_url: str) -> str:
    return database_url.rsplit("/", 1)[1].split("?", 1)[0]


def libpq_url(database_url: str) -> str:
    return "postgresql://" + database_url.split("://", 1)[1]


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> None:
    import psycopg

    url = libpq_url(args.database_url)
    dbname = database_name(url)
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if args.fresh_db:
            log(f"dropping database {dbname}")
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
            log(f"creating database {dbname}")
            conn.execute(f'CREATE DATABASE "{dbname}"')
    log("migrating the bench database")
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise BenchError(f"migration failed:\n{tail}")


def openid_pool(size: int) -> list[str]:
    # 28 characters like a real openid; the same pool on every run, so re-runs reuse the followers.
    return [f"oBench{i:06d}" + hashlib.sha1(str(i).encode()).hexdigest()[:16] for i in range(size)]


def seed_followers(app: App, token: str, openids: list[str], database_url: str) -> None:
    """Every sender follows the account first, through the endpoint itself (subscribe events)."""
    import psycopg

    for openid in openids:
        query, ts = signed_query(token, openid)
        body = SUBSCRIBE_XML.format(to=TO_USER, openid=openid, ts=ts).encode()
        status, reply = post(app.port, query, body)
        if status != 200:
            raise BenchError(f"subscribe for {openid} got HTTP {status}: {reply[:200]!r}")
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM users WHERE openid = ANY(%s) AND subscribed", (openids,)
        ).fetchone()
    found = row[0] if row else 0
    if found != len(openids):
        raise BenchError(f"after {len(openids)} subscribe events only {found} followers are in the database")
    log(f"{found} followers in the bench database")


def fsync_latency_ms(directory: Path, rounds: int = 100) -> float:
    """WeRoBot's default session store commits to SQLite on every message: this bounds it."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    samples = []
    try:
        for _ in range(rounds):
            began = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return sorted(samples)[len(samples) // 2]


def machine(args: argparse.Namespace) -> dict[str, str]:
    info: dict[str, str] = {}
    info["CPU"] = f"{cpu_model()}, {os.cpu_count()} cores"
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal:")), 0)
    info["RAM"] = f"{kb / 1024 / 1024:.1f} GiB"
    info["OS"] = f"{platform.system()} {platform.release()}"
    info["Python"] = platform.python_version()
    try:
        import psycopg

        with psycopg.connect(libpq_url(args.database_url)) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        info["PostgreSQL"] = str(row[0]) if row else "?"
    except Exception as exc:
        info["PostgreSQL"] = f"? ({exc})"
    try:
        import redis

        info["Redis"] = str(redis.Redis.from_url(args.redis_url).info("server")["redis_version"])
    except Exception as exc:
        info["Redis"] = f"? ({exc})"
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    info["wrk"] = (version.stdout or version.stderr).splitlines()[0].split(" Copyright")[0]
    gunicorn = subprocess.run(
        [str(BIN / "gunicorn"), "--version"], capture_output=True, text=True, check=False
    )
    info["gunicorn"] = gunicorn.stdout.strip() or gunicorn.stderr.strip()
    return info


# --- report -------------------------------------------------------------------------------------


def fmt_run(run: Run | None) -> tuple[str, str, str]:
    if run is None:
        return ("—", "—", "—")
    return (f"{run.rps:,.0f}", f"{run.ms('p50'):.1f}", f"{run.ms('p99'):.1f}")


def report(
    results: list[Measured], args: argparse.Namespace, info: dict[str, str], load: tuple[str, str]
) -> tuple[str, int]:
    by_key = {m.app.key: m for m in results}
    lines = [
        f"# /wechat benchmark — {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        f"`{' '.join(sys.argv)}`",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        f"- load average (1 min) before / after: {load[0]} / {load[1]}",
        "",
        "## Method",
        "",
        f"- wrk -t{args.threads} (wrk shares the {os.cpu_count()} cores with the servers), "
        f"-c{args.connections}; {args.warmup:g} s warm-up each, then {args.rounds} round(s) of "
        f"{args.duration:g} s flat out, the apps taking turns within each round (all of them up "
        "throughout); the peak figures are each app's median round, the ratios the median of the "
        f"rounds' ratios; fixed rate: {args.rate:g} req/s for {args.rate_duration:g} s, paced by the "
        "Lua delay() on evenly spaced slots (latency measured from the send, excluding the wait).",
        f"- Each request a distinct signed plain-mode text message (own MsgId, nonce, signature; "
        f"contents {' / '.join(args.texts)} in turn), from {args.users} openids that followed first. "
        "The real app's work per content: "
        + "; ".join(f"{t} — {WHAT_IT_DOES.get(t, 'not described here')}" for t in args.texts)
        + ".",
        "- Every response checked: HTTP 200 and an XML passive reply; anything else fails the run.",
        "",
        "## Results",
        "",
        "| app | gunicorn | peak req/s | p50 ms | p99 ms | rounds req/s | fixed-rate req/s | p50 ms "
        "| p99 ms | checks |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for m in results:
        peak, paced = fmt_run(m.peak), fmt_run(m.paced)
        rounds = " / ".join(f"{run.rps:,.0f}" for run in m.peaks) or "—"
        problems = [m.error] if m.error else []
        for run in (*m.peaks, m.paced):
            if run is not None:
                problems += [f"{run.kind}: {p}" for p in run.problems]
        checks = "FAILED: " + "; ".join(problems) if m.failed else "all valid"
        if m.notes:
            checks += " (" + "; ".join(m.notes) + ")"
        lines.append(
            f"| {m.app.label} | {m.app.server} | {' | '.join(peak)} | {rounds} | {' | '.join(paced)} "
            f"| {checks} |"
        )

    lines += [
        "",
        "## Where the CPU went during the median peak run",
        "",
        f"CPU ms per request ({os.cpu_count()} cores in all; `other` is every other process on the machine, "
        "e.g. tests running beside the benchmark — a large figure there means the run was disturbed; "
        "`stolen` is cores the hypervisor gave to other guests meanwhile).",
        "",
        "| app | app workers | PostgreSQL | Redis | wrk | other | cores busy | stolen cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        if m.peak is None or not m.peak.cpu:
            continue
        per = m.peak.cpu_ms_per_request()
        busy = sum(m.peak.cpu.get(k, 0.0) for k in CPU_GROUPS) / m.peak.seconds
        lines.append(
            f"| {m.app.label} | "
            + " | ".join(f"{per[k]:.2f}" for k in CPU_GROUPS)
            + f" | {busy:.2f} | {m.peak.stolen_cores:.2f} |"
        )
    lines += ["", "## Targets", ""]
    status = 0
    if any(m.failed for m in results):
        status = 1
    real = by_key.get("real")

    def verdict(ok: bool | None) -> str:
        nonlocal status
        if ok is None:
            return "n/a"
        if not ok and status == 0:
            status = 2
        return "PASS" if ok else "FAIL"

    def ratio(ref_key: str, of: Measured | None = real) -> float | None:
        """The median of the rounds' ratios: each round's runs shared the same machine."""
        ref = by_key.get(ref_key)
        if of is None or ref is None or of.failed or ref.failed:
            return None
        ratios = sorted(a.rps / b.rps for a, b in zip(of.peaks, ref.peaks, strict=True))
        return ratios[(len(ratios) - 1) // 2]

    vs_werobot, vs_floor = ratio("werobot"), ratio("floor")
    real_ok = real is not None and not real.failed
    lines.append("| target | measured | verdict |")
    lines.append("|---|---|---|")
    if args.skip_refs:
        lines.append(f"| ≥ {TARGET_VS_FLOOR:g}× floor | references skipped (--skip-refs) | n/a |")
    else:
        # WeRoBot is reported, not targeted: its default commits a SQLite session on every message,
        # so its rate follows the disk's fsync latency rather than any code.
        lines.append(
            "| (reference) real ÷ WeRoBot default (peak req/s) | "
            f"{f'{vs_werobot:.2f}×' if vs_werobot is not None else 'not measured (a run failed)'} | — |"
        )
        lines.append(
            f"| real ≥ {TARGET_VS_FLOOR:g}× floor (peak req/s) | "
            f"{f'{vs_floor:.2f}×' if vs_floor is not None else 'not measured (a run failed)'} | "
            f"{verdict(vs_floor >= TARGET_VS_FLOOR if vs_floor is not None else False)} |"
        )
    if real is not None and real.paced is not None:
        p99 = real.paced.ms("p99")
        achieved_ok = real.paced.rps >= 0.95 * args.rate
        lines.append(
            f"| real p99 < {TARGET_P99_AT_RATE_MS:g} ms at {args.rate:g} req/s | "
            f"{p99:.1f} ms at {real.paced.rps:.0f} req/s | "
            f"{verdict(real_ok and achieved_ok and p99 < TARGET_P99_AT_RATE_MS)} |"
        )
    else:
        target = f"real p99 < {TARGET_P99_AT_RATE_MS:g} ms at {args.rate:g} req/s"
        lines.append(f"| {target} | not measured | {verdict(False)} |")
    bound = ratio("floor", by_key.get("floor_redis"))
    if bound is not None:
        lines += ["", f"Bound: the floor plus one Redis round trip ran at {bound:.2f}× the floor."]
    lines.append("")
    return "\n".join(lines), status


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=15, help="seconds of the peak run (default 15)")
    p.add_argument("--warmup", type=float, default=3, help="seconds of warm-up before it (default 3)")
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="peak runs per app, interleaved across the apps; the median counts (default 5)",
    )
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: wrk shares the CPU)")
    p.add_argument("--rate", type=float, default=200, help="requests/s of the fixed-rate run (default 200)")
    p.add_argument(
        "--rate-duration",
        type=float,
        default=None,
        help="seconds of the fixed-rate run (default: --duration)",
    )
    p.add_argument("--skip-refs", action="store_true", help="measure only the real app")
    p.add_argument("--only-refs", action="store_true", help="measure only the two references")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers for every app (default 2)")
    p.add_argument(
        "--ref-server",
        choices=("same", "sync"),
        default="sync",
        help="references under gunicorn's defaults (sync, default) or the real app's settings (gthread)",
    )
    p.add_argument(
        "--texts",
        type=lambda v: tuple(t for t in v.split(",") if t),
        default=CONTENTS,
        help=f"comma-separated message contents sent in turn (default {','.join(CONTENTS)})",
    )
    p.add_argument("--users", type=int, default=300, help="distinct senders, all followers (default 300)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"),
    )
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"))
    p.add_argument(
        "--fresh-db",
        action="store_true",
        help="drop and re-create the bench database first (after a migration was edited in place)",
    )
    p.add_argument("--no-write", action="store_true", help="print the report only, write no file")
    args = p.parse_args(argv)
    if args.rate_duration is None:
        args.rate_duration = args.duration
    if args.connections < args.threads:
        p.error("--connections must be at least --threads")
    if max(args.duration, args.rate_duration) + args.warmup > 240:
        p.error("runs longer than 240 s would outlive the signatures' 300 s clock-skew window")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.skip_refs and args.only_refs:
        p.error("--skip-refs and --only-refs exclude each other")
    for host in (args.database_url, args.redis_url):
        if "@" in host and not any(h in host for h in ("@127.0.0.1", "@localhost", "@[::1]")):
            log(f"note: {host.split('@')[-1]} is not local")
    return args


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM both end the run through the clean-up path (even when started in the
    background, where a shell leaves SIGINT ignored)."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is not installed: apt-get install wrk (see bench/README.md)")
        return 1
    token = secrets.token_hex(16)
    openids = openid_pool(args.users)
    apps: list[App] = []
    if not args.only_refs:
        apps.append(real_app(args, token))
    if not args.skip_refs:
        apps += ref_apps(args, token)

    results: list[Measured] = []
    stamp = f"{datetime.now():%Y-%m-%d-%H%M%S}"
    load_before = f"{os.getloadavg()[0]:.2f}"
    # On the repository's disk (var/ is git-ignored), not /tmp, which may be tmpfs: WeRoBot's default
    # session file lives in the working directory, and its speed follows the disk's fsync latency.
    (ROOT / "var").mkdir(exist_ok=True)
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-wechat-", dir=ROOT / "var") as tmp:
        workdir = Path(tmp)
        fsync_ms = fsync_latency_ms(workdir)
        try:
            if not args.only_refs:
                prepare_database(args, apps[0].env)
            for app in apps:
                measured = Measured(app)
                try:
                    start(app, workdir)
                    wait_ready(app, token, openids[0])
                    if app.key == "real":
                        seed_followers(app, token, openids, args.database_url)
                except BenchError as exc:
                    log(str(exc))
                    measured.error = str(exc).splitlines()[0]
                    stop(app)
                results.append(measured)
            measure_all(results, args, token, openids, workdir)
            for app in apps:
                stop(app)
            for measured in results:
                if measured.failed:
                    measured.notes.append(keep_log(measured.app, stamp, write=not args.no_write))
        except KeyboardInterrupt:
            log("interrupted; servers stopped")
            return 130
        finally:
            for app in apps:
                stop(app)
    info = machine(args)
    info["fsync"] = (
        f"{fsync_ms:.2f} ms median (4 KiB write + fsync in the apps' working directory, under var/)"
    )
    text, status = report(results, args, info, (load_before, f"{os.getloadavg()[0]:.2f}"))
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"wechat_endpoint-{stamp}.md"
        path.write_text(text, encoding="utf-8")
        log(f"written to {path.relative_to(ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
