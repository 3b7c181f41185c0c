"""The emulated WeChat server API over HTTP: answers, error codes and recorded calls, endpoint by endpoint."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import qrcode
from flask import Flask
from flask.testing import FlaskClient

from app.integrations import redis_client
from app.sandbox import state, store

API = "/_sandbox/api"


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 220, 255)).save(out, "PNG")
    return out.getvalue()


class WeChat:
    """Calls the emulator the way a client calls api.weixin.qq.com."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client
        self._token: str | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.get("/cgi-bin/token", token=False, **self.creds())["access_token"]
        return self._token

    def creds(self) -> dict[str, str]:
        return {
            "grant_type": "client_credential",
            "appid": self.app.config["WECHAT_APPID"],
            "secret": self.app.config["WECHAT_SECRET"],
        }

    def _query(self, token: bool, params: dict[str, Any]) -> dict[str, Any]:
        return {"access_token": self.token, **params} if token else params

    def get(self, path: str, *, token: bool = True, **params: Any) -> dict[str, Any]:
        response = self.client.get(API + path, query_string=self._query(token, params))
        assert response.status_code == 200, response.data
        body: dict[str, Any] = json.loads(response.data)
        return body

    def post(
        self, path: str, body: Any = None, *, raw: bytes | None = None, token: bool = True, **params: Any
    ) -> dict[str, Any]:
        data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        response = self.client.post(API + path, query_string=self._query(token, params), data=data)
        assert response.status_code == 200, response.data
        result: dict[str, Any] = json.loads(response.data)
        return result

    def user(self, nickname: str = "小红", *, subscribed: bool = True, touched: bool = True) -> str:
        with self.app.app_context():
            r = redis_client()
            user = state.create_user(r, nickname)
            user["subscribed"] = subscribed
            state.save_user(r, user)
            if touched:
                store.touch_user(r, user["openid"])
            return str(user["openid"])

    def chat(self, openid: str) -> list[dict[str, Any]]:
        with self.app.app_context():
            return state.chat(redis_client(), openid)

    def advance(self, seconds: float) -> None:
        assert self.client.post(f"{API}/_clock", json={"advance_seconds": seconds}).status_code == 200


@pytest.fixture
def wx(app: Flask, client: FlaskClient) -> WeChat:
    return WeChat(app, client)


def errcode(body: dict[str, Any]) -> int:
    return int(body.get("errcode", 0))


MENU = {
    "button": [
        {"type": "click", "name": "审核结果", "key": "STATUS"},
        {
            "name": "办理",
            "sub_button": [{"type": "view", "name": "实名绑定", "url": "http://127.0.0.1/h5/bind"}],
        },
    ]
}


# --- token -----------------------------------------------------------------------------------


def test_token_is_issued_and_the_call_recorded(wx: WeChat) -> None:
    body = wx.get("/cgi-bin/token", token=False, **wx.creds())
    assert body["expires_in"] == 7200 and len(body["access_token"]) > 32
    [call] = wx.client.get(f"{API}/_calls", query_string={"path": "/cgi-bin/token"}).json["calls"]
    assert call["method"] == "GET" and call["query"]["appid"] == wx.app.config["WECHAT_APPID"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"appid": "wx-someone-else"}, 40013),
        ({"secret": "wrong-secret"}, 40125),
        ({"grant_type": "password"}, 40002),
        ({"appid": ""}, 41002),
        ({"secret": ""}, 41004),
    ],
)
def test_token_errors(wx: WeChat, change: dict[str, str], code: int) -> None:
    body = wx.get("/cgi-bin/token", token=False, **{**wx.creds(), **change})
    assert errcode(body) == code and "rid:" in body["errmsg"]


def test_calls_without_or_with_a_bad_token(wx: WeChat) -> None:
    assert errcode(wx.get("/cgi-bin/tags/get", token=False)) == 41001
    assert errcode(wx.get("/cgi-bin/tags/get", token=False, access_token="forged")) == 40001


def test_expired_token(wx: WeChat) -> None:
    assert wx.token
    wx.advance(7200)
    assert errcode(wx.get("/cgi-bin/tags/get")) == 42001


# --- menus -----------------------------------------------------------------------------------


