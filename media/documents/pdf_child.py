"""The PDF checks, run as a separate process under CPU and memory limits (see media.documents.pdf).

A hostile PDF can make a parser loop or allocate without end; in a child process the operating system
stops it, and the web worker only sees a non-zero exit. This file is run as a script: it imports the
standard library, pypdf, pypdfium2 and Pillow only, never the application.

Protocol: the PDF on stdin; argv = max pages, thumbnail side, memory limit in bytes, CPU seconds.
Out: one JSON line {"code": null | refusal code, "pages": n}, then the thumbnail JPEG's bytes.
"""

from __future__ import annotations

import io
import json
import resource
import sys
from typing import Any

# Names whose presence means code or an action a viewer runs by itself: JavaScript (in the names tree,
# an action or a form), additional actions (/AA: on open, on page view, on field focus …) and XFA forms,
# which carry their own scripts.
_SCRIPT_KEYS = {"/JS", "/JavaScript", "/AA", "/XFA"}
_EMBEDDED_KEYS = {"/EmbeddedFiles", "/EF"}
# Action types (/S): /JavaScript and /Rendition (may carry /JS) run code, /Launch starts a program or
# opens a file, /GoToE jumps into an embedded file.
_ACTIONS = {"/JavaScript": "script", "/Rendition": "script", "/Launch": "launch", "/GoToE": "embedded"}
# Object subtypes: a file attached to an annotation, Flash/3D content that brings its own code.
_SUBTYPES = {"/FileAttachment": "embedded", "/RichMedia": "script", "/3D": "script"}
# Objects looked at before the file counts as too complex: a 50-page scan has a few thousand.
MAX_OBJECTS = 200_000


def find_active_content(reader: Any) -> str | None:
    """The first refusal code found in any object: reachable from the trailer or listed in the cross-
    reference table (a viewer that rebuilds a damaged table may reach what pypdf does not)."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    stack: list[Any] = [reader.trailer]
    for gen, numbers in reader.xref.items():
        stack.extend(IndirectObject(num, gen, reader) for num in numbers)
    stack.extend(IndirectObject(num, 0, reader) for num in reader.xref_objStm)
    seen: set[tuple[int, int]] = set()
    looked = 0
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            obj = obj.get_object()
        looked += 1
        if looked > MAX_OBJECTS:
            return "too_complex"
        if isinstance(obj, DictionaryObject):  # streams too: their dictionary
            found = _judge(obj)
            if found:
                return found
            stack.extend(dict.values(obj))  # raw: references stay references, visited once
        elif isinstance(obj, ArrayObject):
            stack.extend(list.__iter__(obj))
    return None


def _judge(d: Any) -> str | None:
    keys = set(d.keys())
    if keys & _SCRIPT_KEYS:
        return "script"
    if keys & _EMBEDDED_KEYS:
        return "embedded"
    action = _name(d, "/S")
    if action in _ACTIONS:
        return _ACTIONS[action]
    if _name(d, "/Type") == "/EmbeddedFile":
        return "embedded"
    subtype = _name(d, "/Subtype")
    return _SUBTYPES.get(subtype) if subtype else None


def _name(d: Any, key: str) -> str | None:
    value = d.get(key)  # pypdf resolves a reference here
    return str(value) if value is not None else None


def scan(data: bytes, max_pages: int, thumb_side: int) -> tuple[dict[str, Any], bytes]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return {"code": "encrypted"}, b""
        found = find_active_content(reader)
        if found:
            return {"code": found}, b""
        pages = len(reader.pages)
    except RecursionError:
        return {"code": "too_complex"}, b""
    except Exception:  # pypdf raises many types on broken input; any of them means "cannot read"
        return {"code": "damaged"}, b""
    if pages < 1:
        return {"code": "damaged"}, b""
    if pages > max_pages:
        return {"code": "too_many_pages", "pages": pages}, b""
    thumb = render_first_page(data, thumb_side)
    if thumb is None:
        return {"code": "damaged"}, b""
    return {"code": None, "pages": pages}, thumb


def render_first_page(data: bytes, side: int) -> bytes | None:
    """The first page as a JPEG no larger than side×side; None when pdfium cannot open or draw it."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        page = pdf[0]
        w, h = page.get_size()  # points; a page may declare absurd sizes, so the scale follows them
        if not (w > 0 and h > 0):
            return None
        scale = min(side / max(w, h), 4.0)
        image = page.render(scale=scale, may_draw_forms=False).to_pil().convert("RGB")
        image.thumbnail((side, side))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        return buf.getvalue()
    except (pdfium.PdfiumError, ValueError, OSError):
        return None
    finally:
        pdf.close()


def main() -> None:
    max_pages, thumb_side, memory_bytes, cpu_seconds = (int(a) for a in sys.argv[1:5])
    # Address space and CPU time: beyond them the kernel refuses the allocation (MemoryError or a crash)
    # or kills the process (SIGXCPU), and the parent refuses the file.
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    sys.setrecursionlimit(2000)
    data = sys.stdin.buffer.read()
    verdict, thumb = scan(data, max_pages, thumb_side)
    sys.stdout.buffer.write(json.dumps(verdict).encode() + b"\n" + thumb)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
