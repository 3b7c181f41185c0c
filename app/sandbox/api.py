"""The emulated api.weixin.qq.com: the server APIs the service calls, at WECHAT_API_BASE.

Paths mirror WeChat's exactly (`/_sandbox/api` + `/cgi-bin/menu/create`), so wechatpy talks to this
unchanged once its hosts are rewritten. Answers follow WeChat's documented JSON and error codes
(HTTP 200 with `errcode`/`errmsg`), every call is recorded (`state.record_call`) for the tests and
the phone page, and custom/template messages land in the user's chat log.

Reference: https://developers.weixin.qq.com/doc/offiaccount/en/Getting_Started/Global_Return_Code.html

Sandbox-only controls (not WeChat's) sit under `/_sandbox/api/_...`: recorded calls, expiring
tokens, moving the clock, injecting faults, adding templates.
"""

from __future__ import annotations

import hmac
import io
import json
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

import qrcode
from flask import Response, current_app, jsonify, request
from redis import Redis

from app.integrations import redis_client
from app.sandbox import bp, state, store

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid meida size",  # sic: WeChat's own spelling
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40029: "invalid code",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40052: "invalid action name",
    40053: "invalid action info",
    40054: "invalid sub button url domain",
    40055: "invalid button url domain",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    41006: "media_id missing",
    41008: "missing code",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    44003: "empty news data",
    44004: "empty content",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45015: "response out of time limit or subscription is canceled",
    45056: "too many tags",
    45059: "user tag count out of limit",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
    46003: "menu no exist",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
    65301: "conditional menu not exist",
    65302: "user not exist",
    65303: "there is no selfmenu, please create selfmenu first",
    65304: "match rule empty",
    65305: "conditional menu count limit",
}


class ApiError(Exception):
    def __init__(self, errcode: int, detail: str = "") -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.detail = detail


def wechat_json(payload: dict[str, Any], status: int = 200) -> Response:
    # WeChat answers errors with HTTP 200 and this content type.
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status=status, content_type="application/json; encoding=utf-8")


def error_json(errcode: int, detail: str = "") -> Response:
    message = ERRMSG.get(errcode, "error")
    if detail:
        message = f"{message} {detail}"
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return wechat_json({"errcode": errcode, "errmsg": f"{message} rid: {rid}"})


def ok(**extra: Any) -> Response:
    return wechat_json({"errcode": 0, "errmsg": "ok", **extra})


def _recorded_body() -> Any:
    if request.files:
        return {
            "files": {
                name: {"filename": f.filename, "content_type": f.mimetype, "size": _size(f.stream)}
                for name, f in request.files.items()
            }
        }
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:2000]


def _size(stream: Any) -> int:
    position = stream.tell()
    stream.seek(0, io.SEEK_END)
    size: int = stream.tell()
    stream.seek(position)
    return size


def json_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(44002)
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(47001) from None
    if not isinstance(data, dict):
        raise ApiError(47001)
    return data


def wechat_api(
    path: str, methods: tuple[str, ...] = ("GET",), *, token: bool = True
) -> Callable[[Callable[[Redis], Response]], Callable[[Redis], Response]]:
    """Register `path` (WeChat's own, e.g. /cgi-bin/menu/create) under /_sandbox/api."""

    def decorate(func: Callable[[Redis], Response]) -> Callable[[Redis], Response]:
        @wraps(func)
        def view() -> Response:
            r = redis_client()
            state.record_call(r, request.method, path, request.args.to_dict(), _recorded_body())
            fault = store.take_fault(r, path)
            if fault and fault.get("http_status"):
                return Response("injected failure", status=int(fault["http_status"]))
            try:
                if fault and fault.get("errcode") is not None:
                    raise ApiError(int(fault["errcode"]))
                if token:
                    code = store.check_token(r, request.args.get("access_token"))
                    if code:
                        raise ApiError(code)
                return func(r)
            except ApiError as exc:
                return error_json(exc.errcode, exc.detail)

        endpoint = "api" + path.replace("/", "_")
        bp.add_url_rule("/api" + path, endpoint=endpoint, view_func=view, methods=list(methods))
        return func

    return decorate


