"""Guards on what a request may look like, applied before any view or extension reads it.

## Stalled bodies

A request body that stops arriving ends the request with 408 instead of holding a thread.

gunicorn's gthread worker reads a request's body in one of its few threads, on a blocking socket with no
timeout: twelve connections that sent `Content-Length: 60000` and then five bytes stopped /healthz from
answering for over 40 s. nginx in front buffers bodies in production, but the service must not depend on
it. Like nginx's `client_body_timeout`, the limit is on the wait between two reads, so a slow mobile
upload that keeps moving is not cut off.

gunicorn hands the client socket to the app as `environ["gunicorn.socket"]` and makes it blocking again
(no timeout) before each request on the connection, so the timeout set here lasts one request. Servers
without that key (the test server, the embedded sandbox) are left as they are.

## Text the service cannot take

A multipart part whose Content-Disposition name cannot be read (a line break in it, say) comes out of
Werkzeug's parser under the key None, and Flask-WTF's CSRF check then fails with an AttributeError — a
500 for any client that sends one; and PostgreSQL refuses a NUL character in text. Both are refused
before any view or extension reads the request (`check_text_fields`).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterable, Iterator
from typing import IO, Any

from flask import Request, Response, request
from werkzeug.exceptions import BadRequest, RequestTimeout

WSGIApp = Any


class _TimedInput:
    """wsgi.input whose reads raise RequestTimeout (408) when the client stalls past the socket timeout.

    On a timeout the socket's reading side is shut: the rest of the body is still on the connection, so it
    cannot carry another request, and gunicorn (which ignores an app's `Connection: close`) would otherwise
    keep it alive and later drain the body without any timeout. Shut, the drain ends at once and gunicorn
    closes the connection after sending the 408.
    """

    def __init__(self, stream: IO[bytes], sock: socket.socket) -> None:
        self._stream = stream
        self._sock = sock

    def _guard(self, read: Any, *args: Any) -> Any:
        try:
            return read(*args)
        except TimeoutError:  # socket.timeout is TimeoutError
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)
            raise RequestTimeout() from None

    def read(self, *args: Any) -> bytes:
        data: bytes = self._guard(self._stream.read, *args)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._guard(self._stream.readline, *args)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._guard(self._stream.readlines, *args)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class BodyTimeout:
    """WSGI middleware: a per-read timeout on the request body's socket (gunicorn only)."""

    def __init__(self, app: WSGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if isinstance(sock, socket.socket):
            sock.settimeout(self.seconds)
            environ["wsgi.input"] = _TimedInput(environ["wsgi.input"], sock)
        return self.app(environ, start_response)  # type: ignore[no-any-return]


FORM_MIMETYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def check_text_fields() -> Response | None:
    """before_request, ahead of the CSRF check: refuse what the database or the CSRF check cannot take.

    - a form part without a readable name (Werkzeug names it None; Flask-WTF then fails): 400;
    - a NUL character in a query parameter, a form field or a JSON string: PostgreSQL refuses NUL in
      text ("A string literal cannot contain NUL"), which was a 500. No person types one. The API
      answers 422 naming the field, as for any invalid value; other pages 400.
    """
    # Every read through Flask's `request` proxy costs ~1.5 µs: the request is bound once (this runs
    # on every request, /wechat's included).
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    api = req.path.startswith("/api/")
    if req.mimetype in FORM_MIMETYPES:
        if any(not isinstance(key, str) for key in (*req.form.keys(), *req.files.keys())):
            raise BadRequest("表单字段名无法识别")
        pairs = [*req.args.items(multi=True), *req.form.items(multi=True)]
    elif b"%00" in req.query_string or b"\x00" in req.query_string:
        pairs = list(req.args.items(multi=True))
    else:
        # A NUL reaches a query parameter only as %00 (or raw): one search of the raw query string
        # clears the other requests without decoding and walking their parameters.
        pairs = []
    field = next((key for key, value in pairs if "\x00" in key or "\x00" in value), None)
    # JSON bodies of the API only: views elsewhere read their body as a stream (/pay/notify, /wechat).
    if field is None and api and req.is_json:
        field = "_" if b"\\u0000" in req.get_data(cache=True) else None
    if field is None:
        return None
    if api:
        body = {"errors": [{"field": field.replace("\x00", "") or "_", "message": NUL_MESSAGE}]}
        return Response(json.dumps(body, ensure_ascii=False), status=422, mimetype="application/json")
    raise BadRequest(NUL_MESSAGE)


NUL_MESSAGE = "内容中有无法识别的字符（空字符），请重新输入"
