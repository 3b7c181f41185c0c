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

## Form fields without a name

A multipart part whose Content-Disposition name cannot be read (a line break in it, say) comes out of
Werkzeug's parser under the key None, and Flask-WTF's CSRF check then fails with an AttributeError — a
500 for any client that sends one. Such a form is refused with 400 first.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator
from typing import IO, Any

from flask import request
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


def refuse_unnamed_form_fields() -> None:
    """before_request: 400 for a form with a field that has no readable name. Registered before the CSRF
    check, which would otherwise fail on it."""
    if request.mimetype not in FORM_MIMETYPES:
        return
    if any(not isinstance(key, str) for key in (*request.form.keys(), *request.files.keys())):
        raise BadRequest("表单字段名无法识别")
