"""gunicorn settings of the WeChat emulator's own process (`make run` starts it beside the service):
`gunicorn -c gunicorn_sandbox.conf.py 'app.sandbox.server:create_app()'`.

One worker: with REDIS_URL=memory:// the emulator's state lives in that process. Many threads: a
phone's request holds one while the service handles what it posted (the subscribe event, a text), and
the service's calls back (the WeChat API, OAuth2, WeChat Pay, the roster) need others meanwhile; a
real WeChat never runs out of them. No outbox worker here: that is the service's.
"""

import os

bind = os.environ.get("SANDBOX_BIND", "127.0.0.1:5001")
worker_class = "gthread"
workers = 1
threads = int(os.environ.get("SANDBOX_THREADS", "32"))
# The phone's requests wait for the service (WeChat's 5 s, three tries); 30 s is stuck, not slow.
timeout = 30
graceful_timeout = 5
keepalive = 5
errorlog = "-"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
control_socket_disable = True  # two arbiters on one host must not share the default control socket
