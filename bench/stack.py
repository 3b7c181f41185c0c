"""`make stack`: the production shape on one machine, to load-test the whole journey against.

    .venv/bin/python bench/stack.py                 # Ctrl-C stops everything and cleans up
    .venv/bin/python bench/stack.py --port 8080 --web-concurrency 2
    .venv/bin/python bench/stack.py --netns --delay-ms 0.5    # root: the app hosts in namespaces

nginx on one port in front of two app hosts; each host is a gunicorn (the normal gunicorn.conf.py,
non-embedded: PostgreSQL and Redis) and an outbox worker (`flask worker`). The hosts share
PostgreSQL (a database of the stack's own, `stack` by default, recreated at every start), Redis (db 14,
flushed at start) and S3-compatible storage (moto's server, a process on its own port). The WeChat
emulator runs as its own process (SANDBOX=1, SANDBOX_URL), as WeChat is another system.

Every process listens on 127.0.0.1 on a port of its own (the plain multi-process mode, which works
anywhere); with --netns (root) each app host runs in a network namespace of its own (`Network`).
Migrations and the demo data (without forms) run once, before the hosts start.

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


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


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


def _nginx_conf(prefix: Path, address: str, port: int, upstreams: list[str]) -> str:
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
        listen {address}:{port} reuseport;
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


class Network:
    """`--netns`: each app host in a network namespace of its own, joined to the host namespace by a
    veth pair on a bridge. The host namespace plays the edge and the database host: nginx, the
    WeChat sandbox, moto's S3 and a forwarder to PostgreSQL and Redis (which listen on 127.0.0.1
    only) listen on the bridge's address. netem delays every packet leaving either end of an app
    host's veth, so each round trip between an app host and anything else takes twice `delay_ms`
    more. Nothing can share a loopback between hosts: a setting naming 127.0.0.1 fails in a host."""

    def __init__(self, delay_ms: float) -> None:
        n = os.getpid() % 200 + 20  # per stack, so that two stacks on one machine do not collide
        self.delay_ms = delay_ms
        self.subnet = f"10.231.{n}"
        self.edge = f"{self.subnet}.1"
        self.bridge = f"stkbr{n}"
        self.namespaces = {name: f"stack{n}-{name}" for name in HOSTS}
        self.addresses = {name: f"{self.subnet}.{11 + i}" for i, name in enumerate(HOSTS)}
        self.veths = {name: (f"stk{n}{name}h", f"stk{n}{name}n") for name in HOSTS}
        self.made: list[str] = []  # what down() removes: namespaces, then the bridge
        self.netem = True  # False when the kernel has no netem: the forwarder delays instead

    @staticmethod
    def _ip(*argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(f"{' '.join(argv)}: {done.stderr.strip()}")

    def up(self) -> None:
        ip = self._ip
        ip("ip", "link", "add", self.bridge, "type", "bridge")
        self.made.append(self.bridge)
        ip("ip", "addr", "add", f"{self.edge}/24", "dev", self.bridge)
        ip("ip", "link", "set", self.bridge, "up")
        delay = f"{self.delay_ms}ms"
        for name, ns in self.namespaces.items():
            outside, inside = self.veths[name]
            ip("ip", "netns", "add", ns)
            self.made.insert(0, ns)
            ip("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("ip", "link", "set", inside, "netns", ns)
            ip("ip", "link", "set", outside, "master", self.bridge, "up")
            ip("ip", "-n", ns, "addr", "add", f"{self.addresses[name]}/24", "dev", inside)
            ip("ip", "-n", ns, "link", "set", inside, "up")
            ip("ip", "-n", ns, "link", "set", "lo", "up")
            if self.delay_ms > 0 and self.netem:
                try:
                    ip("tc", "qdisc", "add", "dev", outside, "root", "netem", "delay", delay)
                    ip(
                        *self.inside(name),
                        "tc",
                        "qdisc",
                        "add",
                        "dev",
                        inside,
                        "root",
                        "netem",
                        "delay",
                        delay,
                    )
                except StackError as exc:
                    # Kernels without sch_netem (some VMs): the forwarder delays the database's and
                    # Redis's traffic instead, the hops the delay is for.
                    log(f"no netem here ({exc}): the forwarder delays PostgreSQL and Redis by {delay}")
                    self.netem = False

    def down(self) -> None:
        for made in self.made:
            # Deleting a namespace deletes its end of the veth pair, and with it the other end.
            argv = (
                ["ip", "netns", "del", made]
                if made in self.namespaces.values()
                else ["ip", "link", "del", made]
            )
            subprocess.run(argv, capture_output=True)
        self.made.clear()

    def inside(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[name]]


class Stack:
    """Starts everything in order; `stop()` stops it in reverse and removes the temporary folder."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="stack-", dir=_var()))
        self.state_file: Path = args.state_file
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.network = Network(args.delay_ms) if args.netns else None

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
        if self.network is not None:
            self.network.down()
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

    def _start_s3(self, env: dict[str, str], address: str) -> str:
        port = free_port()
        proc = self._spawn("s3", "s3", [str(BIN / "moto_server"), "-H", address, "-p", str(port)], env)
        url = f"http://{address}:{port}"
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

    def _forward(self, url: str, default_port: int) -> str:
        """The URL as an app host reaches it: through the forwarder on the bridge's address."""
        assert self.network is not None
        scheme, rest = url.split("://", 1)
        netloc, _, path = rest.partition("/")
        credentials, _, hostport = netloc.rpartition("@")
        host, _, port = hostport.partition(":")
        target = f"{host}:{port or default_port}"
        listen = f"{self.network.edge}:{free_port()}"
        proc = self._spawn(
            "forwarder",
            f"forward-{default_port}",
            [
                sys.executable,
                str(ROOT / "bench" / "tcp_forward.py"),
                f"--delay-ms={0 if self.network.netem else self.network.delay_ms}",
                f"{listen}={target}",
            ],
            dict(os.environ),
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(_split(listen), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise StackError(f"the forwarder to {target} did not start") from None
                time.sleep(0.1)
        return f"{scheme}://{credentials + '@' if credentials else ''}{listen}/{path}"

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
        net = self.network
        # Plain mode: everything on the loopback. --netns: the edge (nginx, sandbox, S3, the forwarder
        # to PostgreSQL and Redis) on the bridge's address, each app host on its own.
        edge = net.edge if net else "127.0.0.1"
        url = f"http://{edge}:{port}"
        sandbox = f"http://{edge}:{free_port()}"
        hosts = {name: f"{net.addresses[name] if net else '127.0.0.1'}:{free_port()}" for name in HOSTS}
        database_url, redis_url = args.database_url, args.redis_url
        if net:
            log(f"network namespaces {', '.join(net.namespaces.values())} on bridge {net.bridge} ({edge}/24)")
            net.up()
            database_url, redis_url = self._forward(database_url, 5432), self._forward(redis_url, 6379)
        admin_password = args.admin_password or secrets.token_urlsafe(12)
        log(f"fresh database {database_name(args.database_url)} and Redis {args.redis_url}")
        self._fresh_database()
        self._fresh_redis()
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "MEDIA_"))
        }
        s3 = self._start_s3(base, edge)
        env = {
            **base,
            "APP_ENV": "development",  # production refuses SANDBOX=1; the secrets below are real ones
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PII_HMAC_KEY": secrets.token_urlsafe(32),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
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
            "FORWARDED_ALLOW_IPS": edge,  # nginx's address, as the app hosts see it
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
        self._flask(env, "demo", "load", "--without-forms")
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
            inside = net.inside(name) if net else []
            proc = self._spawn(
                "web",
                f"web-{name}",
                [*inside, str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", address, "wsgi:app"],
                env,
            )
            _wait_http(f"http://{address}/healthz", proc, f"app host {name}'s gunicorn")
            self._spawn(
                "worker", f"worker-{name}", [*inside, str(BIN / "flask"), "--app", "wsgi", "worker"], env
            )
        prefix = self.tmp / "nginx"
        prefix.mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(_nginx_conf(prefix, edge, port, list(hosts.values())))
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
            database_url=database_url,
            redis_url=redis_url,
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
    parser.add_argument(
        "--netns",
        action="store_true",
        help="each app host in a network namespace of its own, with netem delay (root; docs/stack.md)",
    )
    parser.add_argument("--delay-ms", type=float, default=0.5, help="--netns: netem delay each way")
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
