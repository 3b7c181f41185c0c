"""The phone page, /_sandbox/: a person plays a student chatting with the official account.

The page is plain HTML + JS (static/phone.js) over the small JSON API below. The phone's current
user is the `sandbox_phone_user` cookie (path /_sandbox), shared with the sandbox's OAuth2 pages:
whoever is "holding the phone" in this browser. Every action goes through `messenger`, i.e. as a
real signed post to the service's /wechat, so what the page shows is what WeChat would show.
"""

from __future__ import annotations

import io
import time
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Response, current_app, jsonify, render_template, request
from PIL import Image, UnidentifiedImageError

from app.integrations import redis_client
from app.sandbox import addresses, bp, messenger, state

COOKIE = "sandbox_phone_user"
COOKIE_PATH = "/_sandbox"
COOKIE_MAX_AGE = 30 * 24 * 3600
ACCOUNT_NAME = "证件照核验"
PUSH_MENU_COMMAND = "flask wechat push-menu"
MAX_TEXT = 2000  # WeChat cuts a chat message off around here
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # WeChat's limit for an image
MAX_NICKNAME = 32
IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}


class PhoneError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(PhoneError)
def _phone_error(exc: PhoneError) -> tuple[Response, int]:
    return jsonify(error={"code": exc.status, "message": exc.message}), exc.status


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _current_openid() -> str | None:
    openid = _body().get("openid") or request.args.get("openid") or request.cookies.get(COOKIE)
    return str(openid) if openid else None


def _current_user(*, must_follow: bool = False) -> dict[str, Any]:
    openid = _current_openid()
    user = state.get_user(redis_client(), openid) if openid else None
    if user is None:
        raise PhoneError(400, "请先选择或新建一个用户")
    if must_follow and not user.get("subscribed"):
        raise PhoneError(409, "请先关注公众号")
    return user


def _remember(response: Response, openid: str) -> Response:
    response.set_cookie(
        COOKIE, openid, max_age=COOKIE_MAX_AGE, path=COOKIE_PATH, httponly=True, samesite="Lax"
    )
    return response


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user.get(k) for k in ("openid", "nickname", "subscribed")}


def _menu_for(openid: str) -> dict[str, Any] | None:
    from app.sandbox import store

    menu: dict[str, Any] | None = store.current_menu_for(redis_client(), openid)
    return menu


def _delivery(delivery: messenger.Delivery, **extra: Any) -> Response:
    return jsonify(entries=delivery.entries, tries=delivery.tries, failed=delivery.failed, **extra)


def _snapshot(openid: str | None) -> dict[str, Any]:
    """Everything the page needs when it opens or switches user."""
    r = redis_client()
    users = [_public_user(u) for u in state.list_users(r)]
    user = state.get_user(r, openid) if openid else None
    return {
        "users": users,
        "user": _public_user(user) if user else None,
        "menu": _menu_for(user["openid"]) if user else None,
        "chat": state.chat(r, user["openid"]) if user else [],
        "push_command": PUSH_MENU_COMMAND,
        "now": time.time(),
    }


@bp.get("/")
def phone_page() -> str:
    return render_template(
        "sandbox/phone.html",
        account_name=current_app.config.get("SANDBOX_ACCOUNT_NAME", ACCOUNT_NAME),
        initial=_snapshot(request.cookies.get(COOKIE)),
    )


@bp.get("/phone/state")
def phone_state() -> Response:
    return jsonify(_snapshot(_current_openid()))


@bp.get("/phone/users")
def list_users() -> Response:
    return jsonify(
        users=[_public_user(u) for u in state.list_users(redis_client())], current=_current_openid()
    )


@bp.post("/phone/users")
def create_user() -> tuple[Response, int]:
    nickname = str(_body().get("nickname") or request.form.get("nickname") or "").strip()
    if not nickname:
        raise PhoneError(422, "请填写昵称")
    if len(nickname) > MAX_NICKNAME:
        raise PhoneError(422, f"昵称最多 {MAX_NICKNAME} 个字")
    user = state.create_user(redis_client(), nickname)
    return _remember(jsonify(user=_public_user(user)), user["openid"]), 201


@bp.post("/phone/users/<openid>/select")
def select_user(openid: str) -> Response:
    if state.get_user(redis_client(), openid) is None:
        raise PhoneError(404, "没有这个用户")
    return _remember(jsonify(_snapshot(openid)), openid)


@bp.get("/phone/chat")
def chat() -> Response:
    """Polled by the page: chat entries newer than `since` (seconds, the server's clock)."""
    user = _current_user()
    try:
        since = float(request.args.get("since", "0"))
    except ValueError:
        raise PhoneError(400, "since 应为数字") from None
    entries = state.chat(redis_client(), user["openid"], since=since)
    return jsonify(entries=entries, subscribed=bool(user.get("subscribed")), now=time.time())


@bp.get("/phone/menu")
def menu() -> Response:
    user = _current_user()
    return jsonify(menu=_menu_for(user["openid"]), push_command=PUSH_MENU_COMMAND)


