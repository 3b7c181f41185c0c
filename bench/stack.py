"""`make stack`: the production shape on one machine, to load-test the whole journey against.

    .venv/bin/python bench/stack.py                 # Ctrl-C stops everything and cleans up
    .venv/bin/python bench/stack.py --port 8080 --web-concurrency 2

nginx on one port in front of two app hosts; each host is a gunicorn (the normal gunicorn.conf.py,
non-embedded: PostgreSQL and Redis) and an outbox worker (`flask worker`). The hosts share
PostgreSQL (a database of the stack's own, `stack` by default, recreated at every start), Redis (db 14,
flushed at start) and S3-compatible storage (moto's server, a process on its own port). The WeChat
emulator runs as its own process (SANDBOX=1, SANDBOX_URL), as WeChat is another system.

Every process listens on 127.0.0.1 on a port of its own (the plain multi-process mode, which works
anywhere). Migrations and the demo data (without forms) run once, before the hosts start.

What the stack is, for the load test and the audit (`bench/load_journey.py`, `bench/journey_audit.py`),
is written to `var/stack/stack.json` (or --state-file): the URLs, the settings the hosts run with, and
the process ids of each kind. The file is removed when the stack stops.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
DEFAULT_STATE = ROOT / "var" / "stack" / "stack.json"
BUCKET = "stack-media"
S3_KEYS = {"MEDIA_S3_ACCESS_KEY_ID": "stack", "MEDIA_S3_SECRET_ACCESS_KEY": "stack-secret"}  # moto takes any
HOSTS = ("a", "b")
HUNAN = "10542"  # 湖南师范大学, the school the load test's students link (pay first)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class StackError(Exception):
    pass


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the stack's process dies, even by SIGKILL (Linux), so
    that no gunicorn or worker outlives a killed stack in its session of its own."""
    # A stack started in the background by a shell inherits SIGINT ignored: give it back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def libpq_url(database_url: str) -> str:
    return "postgresql://" + database_url.split("://", 1)[1]


def database_name(database_url: str) -> str:
    return database_url.rsplit("/", 1)[1].split("?", 1)[0]


@dataclass
class StackState:
    """What `stack.json` holds: read by the load test and the audit."""

    url: str  # nginx: the service as students and WeChat reach it
    sandbox: str
    s3: str
    database_url: str
    redis_url: str
    bucket: str
    media_root: str
    hosts: dict[str, str]  # host name → its gunicorn's address (behind nginx)
    admin_password: str  # the demo admin's; the reviewers' too
    reviewers: list[str]  # reviewer accounts of 湖南师范大学 (one per simulated reviewer)
    env: dict[str, str]
    # kind → [pid of each process tree's root]: web, worker, sandbox, nginx, s3
    pids: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StackState:
        return cls(**json.loads(path.read_text()))


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise StackError(f"{what} exited with {proc.returncode} before answering {url}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not answer {url} within {seconds:.0f} s")
        time.sleep(0.2)