def test_menu_create_get_delete(wx: WeChat) -> None:
    assert errcode(wx.get("/cgi-bin/menu/get")) == 46003
    assert wx.post("/cgi-bin/menu/create", MENU) == {"errcode": 0, "errmsg": "ok"}
    shown = wx.get("/cgi-bin/menu/get")
    assert shown["menu"]["button"][0] == {
        "type": "click",
        "name": "审核结果",
        "key": "STATUS",
        "sub_button": [],
    }
    assert shown["menu"]["button"][1]["sub_button"][0]["url"] == "http://127.0.0.1/h5/bind"
    assert "conditionalmenu" not in shown
    assert errcode(wx.get("/cgi-bin/menu/delete")) == 0
    assert errcode(wx.get("/cgi-bin/menu/get")) == 46003


def _leaf(**fields: Any) -> dict[str, Any]:
    return {"type": "click", "name": "按钮", "key": "K", **fields}


@pytest.mark.parametrize(
    ("buttons", "code"),
    [
        ([], 40016),
        ([_leaf()] * 4, 40016),
        ([_leaf(name="这个名字太长了")], 40018),  # 7 Chinese characters = 21 bytes > 16
        ([_leaf(type="shake")], 40017),
        ([_leaf(key="")], 40019),
        ([_leaf(key="k" * 129)], 40019),
        ([{"type": "view", "name": "网址", "url": "http://x/" + "a" * 1020}], 40020),
        ([{"type": "view", "name": "网址", "url": "ftp://x/"}], 40055),
        ([{"name": "菜单", "sub_button": [_leaf()] * 6}], 40023),
        ([{"name": "菜单", "sub_button": [_leaf(name="长" * 21)]}], 40025),  # 63 bytes > 60
        ([{"name": "菜单", "sub_button": [_leaf(type="nope")]}], 40024),
        ([{"name": "菜单", "sub_button": [_leaf(key="k" * 129)]}], 40026),
        (
            [
                {
                    "name": "菜单",
                    "sub_button": [{"type": "view", "name": "a", "url": "http://x/" + "a" * 1020}],
                }
            ],
            40027,
        ),
        (
            [{"name": "菜单", "sub_button": [{"type": "view", "name": "a", "url": "javascript:alert(1)"}]}],
            40054,
        ),
    ],
)
def test_menu_limits(wx: WeChat, buttons: list[Any], code: int) -> None:
    assert errcode(wx.post("/cgi-bin/menu/create", {"button": buttons})) == code
    assert errcode(wx.get("/cgi-bin/menu/get")) == 46003


def test_menu_malformed_bodies(wx: WeChat) -> None:
    assert errcode(wx.post("/cgi-bin/menu/create", raw=b"{not json")) == 47001
    assert errcode(wx.post("/cgi-bin/menu/create", raw=b"")) == 44002
    assert errcode(wx.post("/cgi-bin/menu/create", raw=b"[1, 2]")) == 47001


def test_sub_name_limit_is_sixty_bytes_not_characters(wx: WeChat) -> None:
    exactly_60 = [{"name": "菜单", "sub_button": [_leaf(name="长" * 20)]}]
    assert errcode(wx.post("/cgi-bin/menu/create", {"button": exactly_60})) == 0


def test_conditional_menu_rules(wx: WeChat) -> None:
    tag_id = wx.post("/cgi-bin/tags/create", {"tag": {"name": "operator"}})["tag"]["id"]
    conditional = {**MENU, "matchrule": {"tag_id": str(tag_id)}}
    assert errcode(wx.post("/cgi-bin/menu/addconditional", conditional)) == 65303  # no default menu yet
    wx.post("/cgi-bin/menu/create", MENU)
    assert errcode(wx.post("/cgi-bin/menu/addconditional", MENU)) == 65304
    assert errcode(wx.post("/cgi-bin/menu/addconditional", {**MENU, "matchrule": {"sex": "1"}})) == 65304
    assert errcode(wx.post("/cgi-bin/menu/addconditional", {**MENU, "matchrule": {"tag_id": "999"}})) == 45159
    added = wx.post("/cgi-bin/menu/addconditional", conditional)
    assert isinstance(added["menuid"], str)
    shown = wx.get("/cgi-bin/menu/get")
    [menu] = shown["conditionalmenu"]
    assert menu["matchrule"] == {"tag_id": str(tag_id)} and str(menu["menuid"]) == added["menuid"]
    assert errcode(wx.post("/cgi-bin/menu/delconditional", {"menuid": "12345"})) == 65301
    assert errcode(wx.post("/cgi-bin/menu/delconditional", {"menuid": added["menuid"]})) == 0
    assert "conditionalmenu" not in wx.get("/cgi-bin/menu/get")


