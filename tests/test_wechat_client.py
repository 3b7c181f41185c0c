"""The outbound client against the sandbox over real HTTP: host rewriting, one shared token, retry once,
and the wechat.send_text / wechat.send_template jobs through the outbox."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.integrations import redis_client, wechat_client
from app.integrations.wechat import ApiClient, host_routes
from app.jobs.worker import run_due
from app.sandbox import state, store
from app.services import outbox
from models import OutboxItem, OutboxStatus


def _client(app: Flask) -> ApiClient:
    client: ApiClient = app.extensions["wechat_client"]
    return client


def _calls(app: Flask, path: str) -> list[dict[str, Any]]:
    with app.app_context():
        return state.calls(redis_client(), path)


def follower(app: Flask, nickname: str = "小明", *, touched: bool = True) -> str:
    """A sandbox user who follows the account (and wrote to it recently, opening the 48 h window)."""
    with app.app_context():
        r = redis_client()
        user = state.create_user(r, nickname)
        user["subscribed"] = True
        state.save_user(r, user)
        if touched:
            store.touch_user(r, user["openid"])
        return str(user["openid"])


def _run_together(count: int, func: Callable[[], Any]) -> list[Any]:
    """Start `count` threads at the same instant (a barrier) and collect results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = func()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_hosts_are_rewritten_only_when_not_talking_to_wechat() -> None:
    assert host_routes("https://api.weixin.qq.com") == {}
    routes = host_routes("http://127.0.0.1:9/_sandbox/api")
    assert routes["https://api.weixin.qq.com"] == "http://127.0.0.1:9/_sandbox/api"
    assert routes["https://mp.weixin.qq.com"] == "http://127.0.0.1:9/_sandbox/api/mp"


def test_building_the_app_fetches_no_token(app: Flask) -> None:
    assert _calls(app, "/cgi-bin/token") == []


def test_hard_coded_token_url_and_absolute_urls_reach_the_sandbox(app: Flask) -> None:
    client = _client(app)
    assert client.tag.get() == [{"id": 2, "name": "星标组", "count": 0}]
    assert len(_calls(app, "/cgi-bin/token")) == 1
    # customservice uses absolute https://api.weixin.qq.com URLs: it must not leave the machine either.
    with pytest.raises(WeChatClientException) as caught:
        client.customservice.get_session_list("kf2001@sandbox")
    # Not emulated, so the sandbox answered 404, but it is where the request went.
    assert caught.value.response.status_code == 404
    assert caught.value.response.url.startswith(
        app.config["WECHAT_API_BASE"] + "/customservice/kfsession/getsessionlist?"
    )


def test_token_is_cached_in_redis_and_shared_between_clients(app: Flask) -> None:
    client = _client(app)
    client.menu.get()
    client.tag.get()
    other = ApiClient(
        app.config["WECHAT_APPID"],
        app.config["WECHAT_SECRET"],
        redis=app.extensions["redis"],
        api_base=app.config["WECHAT_API_BASE"],
        timeout=5,
    )
    other.tag.get()  # another process's client: same Redis, same token
    assert len(_calls(app, "/cgi-bin/token")) == 1
    assert other.access_token == client.access_token


def test_twenty_concurrent_callers_fetch_one_token(app: Flask) -> None:
    client = _client(app)
    results = _run_together(20, client.tag.get)
    assert all(isinstance(r, list) for r in results), results
    assert len(_calls(app, "/cgi-bin/token")) == 1
    assert len(_calls(app, "/cgi-bin/tags/get")) == 20


def test_twenty_processes_worth_of_clients_fetch_one_token(app: Flask) -> None:
    # Separate client objects (separate HTTP sessions, as in separate worker processes).
    def call() -> Any:
        return ApiClient(
            app.config["WECHAT_APPID"],
            app.config["WECHAT_SECRET"],
            redis=app.extensions["redis"],
            api_base=app.config["WECHAT_API_BASE"],
            timeout=5,
        ).tag.get()

    results = _run_together(20, call)
    assert all(isinstance(r, list) for r in results), results
    assert len(_calls(app, "/cgi-bin/token")) == 1


@pytest.mark.parametrize(("mode", "errcode"), [("invalidate", 40001), ("expire", 42001)])
def test_refused_token_refreshes_once_and_the_call_succeeds(
    app: Flask, live_server: Any, mode: str, errcode: int
) -> None:
    client = _client(app)
    client.tag.get()
    old_token = client.access_token
    requests.post(f"{live_server.url}/_sandbox/api/_tokens/expire", json={"mode": mode}, timeout=5)
    # The sandbox really refuses the old token now.
    raw = requests.get(f"{live_server.url}/_sandbox/api/cgi-bin/tags/get?access_token={old_token}", timeout=5)
    assert raw.json()["errcode"] == errcode

    assert client.tag.get()[0]["name"] == "星标组"
    assert len(_calls(app, "/cgi-bin/token")) == 2
    assert client.access_token != old_token


