"""WeChat OAuth2 sign-in (snsapi_base) for the H5 pages.

/auth/wechat/login starts a fresh flow: clears the session, binds a random `state` to it and sends
the browser to WeChat's authorize page. WeChat redirects back to /auth/wechat/callback with a code,
which is exchanged once (wechatpy, against WECHAT_API_BASE) for the openid. A code lives 5 minutes
and is single-use, so a browser back/refresh of the callback must not exchange it again: the
session remembers the finished flow, and Redis remembers every code we have exchanged.
https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

import requests
from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from wechatpy.exceptions import WeChatOAuthException

from app.auth import bp
from app.auth.session import DEFAULT_NEXT, current_user, safe_next, sign_in, sign_out
from app.extensions import db
from app.integrations import redis_client, wechat_oauth
from app.services import signins

log = logging.getLogger(__name__)

OAUTH_STATE = "oauth_state"
OAUTH_NEXT = "oauth_next"
OAUTH_DONE = "oauth_done"  # {"state", "next"} of the flow that signed this session in
CODE_USED_SECONDS = 600  # codes live 5 minutes at WeChat; remember them a little longer
CODE_REFUSED = {40029, 40163}  # invalid/expired code, code already used


def callback_url() -> str:
    # WeChat checks the redirect_uri's domain against the account's 网页授权域名: use the public one.
    base: str = current_app.config["PUBLIC_BASE_URL"]
    return base + url_for("auth.wechat_callback")


def _problem(status: int, message: str, next_path: str) -> tuple[str, int]:
    retry = url_for("auth.wechat_login", next=next_path)
    return render_template("h5/signin_problem.html", message=message, retry_url=retry), status


@bp.get("/auth/wechat/login")
def wechat_login() -> ResponseReturnValue:
    next_path = safe_next(request.args.get("next"))
    sign_out()  # a fresh flow: no earlier user or state survives (session fixation)
    state = secrets.token_urlsafe(24)
    session[OAUTH_STATE] = state
    session[OAUTH_NEXT] = next_path
    return redirect(wechat_oauth(callback_url(), state).authorize_url, 302)


@bp.get("/auth/wechat/callback")
def wechat_callback() -> ResponseReturnValue:
    code = request.args.get("code", "")
    state = request.args.get("state", "")
    next_path = safe_next(session.get(OAUTH_NEXT))

    done = session.get(OAUTH_DONE)
    if (
        isinstance(done, dict)
        and state
        and hmac.compare_digest(state, str(done.get("state", "")))
        and current_user() is not None
    ):
        # Back or refresh on the callback after signing in: no second exchange.
        return redirect(safe_next(done.get("next")), 302)

    expected = session.get(OAUTH_STATE)
    if not isinstance(expected, str) or not state or not hmac.compare_digest(state, expected):
        return _problem(
            400, "登录链接已失效，或不是在这个浏览器里打开的。请从公众号菜单重新进入。", next_path
        )
    if not code:
        return _problem(400, "微信没有完成授权，请从公众号菜单重新进入。", next_path)

    code_key = "auth:oauth_code:" + hashlib.sha256(code.encode()).hexdigest()
    if not redis_client().set(code_key, "1", nx=True, ex=CODE_USED_SECONDS):
        return _problem(400, "这个登录链接已经使用过了，请从公众号菜单重新进入。", next_path)
    session.pop(OAUTH_STATE, None)

    try:
        result = wechat_oauth(callback_url()).fetch_access_token(code)
    except WeChatOAuthException as exc:
        if exc.errcode in CODE_REFUSED:
            return _problem(400, "登录授权已过期或已使用，请从公众号菜单重新进入。", next_path)
        log.warning("oauth2 code exchange refused", extra={"errcode": exc.errcode})
        return _problem(502, "微信登录暂时不可用，请稍后再试。", next_path)
    except requests.RequestException:
        log.warning("oauth2 code exchange failed", exc_info=True)
        return _problem(503, "微信登录暂时不可用，请稍后再试。", next_path)

    user = signins.user_for_openid(db.session, str(result["openid"]))
    session.pop(OAUTH_NEXT, None)
    sign_in(user)
    session[OAUTH_DONE] = {"state": state, "next": next_path}
    return redirect(next_path, 302)


@bp.post("/auth/logout")
def logout() -> ResponseReturnValue:
    sign_out()
    return redirect(DEFAULT_NEXT, 302)
