"""The one way the signed links answer with a personal file (a photo, a signature, a document)."""

from __future__ import annotations

from flask import Response


def personal_file(data: bytes, mimetype: str, cache_control: str, disposition: str | None = None) -> Response:
    """The file with the headers personal data needs: never in a shared cache (`cache_control`
    says how long this browser may keep it), never sniffed into another type, never leaking the
    signed link as a referrer; `disposition` "attachment" keeps a PDF or Office file out of the
    site's origin."""
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = cache_control
    response.headers["X-Content-Type-Options"] = "nosniff"
    if disposition is not None:
        response.headers["Content-Disposition"] = disposition
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