def test_concurrent_callers_with_a_refused_token_refresh_once(app: Flask, live_server: Any) -> None:
    client = _client(app)
    client.tag.get()
    requests.post(f"{live_server.url}/_sandbox/api/_tokens/expire", json={"mode": "invalidate"}, timeout=5)
    results = _run_together(20, client.tag.get)
    assert all(isinstance(r, list) for r in results), results
    assert len(_calls(app, "/cgi-bin/token")) == 2  # the first, and ONE refresh for all twenty


def test_a_token_that_stays_refused_is_retried_only_once(app: Flask, live_server: Any) -> None:
    client = _client(app)
    client.tag.get()
    requests.post(
        f"{live_server.url}/_sandbox/api/_faults",
        json={"path": "/cgi-bin/tags/get", "errcode": 40001, "times": 5},
        timeout=5,
    )
    with pytest.raises(WeChatClientException) as caught:
        client.tag.get()
    assert caught.value.errcode == 40001
    assert len(_calls(app, "/cgi-bin/tags/get")) == 1 + 2  # the first call, the refused one, one retry
    assert len(_calls(app, "/cgi-bin/token")) == 2


def test_old_token_keeps_working_five_minutes_after_a_new_fetch(app: Flask, live_server: Any) -> None:
    base = f"{live_server.url}/_sandbox/api"
    creds = {"grant_type": "client_credential", "appid": app.config["WECHAT_APPID"]}
    creds["secret"] = app.config["WECHAT_SECRET"]
    first = requests.get(f"{base}/cgi-bin/token", params=creds, timeout=5).json()["access_token"]
    second = requests.get(f"{base}/cgi-bin/token", params=creds, timeout=5).json()["access_token"]

    def errcode(token: str) -> int:
        body = requests.get(f"{base}/cgi-bin/tags/get", params={"access_token": token}, timeout=5).json()
        return int(body.get("errcode", 0))

    assert errcode(first) == 0 and errcode(second) == 0
    requests.post(f"{base}/_clock", json={"advance_seconds": 301}, timeout=5)
    assert errcode(first) == 42001
    assert errcode(second) == 0
    requests.post(f"{base}/_clock", json={"advance_seconds": 7200}, timeout=5)
    assert errcode(second) == 42001


def test_qrcode_image_through_the_client(app: Flask) -> None:
    client = _client(app)
    created = client.qrcode.create(
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "school:10542"}}}
    )
    png = client.show_qrcode(created["ticket"])
    assert png.startswith(b"\x89PNG")


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (60, 140, 220)).save(out, "PNG")
    return out.getvalue()


def test_media_upload_and_download_through_the_client(app: Flask) -> None:
    tiny = tiny_png()
    client = _client(app)
    uploaded = client.media.upload("image", ("photo.png", io.BytesIO(tiny), "image/png"))
    downloaded = client.media.download(uploaded["media_id"])
    assert downloaded.content == tiny


# --- jobs through the outbox -----------------------------------------------------------------


def _enqueue(app: Flask, kind: str, payload: dict[str, Any], *, set_client_msg_id: bool = False) -> int:
    with app.app_context():
        item = outbox.enqueue(db.session, kind, payload)
        assert item is not None
        if set_client_msg_id:
            db.session.flush()  # the row id is the client_msg_id: WeChat drops a resend of it
            item.payload = {**payload, "client_msg_id": f"outbox-{item.id}"}
        db.session.commit()
        return item.id


def _item(app: Flask, item_id: int) -> OutboxItem:
    with app.app_context():
        found = db.session.scalar(select(OutboxItem).where(OutboxItem.id == item_id))
        assert found is not None
        db.session.expunge(found)
        return found


def _chat(app: Flask, openid: str) -> list[dict[str, Any]]:
    with app.app_context():
        return state.chat(redis_client(), openid)


def test_send_text_job_delivers_a_custom_message(app: Flask) -> None:
    openid = follower(app)
    item_id = _enqueue(app, "wechat.send_text", {"openid": openid, "text": "照片已收到，正在检查"})
    assert run_due(app) == 1
    assert _item(app, item_id).status == OutboxStatus.DONE
    [call] = _calls(app, "/cgi-bin/message/custom/send")
    assert call["body"] == {"touser": openid, "msgtype": "text", "text": {"content": "照片已收到，正在检查"}}
    [bubble] = _chat(app, openid)
    assert (
        bubble["direction"] == "out"
        and bubble["via"] == "custom"
        and bubble["text"] == "照片已收到，正在检查"
    )


