"""The outbound WeChat API client (wechatpy), pointed at WECHAT_API_BASE, and its OAuth2 helper.

Three things wechatpy does not do on its own:

- **Where calls go.** `API_BASE_URL` moves most calls, but the token URL is hard-coded and several
  APIs (customservice, showqrcode) use absolute URLs. A transport adapter on the client's HTTP
  session rewrites WeChat's hosts to WECHAT_API_BASE, so every call reaches the sandbox (or a
  proxy) and nothing leaks to the real hosts. It also gives every request a timeout.
- **One token for everyone.** The token lives in Redis (wechatpy's RedisStorage). Fetching a new
  one invalidates the previous one at WeChat (after a 5-minute overlap), so fetches happen under a
  Redis lock, with a re-check after acquiring: 20 threads or several worker processes asking at
  once cause exactly one fetch.
- **Retry once.** An expired or replaced token (40001/40014/42001) refreshes through the same lock,
  and only if no other worker has already replaced the token that failed, then retries the call
  once. wechatpy's own `auto_retry` is off: it refetches without the lock and retries without limit.

Note: `inspect.getmembers(client)` reads the `access_token` property and so fetches a token.
https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests
from redis import Redis
from redis.exceptions import LockError
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.oauth import WeChatOAuth
from wechatpy.session.redisstorage import RedisStorage

log = logging.getLogger(__name__)

REAL_API_BASE = "https://api.weixin.qq.com"
TOKEN_URL = REAL_API_BASE + "/cgi-bin/token"
SHOWQRCODE_URL = "https://mp.weixin.qq.com/cgi-bin/showqrcode"
# 40001 invalid credential, 40014 invalid access_token, 42001 access_token expired.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Stop using a token this long before WeChat says it expires (never hand out a dying token).
TOKEN_MARGIN_SECONDS = 300


def host_routes(api_base: str) -> dict[str, str]:
    """WeChat's hosts → where they should go. Empty when talking to the real WeChat."""
    api_base = api_base.rstrip("/")
    if api_base == REAL_API_BASE:
        return {}
    # showqrcode lives on mp.weixin.qq.com; an emulator serves it under <base>/mp.
    return {REAL_API_BASE: api_base, "https://mp.weixin.qq.com": api_base + "/mp"}


class WeChatHostsAdapter(HTTPAdapter):
    """Rewrites WeChat's hosts to the configured base and applies a default timeout."""

    def __init__(self, routes: dict[str, str], timeout: float) -> None:
        super().__init__()
        self.routes = routes
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        for prefix, base in self.routes.items():
            if url == prefix or url.startswith((prefix + "/", prefix + "?")):
                request.url = base + url[len(prefix) :]
                break
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def mount_adapter(http: requests.Session, api_base: str, timeout: float) -> None:
    adapter = WeChatHostsAdapter(host_routes(api_base), timeout)
    http.mount("https://", adapter)
    http.mount("http://", adapter)


class ApiClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's WeChatClient with a shared, locked access token and a single retry."""

    def __init__(self, appid: str, secret: str, *, redis: Redis, api_base: str, timeout: float) -> None:
        super().__init__(
            appid, secret, session=RedisStorage(redis, prefix="wechat"), timeout=timeout, auto_retry=False
        )
        self._redis = redis
        # Long enough for one token request (its timeout) plus slack; a crashed holder frees it then.
        self._lock_seconds = timeout * 2 + 5
        mount_adapter(self._http, api_base, timeout)

    @property
    def token_lock_key(self) -> str:
        return f"wechat:{self.appid}:access_token:lock"

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if token:
            return str(token)
        return self._refresh_token(stale=None)

    def fetch_access_token(self) -> dict[str, Any]:
        """Replace the current token (coalesced: concurrent callers share one fetch)."""
        token = self._refresh_token(stale=self.session.get(self.access_token_key))
        return {"access_token": token}

    def _refresh_token(self, stale: str | None) -> str:
        """Fetch a token unless someone else already replaced `stale` (None: "there is none")."""
        lock = self._redis.lock(
            self.token_lock_key, timeout=self._lock_seconds, blocking_timeout=self._lock_seconds, sleep=0.02
        )
        if not lock.acquire():
            raise WeChatClientException(None, "timed out waiting for the access_token lock", client=self)
        try:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return str(current)
            return self._fetch_token()
        finally:
            try:
                lock.release()
            except LockError:  # the lease ran out while fetching; nothing of ours to release
                log.warning("access_token lock expired before release")

    def _fetch_token(self) -> str:
        log.info("fetching a WeChat access_token")
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        res = self._http.get(TOKEN_URL, params=params, timeout=self.timeout)
        try:
            res.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(
                None, None, client=self, request=exc.request, response=exc.response
            ) from exc
        result = res.json()
        if result.get("errcode"):
            raise WeChatClientException(
                result["errcode"], result.get("errmsg"), client=self, request=res.request, response=res
            )
        token = str(result["access_token"])
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self.access_token_key, token, max(expires_in - TOKEN_MARGIN_SECONDS, 30))
        return token

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        params = kwargs.setdefault("params", {})
        caller_token = not isinstance(params, dict) or "access_token" in params
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        except WeChatClientException as exc:
            if caller_token or exc.errcode not in TOKEN_ERRORS:
                raise
            # wechatpy put the token it used into our params dict: that is the one WeChat refused.
            stale = params.pop("access_token", None)
            log.info("access_token refused, refreshing once", extra={"errcode": exc.errcode})
            self._refresh_token(stale=stale)
            for file in (kwargs.get("files") or {}).values():
                if hasattr(file, "seek"):
                    file.seek(0)
            return super()._request(method, url_or_endpoint, **kwargs)

    # --- calls wechatpy 1.8 lacks or routes around the session -------------------------------

    def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, Any],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Template message with `client_msg_id` (WeChat drops a repeat within 10 minutes).
        https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
        """
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        result: dict[str, Any] = self.post("message/template/send", data=body)
        return result

    def show_qrcode(self, ticket: str) -> bytes:
        """The QR code image for a ticket (wechatpy's `qrcode.show` bypasses the session)."""
        res = self._http.get(SHOWQRCODE_URL, params={"ticket": ticket}, timeout=self.timeout)
        res.raise_for_status()
        content: bytes = res.content
        return content


def build_oauth(config: Mapping[str, Any], redirect_uri: str, state: str = "") -> WeChatOAuth:
    """An OAuth2 (网页授权, snsapi_base) helper against WECHAT_OAUTH_BASE / WECHAT_API_BASE.
    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    oauth = WeChatOAuth(config["WECHAT_APPID"], config["WECHAT_SECRET"], redirect_uri, "snsapi_base", state)
    oauth.API_BASE_URL = config["WECHAT_API_BASE"] + "/"
    oauth.OAUTH_BASE_URL = config["WECHAT_OAUTH_BASE"] + "/connect/"
    mount_adapter(oauth._http, config["WECHAT_API_BASE"], config["WECHAT_HTTP_TIMEOUT_SECONDS"])
    return oauth