def _nginx_conf(prefix: Path, port: int, upstreams: list[str]) -> str:
    servers = "\n".join(f"        server {u} max_fails=0;" for u in upstreams)
    return f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    # As README.md's production server block: uploads are read whole before a gunicorn thread sees
    # them (a slow phone holds nginx, not Python).
    client_max_body_size 21m;
    client_body_buffer_size 1m;
    client_body_timeout 15s;
    client_header_timeout 10s;
    proxy_request_buffering on;
    upstream app {{
{servers}
        keepalive 32;
        # Shorter than gunicorn's keepalive (5 s): nginx must never reuse a connection gunicorn is
        # closing, or a POST (which nginx does not retry) gets a reset and the student a 502.
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;  # with the port: not on 443 here
            proxy_read_timeout 35s;
        }}
    }}
}}
"""


class Stack:
    """Starts everything in order; `stop()` stops it in reverse and removes the temporary folder."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="stack-", dir=_var()))
        self.state_file: Path = args.state_file
        self.logs = self.tmp / "logs"
        self.logs.mkdir()

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, kind: str, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.procs.append((kind, proc))
        return proc

    def stop(self) -> None:
        for kind, proc in reversed(self.procs):
            if proc.poll() is None:
                # SIGINT: gunicorn's and the worker's quick stop; nginx takes SIGQUIT as its graceful one.
                proc.send_signal(signal.SIGQUIT if kind == "nginx" else signal.SIGINT)
        deadline = time.monotonic() + 15
        for _kind, proc in reversed(self.procs):
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        self.state_file.unlink(missing_ok=True)
        if self.args.keep_logs:
            log(f"logs kept in {self.logs}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the shared services -----------------------------------------------------------------

    def _fresh_database(self) -> None:
        import psycopg

        url = libpq_url(self.args.database_url)
        name = database_name(url)
        if name in ("test", "postgres"):
            raise StackError(f"the stack recreates its database: {name!r} is not one to drop")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    def _fresh_redis(self) -> None:
        import redis

        db = int(self.args.redis_url.rsplit("/", 1)[1] or 0)
        if db == 15:
            raise StackError("Redis db 15 is the test suite's: give the stack another one")
        redis.Redis.from_url(self.args.redis_url, socket_connect_timeout=5).flushdb()

    def _start_s3(self, env: dict[str, str]) -> str:
        port = free_port()
        proc = self._spawn("s3", "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env)
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/moto-api/", proc, "moto's S3 server")
        import boto3

        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=S3_KEYS["MEDIA_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_KEYS["MEDIA_S3_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET)
        return url

    def _flask(self, env: dict[str, str], *argv: str, stdin: str = "") -> None:
        done = subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", *argv],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise StackError(f"flask {' '.join(argv)} failed:\n{tail}")

    # --- the whole -----------------------------------------------------------------------------

    def start(self) -> StackState:
        args = self.args
        port = args.port or free_port()
        url = f"http://127.0.0.1:{port}"
        sandbox = f"http://127.0.0.1:{free_port()}"
        hosts = {name: f"127.0.0.1:{free_port()}" for name in HOSTS}
        admin_password = args.admin_password or secrets.token_urlsafe(12)
        log(f"fresh database {database_name(args.database_url)} and Redis {args.redis_url}")
        self._fresh_database()
        self._fresh_redis()
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "MEDIA_"))
        }
        s3 = self._start_s3(base)
        env = {
            **base,
            "APP_ENV": "development",  # production refuses SANDBOX=1; the secrets below are real ones
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PII_HMAC_KEY": secrets.token_urlsafe(32),
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            # The pay keys and the merchant registration live beside MEDIA_ROOT: every host and the
            # emulator share them, as WeChat Pay and the service share a merchant's registration.
            "MEDIA_ROOT": str(self.tmp / "media"),
            "MEDIA_URL": f"s3://{BUCKET}/photos",
            "MEDIA_S3_ENDPOINT_URL": s3,
            "MEDIA_S3_REGION": "us-east-1",
            **S3_KEYS,
            "SANDBOX": "1",
            "SANDBOX_URL": sandbox,
            "PUBLIC_BASE_URL": url,
            "PROXY_HOPS": "1",
            "DEMO_STAFF_PASSWORD": admin_password,
            "LOG_LEVEL": args.log_level,
            "LOG_FORMAT": "json",
        }
        if args.web_concurrency:
            env["WEB_CONCURRENCY"] = str(args.web_concurrency)
        from cryptography.fernet import Fernet

        env["PII_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
        log("migrating and loading the demo data (without forms)")
        self._flask(env, "db", "upgrade")
        self._flask(env, "demo", "load")
        reviewers = [f"reviewer{i}" for i in range(1, args.reviewers + 1)]
        for name in reviewers:
            # Accounts of their own: two reviewers signed in as one staff member could both decide
            # what either claimed (a claim is the staff member's, not the session's).
            self._flask(
                env,
                "staff",
                "create",
                name,
                "--role",
                "reviewer",
                "--school",
                HUNAN,
                "--password-stdin",
                stdin=admin_password + "\n",
            )

        proc = self._spawn(
            "sandbox",
            "sandbox",
            [
                str(BIN / "gunicorn"),
                "-c",
                "gunicorn_sandbox.conf.py",
                "--bind",
                sandbox[7:],
                "app.sandbox.server:create_app()",
            ],
            env,
        )
        _wait_http(f"{sandbox}/healthz", proc, "the WeChat sandbox")
        for name, address in hosts.items():
            # One host after the other: the first writes the sandbox merchant's registration.
            proc = self._spawn(
                "web",
                f"web-{name}",
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", address, "wsgi:app"],
                env,
            )
            _wait_http(f"http://{address}/healthz", proc, f"app host {name}'s gunicorn")
            self._spawn("worker", f"worker-{name}", [str(BIN / "flask"), "--app", "wsgi", "worker"], env)
        prefix = self.tmp / "nginx"
        prefix.mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(_nginx_conf(prefix, port, list(hosts.values())))
        proc = self._spawn(
            "nginx", "nginx", [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"], env
        )
        _wait_http(f"{url}/healthz", proc, "nginx")

        pids: dict[str, list[int]] = {}
        for kind, p in self.procs:
            pids.setdefault(kind, []).append(p.pid)
        state = StackState(
            url=url,
            sandbox=sandbox,
            s3=s3,
            database_url=args.database_url,
            redis_url=args.redis_url,
            bucket=BUCKET,
            media_root=env["MEDIA_ROOT"],
            hosts=hosts,
            admin_password=admin_password,
            reviewers=reviewers,
            env={k: env[k] for k in env if k not in base or base.get(k) != env[k]},
            pids=pids,
        )
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(state), ensure_ascii=False, indent=1))
        return state

    def check_alive(self) -> None:
        for kind, proc in self.procs:
            if proc.poll() is not None:
                raise StackError(f"a {kind} process ({proc.pid}) exited with {proc.returncode}")


def _var() -> Path:
    folder = ROOT / "var"
    folder.mkdir(exist_ok=True)
    return folder


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("STACK_PORT", "0") or 0),
        help="nginx's port (default: a free one)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("STACK_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/stack"),
        help="the stack's own database: dropped and created again at every start",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("STACK_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="the stack's own Redis database: flushed at every start",
    )
    parser.add_argument(
        "--web-concurrency",
        type=int,
        default=0,
        help="gunicorn workers per host (default: gunicorn.conf.py's, one per core)",
    )
    parser.add_argument("--reviewers", type=int, default=2, help="reviewer accounts to create (reviewer1…)")
    parser.add_argument("--admin-password", default=os.environ.get("DEMO_STAFF_PASSWORD", ""))
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs after stopping")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)  # also when started in the background (SIGINT ignored)
    stack = Stack(args)
    try:
        state = stack.start()
        print(
            "Stack up (Ctrl-C stops it):\n"
            f"  Service, through nginx     {state.url}/review/   (admin / {state.admin_password})\n"
            f"  App hosts                  {', '.join(f'{k}: http://{v}' for k, v in state.hosts.items())}\n"
            f"  WeChat sandbox phone       {state.sandbox}/_sandbox/\n"
            f"  S3 (moto)                  {state.s3}  bucket {state.bucket}\n"
            f"  Database / Redis           {database_name(state.database_url)} / {state.redis_url}\n"
            f"  State file                 {args.state_file}\n"
            f"  Logs                       {stack.logs}",
            flush=True,
        )
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        log("stopping")
        return 0
    except StackError as exc:
        log(str(exc))
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