def test_each_user_sees_the_menu_of_their_tag(wx: WeChat) -> None:
    student, operator = wx.user("学生"), wx.user("运营")
    tag_id = wx.post("/cgi-bin/tags/create", {"tag": {"name": "operator"}})["tag"]["id"]
    wx.post("/cgi-bin/menu/create", MENU)
    operator_menu = {"button": [_leaf(name="今日统计", key="TODAY_STATS")], "matchrule": {"tag_id": tag_id}}
    wx.post("/cgi-bin/menu/addconditional", operator_menu)
    wx.post("/cgi-bin/tags/members/batchtagging", {"openid_list": [operator], "tagid": tag_id})
    with wx.app.app_context():
        r = redis_client()
        assert store.current_menu_for(r, student) == {"button": MENU["button"]}
        assert store.current_menu_for(r, operator) == {"button": operator_menu["button"]}
    assert wx.post("/cgi-bin/menu/trymatch", {"user_id": operator})["button"][0]["key"] == "TODAY_STATS"
    assert errcode(wx.post("/cgi-bin/menu/trymatch", {"user_id": "nobody"})) == 65302


def test_no_menu_for_anyone_before_one_is_pushed(wx: WeChat) -> None:
    openid = wx.user()
    with wx.app.app_context():
        assert store.current_menu_for(redis_client(), openid) is None


# --- tags and users --------------------------------------------------------------------------


def test_tags(wx: WeChat) -> None:
    created = wx.post("/cgi-bin/tags/create", {"tag": {"name": "operator"}})
    assert created == {"tag": {"id": 100, "name": "operator"}}
    assert errcode(wx.post("/cgi-bin/tags/create", {"tag": {"name": "operator"}})) == 45157
    assert errcode(wx.post("/cgi-bin/tags/create", {"tag": {"name": "标签" * 6}})) == 45158  # 36 bytes
    assert errcode(wx.post("/cgi-bin/tags/create", {"tag": {}})) == 45157
    openid = wx.user()
    assert (
        errcode(wx.post("/cgi-bin/tags/members/batchtagging", {"openid_list": [openid], "tagid": 100})) == 0
    )
    assert wx.get("/cgi-bin/tags/get")["tags"] == [
        {"id": 2, "name": "星标组", "count": 0},
        {"id": 100, "name": "operator", "count": 1},
    ]
    assert wx.post("/cgi-bin/tags/getidlist", {"openid": openid}) == {"tagid_list": [100]}
    assert (
        errcode(wx.post("/cgi-bin/tags/members/batchuntagging", {"openid_list": [openid], "tagid": 100})) == 0
    )
    assert wx.post("/cgi-bin/tags/getidlist", {"openid": openid}) == {"tagid_list": []}


def test_tagging_errors(wx: WeChat) -> None:
    openid = wx.user()
    wx.post("/cgi-bin/tags/create", {"tag": {"name": "operator"}})
    assert (
        errcode(wx.post("/cgi-bin/tags/members/batchtagging", {"openid_list": ["o-unknown"], "tagid": 100}))
        == 40003
    )
    assert (
        errcode(wx.post("/cgi-bin/tags/members/batchtagging", {"openid_list": [openid], "tagid": 555}))
        == 45159
    )
    assert errcode(wx.post("/cgi-bin/tags/members/batchtagging", {"openid_list": [], "tagid": 100})) == 40032
    many = {"openid_list": [openid] * 51, "tagid": 100}
    assert errcode(wx.post("/cgi-bin/tags/members/batchtagging", many)) == 40032
    assert errcode(wx.post("/cgi-bin/tags/getidlist", {"openid": "o-unknown"})) == 40003


def test_user_info(wx: WeChat) -> None:
    follower, gone = wx.user(), wx.user(subscribed=False)
    info = wx.get("/cgi-bin/user/info", openid=follower, lang="zh_CN")
    assert info["subscribe"] == 1 and info["openid"] == follower and info["tagid_list"] == []
    assert "nickname" not in info  # WeChat stopped returning it in 2021
    assert wx.get("/cgi-bin/user/info", openid=gone) == {"subscribe": 0, "openid": gone}
    assert errcode(wx.get("/cgi-bin/user/info", openid="o-unknown")) == 40003