def _require_user(r: Redis, openid: Any) -> dict[str, Any]:
    user = state.get_user(r, openid) if isinstance(openid, str) and openid else None
    if user is None:
        raise ApiError(40003)
    return user


def _bytes(value: Any) -> int:
    return len(str(value).encode("utf-8"))


# --- access token ----------------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html


@wechat_api("/cgi-bin/token", token=False)
def token(r: Redis) -> Response:
    args = request.args
    if not args.get("appid"):
        raise ApiError(41002)
    if not args.get("secret"):
        raise ApiError(41004)
    if args.get("grant_type") != "client_credential":
        raise ApiError(40002)
    if args["appid"] != current_app.config["WECHAT_APPID"]:
        raise ApiError(40013)
    if not hmac.compare_digest(args["secret"].encode(), current_app.config["WECHAT_SECRET"].encode()):
        raise ApiError(40125)
    access_token, expires_in = store.issue_token(r)
    return wechat_json({"access_token": access_token, "expires_in": expires_in})


# --- menus -----------------------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
# https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Personalized_menu_interface.html

KEY_TYPES = {
    "click",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
}
BUTTON_TYPES = KEY_TYPES | {"view", "miniprogram", "media_id", "article_id", "article_view_limited"}


def _check_leaf(button: dict[str, Any], sub: bool) -> None:
    kind = button.get("type")
    if kind not in BUTTON_TYPES:
        raise ApiError(40024 if sub else 40017)
    if kind in KEY_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not key or _bytes(key) > 128:
            raise ApiError(40026 if sub else 40019)
    if kind in ("view", "miniprogram"):
        url = button.get("url")
        if not isinstance(url, str) or not url or _bytes(url) > 1024:
            raise ApiError(40027 if sub else 40020)
        if not url.startswith(("http://", "https://")):
            raise ApiError(40054 if sub else 40055)
    if kind == "miniprogram" and not (button.get("appid") and button.get("pagepath")):
        raise ApiError(47001)
    if kind == "media_id" and not button.get("media_id"):
        raise ApiError(47001)
    if kind in ("article_id", "article_view_limited") and not button.get("article_id"):
        raise ApiError(47001)


def validate_buttons(data: dict[str, Any]) -> list[dict[str, Any]]:
    """WeChat's menu limits: 1-3 buttons of ≤16 bytes, each with ≤5 sub-buttons of ≤60 bytes."""
    buttons = data.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ApiError(40016)
    for button in buttons:
        if not isinstance(button, dict):
            raise ApiError(47001)
        name = button.get("name")
        if not isinstance(name, str) or not name or _bytes(name) > 16:
            raise ApiError(40018)
        subs = button.get("sub_button")
        if subs:
            if not isinstance(subs, list) or len(subs) > 5:
                raise ApiError(40023)
            for sub in subs:
                if not isinstance(sub, dict):
                    raise ApiError(47001)
                sub_name = sub.get("name")
                if not isinstance(sub_name, str) or not sub_name or _bytes(sub_name) > 60:
                    raise ApiError(40025)
                _check_leaf(sub, sub=True)
        else:
            _check_leaf(button, sub=False)
    return buttons


