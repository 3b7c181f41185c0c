"""Flask's signed-cookie sessions, minus one cost on requests that carry no session cookie.

Flask builds the itsdangerous signer (key derivation, JSON serializer) on every request before it
looks for the cookie. WeChat's posts to /wechat and the payment notifications never carry one, and
on /wechat that signer was about a tenth of the CPU per message. Same behaviour otherwise: without
a cookie Flask also answers a fresh, empty session.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