# --- custom and template messages ------------------------------------------------------------


def test_custom_text_reaches_the_chat(wx: WeChat) -> None:
    openid = wx.user()
    body = {"touser": openid, "msgtype": "text", "text": {"content": "你的照片已通过检查"}}
    assert wx.post("/cgi-bin/message/custom/send", body) == {"errcode": 0, "errmsg": "ok"}
    [bubble] = wx.chat(openid)
    assert bubble["direction"] == "out" and bubble["via"] == "custom"
    assert bubble["type"] == "text" and bubble["text"] == "你的照片已通过检查"


def test_custom_messages_only_within_48_hours_of_the_users_last_message(wx: WeChat) -> None:
    openid = wx.user()
    body = {"touser": openid, "msgtype": "text", "text": {"content": "hi"}}
    wx.advance(47 * 3600)
    assert errcode(wx.post("/cgi-bin/message/custom/send", body)) == 0
    wx.advance(3601)
    assert errcode(wx.post("/cgi-bin/message/custom/send", body)) == 45015
    with wx.app.app_context():
        store.touch_user(redis_client(), openid)  # the user writes again (the messenger does this)
    assert errcode(wx.post("/cgi-bin/message/custom/send", body)) == 0


@pytest.mark.parametrize(
    ("who", "body", "code"),
    [
        ("unknown", {"msgtype": "text", "text": {"content": "x"}}, 40003),
        ("unsubscribed", {"msgtype": "text", "text": {"content": "x"}}, 43004),
        ("silent", {"msgtype": "text", "text": {"content": "x"}}, 45015),
        ("follower", {"msgtype": "text", "text": {"content": ""}}, 44004),
        ("follower", {"msgtype": "text", "text": {"content": "长" * 700}}, 45002),
        ("follower", {"msgtype": "telegram", "telegram": {}}, 40008),
        ("follower", {"msgtype": "image", "image": {"media_id": "nope"}}, 40007),
        ("follower", {"msgtype": "news", "news": {"articles": []}}, 44003),
    ],
)
def test_custom_message_errors(wx: WeChat, who: str, body: dict[str, Any], code: int) -> None:
    openid = {
        "unknown": "o" + "z" * 27,
        "unsubscribed": wx.user(subscribed=False),
        "silent": wx.user(touched=False),
        "follower": wx.user(),
    }[who]
    assert errcode(wx.post("/cgi-bin/message/custom/send", {"touser": openid, **body})) == code
    if who != "unknown":
        assert wx.chat(openid) == []


def test_custom_image_shows_the_uploaded_media(wx: WeChat) -> None:
    openid = wx.user()
    media_id = _upload(wx, png_bytes())["media_id"]
    body = {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}}
    assert errcode(wx.post("/cgi-bin/message/custom/send", body)) == 0
    [bubble] = wx.chat(openid)
    assert bubble["type"] == "image" and bubble["media_url"] == f"/_sandbox/media/{media_id}"
    assert wx.client.get(bubble["media_url"]).data == png_bytes()


TEMPLATE = "sandbox-review-result"


def test_template_message_reaches_the_chat_and_repeats_are_dropped(wx: WeChat) -> None:
    openid = wx.user(touched=False)  # no 48 h window for templates
    body = {
        "touser": openid,
        "template_id": TEMPLATE,
        "url": "http://127.0.0.1/h5/status",
        "data": {"phrase1": {"value": "驳回"}, "thing3": {"value": "背景颜色不符"}},
        "client_msg_id": "outbox-7",
    }
    first = wx.post("/cgi-bin/message/template/send", body)
    assert errcode(first) == 0 and isinstance(first["msgid"], int)
    [bubble] = wx.chat(openid)
    assert bubble["type"] == "template" and bubble["via"] == "template" and bubble["title"] == "审核结果通知"
    assert bubble["url"] == "http://127.0.0.1/h5/status" and bubble["data"] == body["data"]
    assert bubble["text"].startswith("审核结果：驳回\n") and "说明：背景颜色不符" in bubble["text"]
    repeat = wx.post("/cgi-bin/message/template/send", body)
    assert repeat["msgid"] == first["msgid"]
    assert len(wx.chat(openid)) == 1
    assert errcode(wx.post("/cgi-bin/message/template/send", {**body, "client_msg_id": "outbox-8"})) == 0
    assert len(wx.chat(openid)) == 2


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"thing3": {"value": "一" * 20}}, True),
        ({"thing3": {"value": "一" * 21}}, False),
        ({"phrase1": {"value": "审核未通过了"}}, False),  # phrase: 5 characters
        ({"character_string5": {"value": "A" * 33}}, False),
        ({"name6": {"value": "Alexander Hamilton"}}, True),  # 20 letters allowed for Latin names
        ({"name6": {"value": "欧阳" * 6}}, False),
        ({"thing3": "not an object"}, False),
        ({"thing3": {"value": ["x"]}}, False),
    ],
)
def test_template_value_limits(wx: WeChat, data: dict[str, Any], ok: bool) -> None:
    openid = wx.user()
    body = wx.post(
        "/cgi-bin/message/template/send", {"touser": openid, "template_id": TEMPLATE, "data": data}
    )
    assert errcode(body) == (0 if ok else 47003)
    if not ok:
        assert "data." in body["errmsg"]