def _as_shown(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # menu/get lists every button with a sub_button array (empty for leaves), as WeChat does.
    shown = []
    for button in buttons:
        subs = [{**s, "sub_button": []} for s in button.get("sub_button") or []]
        shown.append({**button, "sub_button": subs})
    return shown


@wechat_api("/cgi-bin/menu/create", ("POST",))
def menu_create(r: Redis) -> Response:
    store.set_default_menu(r, validate_buttons(json_body()))
    return ok()


@wechat_api("/cgi-bin/menu/get")
def menu_get(r: Redis) -> Response:
    default = store.default_menu(r)
    if default is None:
        raise ApiError(46003)
    payload: dict[str, Any] = {"menu": {"button": _as_shown(default["button"]), "menuid": default["menuid"]}}
    conditional = [
        {
            "button": _as_shown(m["button"]),
            "matchrule": {k: str(v) for k, v in m["matchrule"].items()},
            "menuid": m["menuid"],
        }
        for m in sorted(store.conditional_menus(r), key=lambda m: int(m["menuid"]))
    ]
    if conditional:
        payload["conditionalmenu"] = conditional
    return wechat_json(payload)


@wechat_api("/cgi-bin/menu/delete")
def menu_delete(r: Redis) -> Response:
    # Deletes the default menu and every conditional menu.
    store.delete_all_menus(r)
    return ok()


@wechat_api("/cgi-bin/menu/addconditional", ("POST",))
def menu_addconditional(r: Redis) -> Response:
    data = json_body()
    buttons = validate_buttons(data)
    rule = data.get("matchrule")
    if not isinstance(rule, dict):
        raise ApiError(65304)
    # WeChat now matches only on the tag and the platform; the old fields are ignored.
    matchrule = {k: rule[k] for k in ("tag_id", "client_platform_type") if rule.get(k) not in (None, "")}
    if not matchrule:
        raise ApiError(65304)
    if "tag_id" in matchrule:
        try:
            tag_id = int(matchrule["tag_id"])
        except (TypeError, ValueError):
            raise ApiError(45159) from None
        if tag_id not in store.tags(r):
            raise ApiError(45159)
        matchrule["tag_id"] = str(tag_id)
    if store.default_menu(r) is None:
        raise ApiError(65303)
    if len(store.conditional_menus(r)) >= store.MAX_CONDITIONAL_MENUS:
        raise ApiError(65305)
    menuid = store.add_conditional_menu(r, buttons, matchrule)
    return wechat_json({"menuid": str(menuid)})


@wechat_api("/cgi-bin/menu/delconditional", ("POST",))
def menu_delconditional(r: Redis) -> Response:
    menuid = json_body().get("menuid")
    if menuid in (None, "") or not store.delete_conditional_menu(r, str(menuid)):
        raise ApiError(65301)
    return ok()


@wechat_api("/cgi-bin/menu/trymatch", ("POST",))
def menu_trymatch(r: Redis) -> Response:
    user_id = json_body().get("user_id")
    if not isinstance(user_id, str) or state.get_user(r, user_id) is None:
        raise ApiError(65302)
    menu = store.current_menu_for(r, user_id)
    if menu is None:
        raise ApiError(46003)
    return wechat_json({"button": _as_shown(menu["button"])})


# --- tags ------------------------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/User_Management/User_Tag_Management.html


@wechat_api("/cgi-bin/tags/create", ("POST",))
def tags_create(r: Redis) -> Response:
    tag = json_body().get("tag")
    name = tag.get("name") if isinstance(tag, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ApiError(45157)
    if _bytes(name) > 30:
        raise ApiError(45158)
    if name in store.tags(r).values():
        raise ApiError(45157, "tag name already exists")
    if len(store.tags(r)) - len(store.RESERVED_TAGS) >= store.MAX_TAGS:
        raise ApiError(45056)
    tag_id = store.create_tag(r, name)
    return wechat_json({"tag": {"id": tag_id, "name": name}})


@wechat_api("/cgi-bin/tags/get")
def tags_get(r: Redis) -> Response:
    found = [{"id": i, "name": n, "count": store.tag_count(r, i)} for i, n in sorted(store.tags(r).items())]
    return wechat_json({"tags": found})


def _tagging_request(r: Redis) -> tuple[int, list[str]]:
    data = json_body()
    openids = data.get("openid_list")
    if not isinstance(openids, list):
        raise ApiError(47001)
    if not 1 <= len(openids) <= 50:
        raise ApiError(40032)
    try:
        tag_id = int(data.get("tagid"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError(45159) from None
    if tag_id not in store.tags(r):
        raise ApiError(45159)
    for openid in openids:
        _require_user(r, openid)
    return tag_id, openids


@wechat_api("/cgi-bin/tags/members/batchtagging", ("POST",))
def tags_batchtagging(r: Redis) -> Response:
    tag_id, openids = _tagging_request(r)
    for openid in openids:
        existing = store.user_tags(r, openid)
        if tag_id not in existing and len(existing) >= store.MAX_TAGS_PER_USER:
            raise ApiError(45059)
    store.tag_users(r, tag_id, openids)
    return ok()


@wechat_api("/cgi-bin/tags/members/batchuntagging", ("POST",))
def tags_batchuntagging(r: Redis) -> Response:
    tag_id, openids = _tagging_request(r)
    store.untag_users(r, tag_id, openids)
    return ok()


@wechat_api("/cgi-bin/tags/getidlist", ("POST",))
def tags_getidlist(r: Redis) -> Response:
    user = _require_user(r, json_body().get("openid"))
    return wechat_json({"tagid_list": store.user_tags(r, user["openid"])})


# --- users -----------------------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html


@wechat_api("/cgi-bin/user/info")
def user_info(r: Redis) -> Response:
    user = _require_user(r, request.args.get("openid"))
    if not user.get("subscribed"):
        return wechat_json({"subscribe": 0, "openid": user["openid"]})
    scene = user.get("scene") or user.get("qr_scene_str")
    return wechat_json(
        {
            "subscribe": 1,
            "openid": user["openid"],
            "language": "zh_CN",
            "subscribe_time": int(user.get("subscribed_at") or user["created_at"]),
            "remark": "",
            "groupid": 0,
            "tagid_list": store.user_tags(r, user["openid"]),
            "subscribe_scene": "ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH",
            "qr_scene": 0,
            "qr_scene_str": scene or "",
        }
    )


# --- messages --------------------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html


def _deliverable(r: Redis, openid: Any) -> dict[str, Any]:
    user = _require_user(r, openid)
    if not user.get("subscribed"):
        raise ApiError(43004)
    return user


@wechat_api("/cgi-bin/message/custom/send", ("POST",))
def custom_send(r: Redis) -> Response:
    data = json_body()
    user = _deliverable(r, data.get("touser"))
    openid = user["openid"]
    if not store.within_custom_window(r, openid):
        raise ApiError(45015)
    msgtype = data.get("msgtype")
    content = data.get(msgtype) if isinstance(msgtype, str) else None
    if not isinstance(content, dict):
        raise ApiError(40008 if msgtype not in ("text", "image", "voice", "news") else 47001)
    entry: dict[str, Any] = {"direction": "out", "via": "custom", "type": msgtype}
    if msgtype == "text":
        text = content.get("content")
        if not isinstance(text, str) or not text:
            raise ApiError(44004)
        if _bytes(text) > 2048:
            raise ApiError(45002)
        entry["text"] = text
    elif msgtype in ("image", "voice"):
        media_id = content.get("media_id")
        if not isinstance(media_id, str) or store.get_media(r, media_id) is None:
            raise ApiError(40007)
        entry["media_url"] = f"/_sandbox/media/{media_id}"
    elif msgtype == "news":
        articles = content.get("articles")
        if not isinstance(articles, list) or not articles:
            raise ApiError(44003)
        if len(articles) > 1:  # one article per custom news message since 2018
            raise ApiError(45008)
        article = articles[0] if isinstance(articles[0], dict) else {}
        entry.update(text=article.get("title"), url=article.get("url"), media_url=article.get("picurl"))
        entry["data"] = {"description": article.get("description")}
    else:
        raise ApiError(40008)
    state.append_chat(r, openid, entry)
    return ok()


# https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
# Value limits by field kind (the key without its number: thing2 -> thing), in characters.
TEMPLATE_LIMITS = {
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phrase": 5,
    "phone_number": 17,
    "car_number": 8,
    "amount": 11,
    "time": 30,
    "date": 30,
    "const": 20,
}
LEGACY_FIELD_LIMIT = 200  # first / keyword1 / remark of old templates


def _field_limit(key: str) -> int:
    kind = key.rstrip("0123456789")
    if kind == "name":
        return 10  # 10 Chinese characters (20 letters: see _value_ok)
    return TEMPLATE_LIMITS.get(kind, LEGACY_FIELD_LIMIT)


def _value_ok(key: str, value: Any) -> bool:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return False
    text = str(value)
    limit = _field_limit(key)
    if key.rstrip("0123456789") == "name" and text.isascii():
        limit = 20
    return len(text) <= limit


@wechat_api("/cgi-bin/message/template/send", ("POST",))
def template_send(r: Redis) -> Response:
    data = json_body()
    user = _require_user(r, data.get("touser"))
    template = store.get_template(r, str(data.get("template_id") or ""))
    if template is None:
        raise ApiError(40037)
    if not user.get("subscribed"):
        raise ApiError(43004)
    fields = data.get("data")
    if not isinstance(fields, dict):
        raise ApiError(47001)
    for key, field in fields.items():
        if not isinstance(field, dict) or not _value_ok(key, field.get("value")):
            raise ApiError(47003, f"data.{key}.value invalid")
    url = data.get("url")
    if url not in (None, "") and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ApiError(47003, "url invalid")
    msgid = store.next_msgid(r)
    client_msg_id = data.get("client_msg_id")
    if client_msg_id:
        first = store.remember_template_send(r, user["openid"], str(client_msg_id), msgid)
        if first is not None:  # a repeat within 10 minutes: WeChat drops it
            return ok(msgid=first)
    state.append_chat(
        r,
        user["openid"],
        {
            "direction": "out",
            "via": "template",
            "type": "template",
            "title": template["title"],
            "text": store.render_template(template["content"], fields),
            "url": url or None,
            "data": fields,
            "template_id": template["template_id"],
        },
    )
    return ok(msgid=msgid)


@wechat_api("/cgi-bin/template/get_all_private_template")
def template_list(r: Redis) -> Response:
    found = [
        {**t, "primary_industry": "教育", "deputy_industry": "培训", "example": ""}
        for t in store.list_templates(r)
    ]
    return wechat_json({"template_list": found})


# --- media -----------------------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/Asset_Management/New_temporary_materials.html

MEDIA_LIMITS = {
    "image": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "video": 10 * 1024 * 1024,
    "thumb": 64 * 1024,
}
MAGIC = {
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"GIF87a": ("image/gif", "gif"),
    b"GIF89a": ("image/gif", "gif"),
    b"BM": ("image/bmp", "bmp"),
    b"#!AMR": ("audio/amr", "amr"),
    b"ID3": ("audio/mpeg", "mp3"),
}


def _sniff(content: bytes) -> tuple[str, str] | None:
    for magic, kind in MAGIC.items():
        if content.startswith(magic):
            return kind
    if content[4:8] == b"ftyp":
        return "video/mp4", "mp4"
    return None


ALLOWED = {"image": {"jpg", "png", "gif", "bmp"}, "thumb": {"jpg"}, "voice": {"amr", "mp3"}, "video": {"mp4"}}


@wechat_api("/cgi-bin/media/upload", ("POST",))
def media_upload(r: Redis) -> Response:
    media_type = request.args.get("type", "")
    if media_type not in MEDIA_LIMITS:
        raise ApiError(40004)
    upload = request.files.get("media")
    if upload is None:
        raise ApiError(41005)
    content = upload.read()
    if not content:
        raise ApiError(41005)
    if len(content) > MEDIA_LIMITS[media_type]:
        raise ApiError(40006)
    sniffed = _sniff(content)
    if sniffed is None or sniffed[1] not in ALLOWED[media_type]:
        raise ApiError(40005)
    media_id = store.save_media(r, content, sniffed[0], media_type)
    return wechat_json({"type": media_type, "media_id": media_id, "created_at": int(store.now(r))})


def _media_response(media_id: str) -> Response | None:
    found = store.get_media(redis_client(), media_id)
    if found is None:
        return None
    content, content_type = found
    extension = next((ext for ct, ext in MAGIC.values() if ct == content_type), "bin")
    response = Response(content, content_type=content_type)
    response.headers["Content-disposition"] = f'attachment; filename="{media_id}.{extension}"'
    response.headers["Cache-Control"] = "no-cache, must-revalidate"
    return response


@wechat_api("/cgi-bin/media/get")
def media_get(r: Redis) -> Response:
    media_id = request.args.get("media_id", "")
    if not media_id:
        raise ApiError(41006)
    response = _media_response(media_id)
    if response is None:
        raise ApiError(40007)
    return response


@bp.get("/media/<media_id>")
def media_view(media_id: str) -> Response:
    """Media as the phone shows it (images the user sent, images the account sent)."""
    response = _media_response(media_id)
    if response is None:
        return Response("media not found", status=404, content_type="text/plain; charset=utf-8")
    response.headers["Content-disposition"] = "inline"
    return response


# --- QR codes with a scene -------------------------------------------------------------------
# https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html

QR_ACTIONS = {"QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"}


@wechat_api("/cgi-bin/qrcode/create", ("POST",))
def qrcode_create(r: Redis) -> Response:
    data = json_body()
    action = data.get("action_name")
    if action not in QR_ACTIONS:
        raise ApiError(40052)
    info = data.get("action_info")
    scene = info.get("scene") if isinstance(info, dict) else None
    if not isinstance(scene, dict):
        raise ApiError(40053)
    permanent = action.startswith("QR_LIMIT")
    scene_id: int | None = None
    scene_str: str | None = None
    if action.endswith("STR_SCENE"):
        scene_str = scene.get("scene_str")
        if not isinstance(scene_str, str) or not 1 <= len(scene_str) <= 64:
            raise ApiError(40053)
    else:
        raw_id = scene.get("scene_id")
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            raise ApiError(40053)
        upper = 100000 if permanent else 2**32 - 1
        if not 1 <= raw_id <= upper:
            raise ApiError(40053)
        scene_id = raw_id
    expire: int | None = None
    if not permanent:
        raw_expire = data.get("expire_seconds", store.QR_DEFAULT_EXPIRE)
        if not isinstance(raw_expire, int) or raw_expire <= 0:
            raise ApiError(47001)
        expire = min(raw_expire, store.QR_MAX_EXPIRE)
    code = store.create_qrcode(r, action, scene_id, scene_str, expire)
    payload: dict[str, Any] = {"ticket": code.ticket, "url": code.url}
    if expire is not None:
        payload["expire_seconds"] = expire
    return wechat_json(payload)


@bp.get("/showqrcode")
@bp.get("/api/mp/cgi-bin/showqrcode")  # mp.weixin.qq.com/cgi-bin/showqrcode, rewritten by the client
def showqrcode() -> Response:
    code = store.find_qrcode(redis_client(), request.args.get("ticket", ""))
    if code is None:
        return Response("ticket not found or expired", status=404, content_type="text/plain; charset=utf-8")
    image = qrcode.make(code.url, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    return Response(out.getvalue(), content_type="image/png")


# --- sandbox-only controls (not WeChat's API) ------------------------------------------------


@bp.get("/api/_calls")
def list_calls() -> Response:
    found = state.calls(redis_client(), request.args.get("path", ""))
    limit = request.args.get("limit", type=int)
    return jsonify(calls=found[:limit] if limit else found)


@bp.post("/api/_tokens/expire")
def expire_tokens() -> Response | tuple[Response, int]:
    """{"mode": "expire"} → next use gets 42001; {"mode": "invalidate"} → 40001."""
    mode = (request.get_json(silent=True) or {}).get("mode", "expire")
    if mode not in ("expire", "invalidate"):
        return jsonify(error="mode must be expire or invalidate"), 400
    return jsonify(tokens=store.expire_tokens(redis_client(), mode))


@bp.post("/api/_clock")
def move_clock() -> Response | tuple[Response, int]:
    seconds = (request.get_json(silent=True) or {}).get("advance_seconds")
    if not isinstance(seconds, int | float) or seconds < 0:
        return jsonify(error="advance_seconds must be a non-negative number"), 400
    return jsonify(now=store.advance_clock(redis_client(), seconds))


@bp.post("/api/_faults")
def add_fault() -> Response | tuple[Response, int]:
    """{"path": "/cgi-bin/message/custom/send", "errcode": -1 | "http_status": 503, "times": 2}."""
    data = request.get_json(silent=True) or {}
    path = data.get("path")
    errcode, http_status = data.get("errcode"), data.get("http_status")
    if not isinstance(path, str) or (errcode is None) == (http_status is None):
        return jsonify(error="give path and one of errcode / http_status"), 400
    store.add_fault(
        redis_client(), path, errcode=errcode, http_status=http_status, times=int(data.get("times", 1))
    )
    return jsonify(ok=True)


@bp.post("/api/_templates")
def add_template() -> Response | tuple[Response, int]:
    """Add a template to the account's library: {"title", "content", "template_id"?}."""
    data = request.get_json(silent=True) or {}
    if not isinstance(data.get("title"), str) or not isinstance(data.get("content"), str):
        return jsonify(error="title and content are required"), 400
    template_id = store.add_template(redis_client(), data["title"], data["content"], data.get("template_id"))
    return jsonify(template_id=template_id)
