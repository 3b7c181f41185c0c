"""gunicorn settings, from the environment. Production: `gunicorn -c gunicorn.conf.py wsgi:app`.

The embedded mode (REDIS_URL=memory://) has one process, because its Redis lives in that process,
and runs the outbox worker as a thread there; production runs `flask worker` separately.
"""

import multiprocessing
import os

_embedded = os.environ.get("REDIS_URL", "memory://").startswith("memory://")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
# gthread: a slow outbound call (OAuth code exchange, WeChat API) blocks one thread, not the process.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = 1 if _embedded else int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", "8" if _embedded else "4"))
# WeChat gives up after 5 s; a request still running at 30 s is stuck, not slow.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycling workers guards against slow leaks; each restart re-imports the app (≈ 1 s of CPU), so at
# WeChat traffic rates it must be rare: 100k requests is hours at a busy school's peak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections over
# them. With one shared socket, one worker can take every keep-alive connection (nginx's upstream
# keepalive, the benchmark's 16) while the others idle: throughput halved in several benchmark
# rounds. Caveat: connections still queued on a worker's socket when it exits are reset (WeChat
# retries them). Off in the embedded mode (one worker, and two `make run` on one port must clash).
reuse_port = not _embedded and os.environ.get("GUNICORN_REUSE_PORT", "1") == "1"


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    if _embedded or os.environ.get("WORKER_IN_PROCESS") == "1":
        from app.jobs.worker import start_in_thread

        start_in_thread(worker.wsgi)