def test_template_errors(wx: WeChat) -> None:
    follower, gone = wx.user(), wx.user(subscribed=False)
    send = "/cgi-bin/message/template/send"
    assert errcode(wx.post(send, {"touser": follower, "template_id": "nope", "data": {}})) == 40037
    assert errcode(wx.post(send, {"touser": gone, "template_id": TEMPLATE, "data": {}})) == 43004
    assert errcode(wx.post(send, {"touser": "o-unknown", "template_id": TEMPLATE, "data": {}})) == 40003
    assert errcode(wx.post(send, {"touser": follower, "template_id": TEMPLATE, "data": []})) == 47001


def test_templates_can_be_added_and_listed(wx: WeChat) -> None:
    added = wx.client.post(
        f"{API}/_templates", json={"title": "缴费成功通知", "content": "金额：{{amount1.DATA}}"}
    )
    template_id = added.json["template_id"]
    listed = wx.get("/cgi-bin/template/get_all_private_template")["template_list"]
    assert {t["template_id"] for t in listed} == {TEMPLATE, template_id}
    openid = wx.user()
    body = {"touser": openid, "template_id": template_id, "data": {"amount1": {"value": "2.00元"}}}
    assert errcode(wx.post("/cgi-bin/message/template/send", body)) == 0
    assert wx.chat(openid)[0]["text"] == "金额：2.00元"


# --- media -----------------------------------------------------------------------------------


def _upload(wx: WeChat, content: bytes, media_type: str = "image", filename: str = "a.png") -> dict[str, Any]:
    response = wx.client.post(
        f"{API}/cgi-bin/media/upload",
        query_string={"access_token": wx.token, "type": media_type},
        data={"media": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )
    body: dict[str, Any] = response.json
    return body


def test_media_upload_get_and_view(wx: WeChat) -> None:
    content = png_bytes()
    uploaded = _upload(wx, content)
    assert uploaded["type"] == "image" and len(uploaded["media_id"]) == 64
    got = wx.client.get(
        f"{API}/cgi-bin/media/get", query_string={"access_token": wx.token, "media_id": uploaded["media_id"]}
    )
    assert got.data == content and got.headers["Content-Type"] == "image/png"
    assert "attachment" in got.headers["Content-disposition"]
    viewed = wx.client.get(f"/_sandbox/media/{uploaded['media_id']}")
    assert viewed.data == content and viewed.headers["Content-disposition"] == "inline"
    [call] = wx.client.get(f"{API}/_calls", query_string={"path": "/cgi-bin/media/upload"}).json["calls"]
    assert call["body"]["files"]["media"]["size"] == len(content)


def test_media_errors(wx: WeChat) -> None:
    assert _upload(wx, png_bytes(), media_type="sticker")["errcode"] == 40004
    assert _upload(wx, b"%PDF-1.7 not an image", filename="a.jpg")["errcode"] == 40005
    assert _upload(wx, png_bytes(), media_type="thumb")["errcode"] == 40005  # thumbs are JPEG only
    assert _upload(wx, b"\xff\xd8\xff" + b"0" * 70_000, media_type="thumb")["errcode"] == 40006
    no_file = wx.client.post(
        f"{API}/cgi-bin/media/upload", query_string={"access_token": wx.token, "type": "image"}
    )
    assert no_file.json["errcode"] == 41005
    assert errcode(wx.get("/cgi-bin/media/get", media_id="nope")) == 40007
    assert errcode(wx.get("/cgi-bin/media/get")) == 41006
    assert wx.client.get("/_sandbox/media/nope").status_code == 404


def test_saved_media_for_other_sandbox_modules(app: Flask) -> None:
    with app.app_context():
        r = redis_client()
        media_id = store.save_media(r, b"\xff\xd8\xffjpeg", "image/jpeg")
        assert store.get_media(r, media_id) == (b"\xff\xd8\xffjpeg", "image/jpeg")
        assert store.get_media(r, "missing") is None


# --- QR codes --------------------------------------------------------------------------------


def test_scene_qrcode_and_its_image(wx: WeChat) -> None:
    body = {
        "expire_seconds": 3600,
        "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": "school:10542"}},
    }
    created = wx.post("/cgi-bin/qrcode/create", body)
    assert created["expire_seconds"] == 3600 and created["url"].startswith("http://weixin.qq.com/q/")
    image = wx.client.get("/_sandbox/showqrcode", query_string={"ticket": created["ticket"]})
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    # The square encodes the code's URL (what a phone reads when it scans it).
    expected = io.BytesIO()
    qrcode.make(created["url"], box_size=8, border=2).save(expected)
    assert image.data == expected.getvalue()
    with wx.app.app_context():
        found = store.find_qrcode(redis_client(), created["url"])
        assert found is not None and found.scene == "school:10542"
    wx.advance(3601)
    assert (
        wx.client.get("/_sandbox/showqrcode", query_string={"ticket": created["ticket"]}).status_code == 404
    )