@bp.post("/phone/follow")
def follow() -> Response:
    user = _current_user()
    if user.get("subscribed"):
        raise PhoneError(409, "已经关注了")
    scene = _body().get("scene")
    delivery = messenger.subscribe(redis_client(), user["openid"], scene=str(scene) if scene else None)
    return _delivery(delivery, menu=_menu_for(user["openid"]))


@bp.post("/phone/unfollow")
def unfollow() -> Response:
    user = _current_user(must_follow=True)
    return _delivery(messenger.unsubscribe(redis_client(), user["openid"]))


@bp.post("/phone/scan")
def scan() -> Response:
    """Scan a scene QR code: a follower sends SCAN, anyone else follows through it.

    Body: {"code": <ticket or the URL the square encodes>} for a code the service created through
    the QR-code API, or {"scene": "..."} for a scene typed by hand.
    """
    from app.sandbox import store

    user = _current_user()
    body = _body()
    r = redis_client()
    ticket: str | None = None
    if body.get("code"):
        qrcode = store.find_qrcode(r, str(body["code"]))
        if qrcode is None:
            raise PhoneError(404, "二维码已过期或不存在")
        scene, ticket = qrcode.scene, qrcode.ticket
    else:
        scene = str(body.get("scene") or "").strip()
    if not 1 <= len(scene) <= 64:  # WeChat's scene_str is 1-64 characters
        raise PhoneError(422, "场景值应为 1–64 个字符")
    if user.get("subscribed"):
        return _delivery(messenger.scan(r, user["openid"], scene, ticket))
    return _delivery(messenger.subscribe(r, user["openid"], scene=scene, ticket=ticket))


@bp.post("/phone/text")
def send_text() -> Response:
    user = _current_user(must_follow=True)
    text = str(_body().get("text") or "")
    if not text.strip():
        raise PhoneError(422, "不能发送空白消息")
    if len(text) > MAX_TEXT:
        raise PhoneError(422, f"消息最多 {MAX_TEXT} 个字")
    return _delivery(messenger.send_text(redis_client(), user["openid"], text))


@bp.post("/phone/image")
def send_image() -> Response:
    from app.sandbox import store

    user = _current_user(must_follow=True)
    upload = request.files.get("file")
    if upload is None:
        raise PhoneError(422, "请选择一张图片")
    content = upload.read(MAX_IMAGE_BYTES + 1)
    if len(content) > MAX_IMAGE_BYTES:
        raise PhoneError(413, "图片不能超过 10 MB")
    content_type = _image_type(content)
    r = redis_client()
    media_id = store.save_media(r, content, content_type, "image")
    return _delivery(messenger.send_image(r, user["openid"], media_id), media_id=media_id)


def _image_type(content: bytes) -> str:
    """The real type from the bytes (header only, nothing decoded), as WeChat's client would."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt = image.format or ""
    except (UnidentifiedImageError, OSError):
        raise PhoneError(422, "只能发送图片文件") from None
    if fmt not in IMAGE_TYPES:
        raise PhoneError(422, "不支持这种图片格式")
    return IMAGE_TYPES[fmt]


@bp.post("/phone/click")
def click() -> Response:
    user = _current_user(must_follow=True)
    key = str(_body().get("key") or "")
    if not key:
        raise PhoneError(422, "缺少菜单 key")
    return _delivery(messenger.click(redis_client(), user["openid"], key))


@bp.post("/phone/view")
def view() -> Response:
    """A VIEW menu item: WeChat posts the VIEW event and opens the URL in its browser."""
    user = _current_user(must_follow=True)
    body = _body()
    url = str(body.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise PhoneError(422, "菜单链接应以 http:// 或 https:// 开头")
    menu_id = body.get("menu_id")
    delivery = messenger.view(redis_client(), user["openid"], url, str(menu_id) if menu_id else None)
    return _delivery(delivery, open=open_url(user["openid"], url))


@bp.post("/phone/open")
def open_link() -> Response:
    """A link tapped in the chat: where the phone's browser goes (no event: WeChat sends none)."""
    user = _current_user()
    url = str(_body().get("url") or "")
    if url.startswith("/") and not url.startswith("//"):
        url = addresses.service_url() + url
    if not url.startswith(("http://", "https://")):
        raise PhoneError(422, "只能打开 http:// 或 https:// 链接")
    return jsonify(open=open_url(user["openid"], url))


def open_url(openid: str, url: str) -> str:
    """Where the phone's browser goes for `url`, signed in as `openid`.

    A page of this service opens through /_sandbox/login-as/<openid>?next=<path>, which walks the
    real OAuth2 flow for that user. A link that already is an OAuth2 authorize URL, or points at
    another site, opens as it is (the sandbox's authorize page reads the phone's cookie).
    """
    config = current_app.config
    target = urlsplit(url)
    own = urlsplit(addresses.service_url())
    if (target.scheme, target.netloc) != (own.scheme, own.netloc):
        return url
    oauth_base = urlsplit(config["WECHAT_OAUTH_BASE"])
    if target.netloc == oauth_base.netloc and target.path.startswith(oauth_base.path + "/connect/"):
        return url
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    if target.fragment:
        path += "#" + target.fragment
    return f"/_sandbox/login-as/{quote(openid, safe='')}?next={quote(path, safe='')}"
