"""The emulator as its own process: `gunicorn -c gunicorn_sandbox.conf.py 'app.sandbox.server:create_app()'`.

WeChat's servers are another system: a subscribe event WeChat posts to /wechat, or WeChat Pay's
answer to an order, never waits for a thread of the service that asked. Mounted inside the service,
the emulator did: on a one-worker gunicorn with eight threads, ten students following at once held
every thread in the phone's request, each waiting for its subscribe event to be served by a thread
of the same pool. In its own process (SANDBOX_URL, `make run` starts both) the emulator has its own
threads, and the two talk over HTTP only, as WeChat and the service do.

This app serves the sandbox blueprint and nothing of the service. Its state is its Redis keys
(`sandbox:*`): a shared Redis with REDIS_URL, or its own in-process store with `memory://`. What the
service needs from it goes over HTTP (the roster: roster_verifier.RemoteRosterVerifier) or through
files both processes read (the pay keys and the merchant's registration under MEDIA_ROOT's parent).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request, send_from_directory
from redis import Redis

from config import Settings, SettingsError, load_settings


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or load_settings(**overrides)
    if not settings.sandbox_separate:
        raise SettingsError("the emulator's own process needs SANDBOX=1 and SANDBOX_URL (its own address)")
    # Named for the app package: the emulator's pages extend the service's base template and styles.
    app = Flask("app")
    app.config.from_mapping(settings.as_flask_config())

    from app.errors import register_error_handlers
    from app.logging import configure_logging
    from app.sandbox import bp
    from app.sandbox.pay.keys import keys_directory
    from app.sandbox.pay.merchant import register_merchant, registration_reader
    from app.sandbox.pay.notifications import resume_delivery

    configure_logging(app)
    app.extensions["redis"] = _redis(settings.REDIS_URL)
    # The service registers its merchant in a file beside the pay keys when it starts (app/__init__.py).
    register_merchant(app, registration_reader(keys_directory(settings.MEDIA_ROOT)))
    app.register_blueprint(bp)
    register_error_handlers(app)

    _allow_the_pay_page_to_scan(app, settings.PUBLIC_BASE_URL)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok", service="sandbox")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask every origin for it: the phone's tab shows the service's icon, as in the mount.
        assert app.static_folder is not None
        response = send_from_directory(app.static_folder, "favicon.ico", max_age=86_400)
        response.cache_control.public = True
        return response

    resume_delivery(app)
    return app


def _redis(url: str) -> Redis:
    """The emulator's store: the shared Redis, or (memory://) one of its own in this process."""
    if url.startswith("memory://"):
        import fakeredis

        client: Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        return client
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


def _allow_the_pay_page_to_scan(app: Flask, service_url: str) -> None:
    """The service's H5 pay page offers 用沙箱手机扫码支付 (the phone scanning its Native code): a call
    from the service's origin to this one, carrying the phone's cookie. Only that call is allowed."""
    parts = urlsplit(service_url)
    origin = f"{parts.scheme}://{parts.netloc}"

    @app.after_request
    def _cors(response: Response) -> Response:
        if request.path == "/_sandbox/pay/scan" and request.headers.get("Origin") == origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept"
            response.vary.add("Origin")
        return response