def test_permanent_qrcode_has_no_expiry(wx: WeChat) -> None:
    created = wx.post(
        "/cgi-bin/qrcode/create",
        {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 42}}},
    )
    assert "expire_seconds" not in created
    wx.advance(40 * 24 * 3600)
    assert (
        wx.client.get("/_sandbox/showqrcode", query_string={"ticket": created["ticket"]}).status_code == 200
    )


def test_temporary_qrcode_defaults_to_60_seconds_and_caps_at_30_days(wx: WeChat) -> None:
    scene = {"action_info": {"scene": {"scene_id": 7}}}
    assert wx.post("/cgi-bin/qrcode/create", {"action_name": "QR_SCENE", **scene})["expire_seconds"] == 60
    long = wx.post("/cgi-bin/qrcode/create", {"action_name": "QR_SCENE", "expire_seconds": 10**9, **scene})
    assert long["expire_seconds"] == 30 * 24 * 3600


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action_name": "QR_FOREVER", "action_info": {"scene": {"scene_id": 1}}}, 40052),
        ({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}}, 40053),
        ({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}}, 40053),
        ({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}}, 40053),
        ({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": "7"}}}, 40053),
        ({"action_name": "QR_SCENE"}, 40053),
    ],
)
def test_qrcode_errors(wx: WeChat, body: dict[str, Any], code: int) -> None:
    assert errcode(wx.post("/cgi-bin/qrcode/create", body)) == code


# --- OAuth2 ----------------------------------------------------------------------------------


def _code(wx: WeChat, openid: str, scope: str = "snsapi_base") -> str:
    with wx.app.app_context():
        return store.issue_oauth_code(redis_client(), openid, wx.app.config["WECHAT_APPID"], scope)


def _exchange(wx: WeChat, code: str, **change: str) -> dict[str, Any]:
    params = {
        "appid": wx.app.config["WECHAT_APPID"],
        "secret": wx.app.config["WECHAT_SECRET"],
        "code": code,
        "grant_type": "authorization_code",
        **change,
    }
    return wx.get("/sns/oauth2/access_token", token=False, **params)


def test_oauth_code_exchange_once(wx: WeChat) -> None:
    openid = wx.user()
    code = _code(wx, openid)
    body = _exchange(wx, code)
    assert body["openid"] == openid and body["scope"] == "snsapi_base" and body["expires_in"] == 7200
    assert errcode(_exchange(wx, code)) == 40163


def test_oauth_code_errors(wx: WeChat) -> None:
    openid = wx.user()
    assert errcode(_exchange(wx, "never-issued")) == 40029
    assert errcode(_exchange(wx, _code(wx, openid), secret="wrong")) == 40125
    assert errcode(_exchange(wx, _code(wx, openid), appid="wx-other")) == 40013
    assert errcode(_exchange(wx, _code(wx, openid), grant_type="client_credential")) == 40002
    assert errcode(_exchange(wx, "")) == 41008
    stale = _code(wx, openid)
    wx.advance(301)  # codes live 5 minutes
    assert errcode(_exchange(wx, stale)) == 40029