def test_send_text_outside_the_48_hour_window_is_dead_at_once(app: Flask) -> None:
    openid = follower(app, touched=False)
    item_id = _enqueue(app, "wechat.send_text", {"openid": openid, "text": "你好"})
    assert run_due(app) == 1
    item = _item(app, item_id)
    assert item.status == OutboxStatus.DEAD
    assert item.last_error is not None and "45015" in item.last_error
    assert _chat(app, openid) == []


def test_send_text_to_an_unknown_openid_is_dead_at_once(app: Flask) -> None:
    item_id = _enqueue(app, "wechat.send_text", {"openid": "o" + "x" * 27, "text": "你好"})
    run_due(app)
    item = _item(app, item_id)
    assert item.status == OutboxStatus.DEAD and "40003" in (item.last_error or "")


def test_send_text_retries_when_wechat_is_busy(app: Flask, live_server: Any) -> None:
    openid = follower(app)
    requests.post(
        f"{live_server.url}/_sandbox/api/_faults",
        json={"path": "/cgi-bin/message/custom/send", "errcode": -1},
        timeout=5,
    )
    item_id = _enqueue(app, "wechat.send_text", {"openid": openid, "text": "你好"})
    run_due(app)
    item = _item(app, item_id)
    assert item.status == OutboxStatus.PENDING and item.attempts == 1
    assert "-1" in (item.last_error or "")


def test_send_text_retries_on_http_5xx(app: Flask, live_server: Any) -> None:
    openid = follower(app)
    requests.post(
        f"{live_server.url}/_sandbox/api/_faults",
        json={"path": "/cgi-bin/message/custom/send", "http_status": 503},
        timeout=5,
    )
    item_id = _enqueue(app, "wechat.send_text", {"openid": openid, "text": "你好"})
    run_due(app)
    assert _item(app, item_id).status == OutboxStatus.PENDING
    assert _chat(app, openid) == []


def test_send_template_job_delivers_and_wechat_drops_the_resend(app: Flask) -> None:
    openid = follower(app, touched=False)  # templates are not bound to the 48 h window
    payload = {
        "openid": openid,
        "template_id": "sandbox-review-result",
        "data": {
            "phrase1": {"value": "通过"},
            "thing2": {"value": "湖南师范大学"},
            "thing3": {"value": "请打印回执"},
        },
        "url": f"{app.config['PUBLIC_BASE_URL']}/h5/status",
    }
    item_id = _enqueue(app, "wechat.send_template", payload)  # the worker supplies the row id
    assert run_due(app) == 1
    assert _item(app, item_id).status == OutboxStatus.DONE
    [call] = _calls(app, "/cgi-bin/message/template/send")
    assert call["body"]["client_msg_id"] == f"outbox-{item_id}"
    [bubble] = _chat(app, openid)
    assert bubble["type"] == "template" and bubble["via"] == "template"
    assert bubble["url"].endswith("/h5/status")
    assert "审核结果：通过" in bubble["text"]

    # A worker killed after sending runs the job again: same client_msg_id, WeChat drops it.
    with app.app_context():
        from app.jobs.wechat import send_template

        send_template({**payload, "client_msg_id": f"outbox-{item_id}"})
    assert len(_chat(app, openid)) == 1


def test_send_template_with_an_over_long_value_is_dead(app: Flask) -> None:
    openid = follower(app)
    payload = {
        "openid": openid,
        "template_id": "sandbox-review-result",
        "data": {"thing3": {"value": "这是一段远远超过二十个字符的说明文字，模板消息不会接受它的"}},
    }
    item_id = _enqueue(app, "wechat.send_template", payload)
    run_due(app)
    item = _item(app, item_id)
    assert item.status == OutboxStatus.DEAD and "47003" in (item.last_error or "")


def test_send_template_with_unknown_template_is_dead(app: Flask) -> None:
    openid = follower(app)
    item_id = _enqueue(app, "wechat.send_template", {"openid": openid, "template_id": "nope", "data": {}})
    run_due(app)
    assert "40037" in (_item(app, item_id).last_error or "")


def test_accessor_returns_the_apps_client(app: Flask) -> None:
    with app.app_context():
        assert wechat_client() is app.extensions["wechat_client"]
