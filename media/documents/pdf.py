"""PDFs (学信网备案表, scanned diplomas, theses): structure checked with pypdf, first page drawn with
pdfium, both in a child process (media/documents/pdf_child.py) under memory and CPU limits, since a
hostile PDF can make either library loop or allocate without bound and neither takes a deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from media.documents.rules import MIME_TYPES, CheckedDocument, DocumentRefused, SlotRules

_CHILD = Path(__file__).with_name("pdf_child.py")
# A real 50-page PDF is checked in about a second and drawn in well under 256 MB (Python, pypdf and
# pdfium take ~60 MB of it); hostile input gets no more.
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
CPU_SECONDS = 10
WALL_SECONDS = 20  # CPU time does not count waiting; the wall clock bounds a child that sleeps or blocks
THUMB_SIDE = 320
# Children one worker runs at once: each may take MEMORY_LIMIT_BYTES, so more uploads wait their turn.
_children = threading.BoundedSemaphore(2)

_MESSAGES = {
    "encrypted": "PDF 设置了密码或权限保护，学校无法正常打开：请取消密码后另存为普通 PDF 再上传",
    "script": "PDF 含有脚本，请另存为普通 PDF 后再上传（可用“打印”→“另存为 PDF”）",
    "launch": "PDF 含有启动其他程序的动作，请另存为普通 PDF 后再上传（可用“打印”→“另存为 PDF”）",
    "embedded": "PDF 里夹带了附件文件，请删除附件、另存为普通 PDF 后再上传",
    "damaged": "PDF 已损坏或不完整，无法打开：请重新导出 PDF 后再上传",
    "too_complex": "PDF 结构过于复杂，无法处理：请用“打印”→“另存为 PDF”重新生成后再上传",
    "timeout": "PDF 处理超时，文件可能已损坏：请重新导出 PDF 后再上传",
}


def check_pdf(data: bytes, slot: SlotRules) -> CheckedDocument:
    verdict, thumb = run_child(data, slot.max_pages)
    code = verdict.get("code")
    if code == "too_many_pages":
        raise DocumentRefused(
            f"PDF 共 {verdict.get('pages')} 页，超过 {slot.max_pages} 页的上限：请只上传需要的页面",
            "pdf_too_many_pages",
        )
    if code is not None:
        raise DocumentRefused(_MESSAGES.get(str(code), _MESSAGES["damaged"]), f"pdf_{code}")
    pages = verdict.get("pages")
    if not isinstance(pages, int) or not thumb:
        raise DocumentRefused(_MESSAGES["damaged"], "pdf_damaged")
    return CheckedDocument(kind="pdf", mime_type=MIME_TYPES["pdf"], data=data, pages=pages, thumbnail=thumb)


# A stored PDF passed its check at upload; showing it again needs no page limit of a slot.
PREVIEW_MAX_PAGES = 100_000


def first_page(data: bytes) -> bytes | None:
    """The first page of a stored PDF as a JPEG no larger than THUMB_SIDE (the reviewers' preview),
    drawn under the same child-process limits as the check; None when it cannot be drawn."""
    verdict, thumb = run_child(data, PREVIEW_MAX_PAGES)
    return thumb if verdict.get("code") is None and thumb else None


def run_child(
    data: bytes, max_pages: int, *, wall_seconds: float = WALL_SECONDS
) -> tuple[dict[str, object], bytes]:
    """The child's verdict and thumbnail; a crash, a limit hit or garbage output is "damaged"."""
    args = [str(max_pages), str(THUMB_SIDE), str(MEMORY_LIMIT_BYTES), str(CPU_SECONDS)]
    # -I: the child ignores PYTHON* variables and the current directory, so it imports only installed
    # packages. The PDF goes through stdin; no shell, no file on disk.
    command = [sys.executable, "-I", str(_CHILD), *args]
    with _children:
        try:
            proc = subprocess.run(  # noqa: S603 - fixed argv, no shell; the upload is only stdin
                command, input=data, capture_output=True, timeout=wall_seconds, check=False, env={}
            )
        except subprocess.TimeoutExpired:
            return {"code": "timeout"}, b""
    if proc.returncode != 0:
        return {"code": "damaged"}, b""
    line, _, thumb = proc.stdout.partition(b"\n")
    try:
        verdict = json.loads(line)
    except ValueError:
        return {"code": "damaged"}, b""
    return (verdict, thumb) if isinstance(verdict, dict) else ({"code": "damaged"}, b"")
