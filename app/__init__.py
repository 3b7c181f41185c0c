"""Application factory: config → logging → extensions → blueprints → error handlers → CLI."""

from __future__ import annotations

from typing import Any

from flask import Flask

from config import Settings, load_settings


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or load_settings(**overrides)
    app = Flask(__name__)
    app.config.from_mapping(settings.as_flask_config())
    from app.session_cookies import CookieSessionInterface

    app.session_interface = CookieSessionInterface()
    if settings.PROXY_HOPS:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.PROXY_HOPS
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from app.request_guards import BodyTimeout, refuse_unnamed_form_fields

    app.wsgi_app = BodyTimeout(app.wsgi_app, settings.REQUEST_BODY_TIMEOUT_SECONDS)  # type: ignore[method-assign]

    from app.logging import configure_logging

    configure_logging(app)
    # Before CSRFProtect's own hook: it would fail on an unnamed form field, and answer 400 where an
    # API call without a session must get 401.
    app.before_request(refuse_unnamed_form_fields)
    from app.auth.session import refuse_anonymous_api_calls

    app.before_request(refuse_anonymous_api_calls)
    _init_extensions(app)
    _register_blueprints(app, settings)

    from app.errors import register_error_handlers

    register_error_handlers(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    from app.extensions import csrf, db, init_pii, init_redis, migrate
    from app.pay import apply as pay_apply
    from app.pay.client import init_pay_client
    from app.verification_setup import init_verifier
    from app.wechat_client import init_wechat_client

    db.init_app(app)
    migrate.init_app(app, db)
    csrf.init_app(app)
    init_redis(app)
    init_pii(app)
    init_wechat_client(app)
    init_verifier(app)
    init_pay_client(app)
    pay_apply.register(app)


def _register_blueprints(app: Flask, settings: Settings) -> None:
    from app.api import bp as api_bp
    from app.api import register_openapi
    from app.auth import bp as auth_bp
    from app.extensions import csrf
    from app.h5 import bp as h5_bp
    from app.ops import bp as ops_bp
    from app.pay import bp as pay_bp
    from app.review import bp as review_bp
    from app.wechat import bp as wechat_bp

    # WeChat signs its posts; a CSRF token cannot apply to them.
    csrf.exempt(wechat_bp)
    csrf.exempt(pay_bp)
    for bp in (ops_bp, wechat_bp, auth_bp, h5_bp, api_bp, pay_bp, review_bp):
        app.register_blueprint(bp)
    register_openapi(app)
    if settings.SANDBOX:
        # The emulator stands for WeChat's servers, which are not reached with a CSRF token either.
        from app.sandbox import bp as sandbox_bp

        csrf.exempt(sandbox_bp)
        app.register_blueprint(sandbox_bp)