def test_sns_userinfo_needs_the_userinfo_scope(wx: WeChat) -> None:
    openid = wx.user("小蓝")
    base = _exchange(wx, _code(wx, openid))
    assert (
        errcode(wx.get("/sns/userinfo", token=False, access_token=base["access_token"], openid=openid))
        == 48001
    )
    full = _exchange(wx, _code(wx, openid, "snsapi_userinfo"))
    info = wx.get("/sns/userinfo", token=False, access_token=full["access_token"], openid=openid)
    assert info["openid"] == openid and info["nickname"] == "小蓝"
    assert errcode(wx.get("/sns/userinfo", token=False, access_token="forged", openid=openid)) == 40001
    assert (
        errcode(wx.get("/sns/userinfo", token=False, access_token=full["access_token"], openid="o-x"))
        == 40003
    )


AUTHORIZE = "/_sandbox/oauth/connect/oauth2/authorize"


def _authorize_query(app: Flask, **change: str) -> dict[str, str]:
    return {
        "appid": app.config["WECHAT_APPID"],
        "redirect_uri": app.config["PUBLIC_BASE_URL"] + "/auth/wechat/callback",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "s1",
        **change,
    }


def test_authorize_redirects_the_phone_user_back_with_a_code(wx: WeChat) -> None:
    openid = wx.user()
    wx.client.set_cookie("sandbox_phone_user", openid, path="/_sandbox")
    response = wx.client.get(AUTHORIZE, query_string=_authorize_query(wx.app))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(wx.app.config["PUBLIC_BASE_URL"] + "/auth/wechat/callback?code=")
    assert location.endswith("&state=s1")
    code = location.split("code=")[1].split("&")[0]
    assert _exchange(wx, code)["openid"] == openid


@pytest.mark.parametrize(
    "change",
    [
        {"appid": "wx-other"},
        {"redirect_uri": "https://evil.example/steal"},
        {"scope": "snsapi_login"},
        {"response_type": "token"},
    ],
)
def test_authorize_refuses_bad_parameters(wx: WeChat, change: dict[str, str]) -> None:
    wx.client.set_cookie("sandbox_phone_user", wx.user(), path="/_sandbox")
    response = wx.client.get(AUTHORIZE, query_string=_authorize_query(wx.app, **change))
    assert response.status_code == 400 and "参数错误" in response.get_data(as_text=True)


def test_authorize_without_a_phone_user_asks_to_pick_one(wx: WeChat) -> None:
    openid = wx.user("小绿")
    response = wx.client.get(AUTHORIZE, query_string=_authorize_query(wx.app))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "请先选择微信用户" in page and "小绿" in page
    pick = wx.client.get(f"/_sandbox/oauth/use/{openid}", query_string={"back": AUTHORIZE + "?x=1"})
    assert pick.status_code == 302 and pick.headers["Location"] == AUTHORIZE + "?x=1"
    assert "sandbox_phone_user=" + openid in pick.headers["Set-Cookie"]


# --- sandbox controls ------------------------------------------------------------------------


def test_injected_faults_fail_the_next_calls_then_stop(wx: WeChat) -> None:
    wx.client.post(f"{API}/_faults", json={"path": "/cgi-bin/tags/get", "errcode": -1, "times": 2})
    assert errcode(wx.get("/cgi-bin/tags/get")) == -1
    assert errcode(wx.get("/cgi-bin/tags/get")) == -1
    assert errcode(wx.get("/cgi-bin/tags/get")) == 0
    wx.client.post(f"{API}/_faults", json={"path": "/cgi-bin/tags/get", "http_status": 502})
    assert (
        wx.client.get(f"{API}/cgi-bin/tags/get", query_string={"access_token": wx.token}).status_code == 502
    )


def test_controls_refuse_bad_input(wx: WeChat) -> None:
    assert wx.client.post(f"{API}/_faults", json={"path": "/x"}).status_code == 400
    assert wx.client.post(f"{API}/_clock", json={"advance_seconds": -5}).status_code == 400
    assert wx.client.post(f"{API}/_tokens/expire", json={"mode": "later"}).status_code == 400
