"""The emulated WeChat OAuth2 (网页授权): the authorize page, the code exchange, userinfo, login-as.

WeChat's flow: the service redirects the browser to open.weixin.qq.com/connect/oauth2/authorize;
WeChat (silently for snsapi_base) redirects back to `redirect_uri?code=...&state=...`; the service
exchanges the code at api.weixin.qq.com/sns/oauth2/access_token for the openid. Codes are
single-use and live 5 minutes; a reused code answers 40163.
https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html

"Who is holding the phone" is the cookie `sandbox_phone_user` (path /_sandbox), set by the phone
page or by /_sandbox/login-as/<openid>.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Response, current_app, redirect, render_template_string, request, url_for
from flask.typing import ResponseReturnValue
from redis import Redis
from werkzeug.wrappers import Response as BaseResponse

from app.integrations import redis_client
from app.sandbox import addresses, bp, state, store
from app.sandbox.api import ApiError, wechat_api, wechat_json

PHONE_COOKIE = "sandbox_phone_user"
SCOPES = {"snsapi_base", "snsapi_userinfo"}

_PAGE = """{% extends "base.html" %}
{% block title %}微信授权{% endblock %}
{% block content %}
<main class="page">
  <div class="card">
    <h1>{{ heading }}</h1>
    <p>{{ message }}</p>
    {% if users %}
    <p class="muted">选择以哪个微信用户的身份继续：</p>
    <ul class="sandbox-users">
      {% for user in users %}
      <li><a class="btn" href="{{ url_for('sandbox.oauth_use', openid=user.openid, back=back) }}">
        {{ user.nickname }}</a></li>
      {% endfor %}
    </ul>
    {% endif %}
    {% if phone_url %}<p><a href="{{ phone_url }}">打开模拟手机，新建或选择用户</a></p>{% endif %}
  </div>
</main>
{% endblock %}"""


def phone_user(r: Redis) -> dict[str, Any] | None:
    openid = request.cookies.get(PHONE_COOKIE)
    return state.get_user(r, openid) if openid else None


def set_phone_user(response: BaseResponse, openid: str) -> BaseResponse:
    response.set_cookie(PHONE_COOKIE, openid, path="/_sandbox", httponly=True, samesite="Lax")
    return response


def _page(heading: str, message: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    return render_template_string(_PAGE, heading=heading, message=message, **extra), status


def _authorized_domain(redirect_uri: str) -> bool:
    """WeChat only redirects to the 网页授权域名 configured for the account: ours."""
    target = urlsplit(redirect_uri)
    ours = urlsplit(addresses.service_url())
    return target.scheme in ("http", "https") and target.netloc == ours.netloc


@bp.get("/oauth/connect/oauth2/authorize")
def oauth_authorize() -> ResponseReturnValue:
    args = request.args
    appid, redirect_uri = args.get("appid", ""), args.get("redirect_uri", "")
    scope, state_value = args.get("scope", ""), args.get("state", "")
    if not appid or appid != current_app.config["WECHAT_APPID"]:
        return _page("参数错误", "appid 无效（40013）", 400)
    if not redirect_uri or not _authorized_domain(redirect_uri):
        return _page("参数错误", "redirect_uri 域名与后台配置不一致（10003）", 400)
    if args.get("response_type") != "code":
        return _page("参数错误", "response_type 只能是 code", 400)
    if scope not in SCOPES:
        return _page("参数错误", "此公众号并没有这些 scope 的权限（10005）", 400)
    r = redis_client()
    user = phone_user(r)
    if user is None:
        return _page(
            "请先选择微信用户",
            "模拟器里还没有正在使用手机的用户。",
            users=state.list_users(r),
            back=request.full_path,
            phone_url="/_sandbox/",
        )
    code = store.issue_oauth_code(r, user["openid"], appid, scope)
    query = urlencode({"code": code, "state": state_value})
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(f"{redirect_uri}{separator}{query}", 302)


@bp.get("/oauth/use/<openid>")
def oauth_use(openid: str) -> ResponseReturnValue:
    """From the picker: hold the phone as `openid` and go back to the authorize page."""
    back = request.args.get("back", "")
    if not back.startswith("/_sandbox/oauth/"):
        back = "/_sandbox/"
    if state.get_user(redis_client(), openid) is None:
        return Response("unknown user", status=404)
    return set_phone_user(redirect(back, 302), openid)


@bp.get("/login-as/<openid>")
def login_as(openid: str) -> ResponseReturnValue:
    """Make `openid` the phone's user (created if unknown) and sign in through the real flow."""
    r = redis_client()
    if state.get_user(r, openid) is None:
        state.create_user(r, nickname=f"用户{openid[-4:]}", openid=openid)
    next_path = request.args.get("next", "/h5/")
    if addresses.separate():  # the service's sign-in page is on the service's host
        target = f"{addresses.service_url()}/auth/wechat/login?{urlencode({'next': next_path})}"
    else:
        target = url_for("auth.wechat_login", next=next_path)
    return set_phone_user(redirect(target, 302), openid)


# --- the API side: /sns/... ------------------------------------------------------------------


@wechat_api("/sns/oauth2/access_token", token=False)
def sns_access_token(r: Redis) -> Response:
    args = request.args
    if not args.get("appid"):
        raise ApiError(41002)
    if not args.get("secret"):
        raise ApiError(41004)
    if not args.get("code"):
        raise ApiError(41008)
    if args.get("grant_type") != "authorization_code":
        raise ApiError(40002)
    if args["appid"] != current_app.config["WECHAT_APPID"]:
        raise ApiError(40013)
    if not hmac.compare_digest(args["secret"].encode(), current_app.config["WECHAT_SECRET"].encode()):
        raise ApiError(40125)
    errcode, record = store.redeem_oauth_code(r, args["code"])
    if errcode or record is None:
        raise ApiError(errcode or 40029)
    if record["appid"] != args["appid"]:
        raise ApiError(40029)
    access_token, refresh_token = store.issue_sns_token(r, record["openid"], record["scope"])
    return wechat_json(
        {
            "access_token": access_token,
            "expires_in": store.SNS_TOKEN_LIFETIME,
            "refresh_token": refresh_token,
            "openid": record["openid"],
            "scope": record["scope"],
        }
    )


@wechat_api("/sns/userinfo", token=False)
def sns_userinfo(r: Redis) -> Response:
    args = request.args
    record = store.sns_token(r, args.get("access_token", ""))
    if record is None:
        raise ApiError(40001)
    if args.get("openid") != record["openid"]:
        raise ApiError(40003)
    if record["scope"] != "snsapi_userinfo":
        raise ApiError(48001)
    user = state.get_user(r, record["openid"]) or {}
    return wechat_json(
        {
            "openid": record["openid"],
            "nickname": user.get("nickname", "微信用户"),
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
        }
    )
