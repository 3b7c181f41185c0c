"""Application factory: config → logging → extensions → blueprints → error handlers → CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask

from config import Settings, load_settings

if TYPE_CHECKING:
    from app.integrations import StandIns
    from app.sandbox.pay.merchant import Merchant


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or load_settings(**overrides)
    app = Flask(__name__)
    app.config.from_mapping(settings.as_flask_config())
    from app.inputs import RowIdConverter

    # Every <int:…> in a route here is a row id: out of range is a 404, not a database error.
    app.url_map.converters["int"] = RowIdConverter
    from app.session_cookies import CookieSessionInterface

    app.session_interface = CookieSessionInterface()
    if settings.PROXY_HOPS:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.PROXY_HOPS
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from app.request_guards import BodyTimeout, check_text_fields

    app.wsgi_app = BodyTimeout(app.wsgi_app, settings.REQUEST_BODY_TIMEOUT_SECONDS)  # type: ignore[method-assign]

    from app.services.wording import yuan

    app.add_template_filter(yuan)  # amounts on pages read as in chat: "2 元"

    from app.logging import configure_logging

    configure_logging(app)
    # Before CSRFProtect's own hook, which fails on an unnamed form field and would answer 400 where
    # an API call without a session must get 401; NUL characters reach no view.
    app.before_request(check_text_fields)
    from app.auth.session import refuse_anonymous_api_calls

    app.before_request(refuse_anonymous_api_calls)
    _init_extensions(app, settings)
    _register_blueprints(app, settings)

    from app.errors import register_error_handlers

    register_error_handlers(app)

    from app.commands import register_cli

    register_cli(app)
    return app


def _init_extensions(app: Flask, settings: Settings) -> None:
    from app import integrations
    from app.extensions import csrf, db, migrate
    from app.integrations.wechat_pay_notifications import PaymentNotification
    from app.services.pay_notifications import apply_notification

    db.init_app(app)
    migrate.init_app(app, db)
    csrf.init_app(app)
    stand_ins = _sandbox_stand_ins(app, settings) if settings.SANDBOX else None

    def handle_notification(notification: PaymentNotification) -> None:
        apply_notification(db.session(), notification)

    integrations.init_app(app, settings, pay_notification_handler=handle_notification, stand_ins=stand_ins)
    if settings.sandbox_separate:
        _register_merchant_with_sandbox(app, settings)


def _sandbox_stand_ins(app: Flask, settings: Settings) -> StandIns:
    """The emulator's stand-ins for outside services. This factory is the only importer of the sandbox
    outside it: the integrations never know whether they talk to WeChat or to the emulator."""
    from app.integrations import StandIns
    from app.integrations.wechat_pay_config import FallbackKeys
    from app.sandbox.pay.keys import keys_for
    from app.sandbox.pay.merchant import register_merchant
    from app.sandbox.roster import RedisRoster
    from app.sandbox.roster_verifier import RemoteRosterVerifier, SandboxRosterVerifier

    def pay_keys() -> FallbackKeys:
        keys = keys_for(settings.MEDIA_ROOT)
        return FallbackKeys(
            mchid=keys.mchid,
            apiv3_key=keys.apiv3_key,
            merchant_private_pem=keys.merchant_private_pem,
            merchant_serial=keys.merchant_serial,
            public_key_id=keys.public_key_id,
            public_key_pem=keys.platform_public_pem,
        )

    if settings.sandbox_separate:
        # The roster lives in the emulator's process (maybe in its own memory): ask it over HTTP.
        remote = RemoteRosterVerifier(settings.sandbox_base, settings.VERIFY_TIMEOUT_SECONDS)
        return StandIns(pay_keys=pay_keys, identity_verifier=lambda redis: remote)
    register_merchant(app, _merchant)
    return StandIns(
        pay_keys=pay_keys,
        identity_verifier=lambda redis: SandboxRosterVerifier(RedisRoster(redis)),
    )


def _merchant() -> Merchant:
    # WeChat Pay knows a merchant from its registration; the emulator's merchant is whoever the pay
    # integration is configured as (with the sandbox's keys when none are set).
    from app.integrations import pay_client
    from app.sandbox.pay.merchant import Merchant

    config = pay_client().config
    return Merchant(
        mchid=config.mchid,
        appid=config.appid,
        serial=config.merchant_serial,
        public_key=config.private_key().public_key(),
        apiv3_key=config.apiv3_key,
        public_key_mode=config.public_key_mode,
    )


def _register_merchant_with_sandbox(app: Flask, settings: Settings) -> None:
    """The emulator in its own process learns the merchant from a file beside the pay keys (both
    processes read MEDIA_ROOT's parent), written at every start: the merchant may have changed."""
    from app.sandbox.pay.keys import keys_directory
    from app.sandbox.pay.merchant import write_registration

    with app.app_context():
        write_registration(keys_directory(settings.MEDIA_ROOT), _merchant())


def _register_blueprints(app: Flask, settings: Settings) -> None:
    from app.api import bp as api_bp
    from app.api import register_openapi
    from app.auth import bp as auth_bp
    from app.extensions import csrf
    from app.h5 import bp as h5_bp
    from app.links import bp as links_bp
    from app.ops import bp as ops_bp
    from app.pay import bp as pay_bp
    from app.review import bp as review_bp
    from app.wechat import bp as wechat_bp

    # WeChat signs its posts; a CSRF token cannot apply to them.
    csrf.exempt(wechat_bp)
    csrf.exempt(pay_bp)
    for bp in (ops_bp, wechat_bp, auth_bp, h5_bp, api_bp, links_bp, pay_bp, review_bp):
        app.register_blueprint(bp)
    register_openapi(app)
    if settings.SANDBOX and not settings.sandbox_separate:
        # The emulator stands for WeChat's servers, which are not reached with a CSRF token either.
        # With SANDBOX_URL it runs as its own process instead (app/sandbox/server.py).
        from app.sandbox import bp as sandbox_bp

        csrf.exempt(sandbox_bp)
        app.register_blueprint(sandbox_bp)
