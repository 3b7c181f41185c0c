"""Word and PowerPoint files: the real format from inside the file, and no macros.

OOXML (docx, pptx) is a zip whose [Content_Types].xml names the main part's type; a macro-enabled file
(docm, pptm) has another main type and carries vbaProject.bin, whatever its name says. The older binary
formats (doc, ppt) are OLE2 compound files; Word keeps VBA in a "Macros" storage, PowerPoint in a
VBAInfo record inside its main stream.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
from xml.etree.ElementTree import ParseError

import olefile
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from media.documents import zips
from media.documents.rules import DocumentRefused

MACRO = "文档含有宏，请在 Office 中“另存为”不含宏的 .docx 或 .pptx 后再上传"
ENCRYPTED = "文档设置了打开密码，学校无法打开：请取消密码后再上传"
DAMAGED = "文档已损坏或不完整，无法打开：请用 Office 重新另存后再上传"

_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
# The main part's content type says what the package is, whatever the file is called.
_MAIN_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": "pptx",
    "application/vnd.ms-word.document.macroenabled.main+xml": "docm",
    "application/vnd.ms-word.template.macroenabledtemplate.main+xml": "docm",
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": "pptm",
    "application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml": "pptm",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": "dotx",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": "ppsx",
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": "potx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": "xlsm",
}
_RESAVE = {
    "dotx": "这是 Word 模板（.dotx），请在 Word 中“另存为” .docx 后再上传",
    "ppsx": "这是 PowerPoint 放映文件（.ppsx），请在 PowerPoint 中“另存为” .pptx 后再上传",
    "potx": "这是 PowerPoint 模板（.potx），请在 PowerPoint 中“另存为” .pptx 后再上传",
}
_VBA_CONTENT_TYPE = "application/vnd.ms-office.vbaproject"


def ooxml_kind(data: bytes) -> str:
    """docx or pptx; DocumentRefused for a macro-enabled, damaged or other kind of zip."""
    with zips.open_bounded(data) as zf:
        names = {n.lower() for n in zf.namelist()}
        raw = zips.read_part(zf, "[Content_Types].xml")
    # VBA code or ActiveX controls (which run code) in any part, whatever the content types claim.
    if any(
        posixpath.basename(n) == "vbaproject.bin" or n.startswith(("word/activex/", "ppt/activex/"))
        for n in names
    ):
        raise DocumentRefused(MACRO, "office_macro")
    if raw is None:
        raise DocumentRefused(
            "这是普通的压缩包，不是 Word 或 PowerPoint 文档：请上传文档本身", "zip_not_office"
        )
    try:
        root = fromstring(raw)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise DocumentRefused(DAMAGED, "office_damaged") from exc
    kinds: set[str] = set()
    main_parts: list[str] = []
    for el in root:
        content_type = (el.get("ContentType") or "").strip().lower()
        if content_type == _VBA_CONTENT_TYPE or "macroenabled" in content_type:
            raise DocumentRefused(MACRO, "office_macro")
        if el.tag == f"{_CT_NS}Override" and content_type in _MAIN_TYPES:
            kinds.add(_MAIN_TYPES[content_type])
            main_parts.append((el.get("PartName") or "").lstrip("/"))
    if len(kinds) != 1:
        raise DocumentRefused(
            DAMAGED if not kinds else "文档内容异常，无法识别：请用 Office 重新另存后再上传", "office_unknown"
        )
    kind = kinds.pop()
    if kind in ("docm", "pptm", "xlsm"):
        raise DocumentRefused(MACRO, "office_macro")
    if kind in _RESAVE:
        raise DocumentRefused(_RESAVE[kind], "office_other")
    if kind == "xlsx":
        raise DocumentRefused("这是 Excel 表格，不是 Word 或 PowerPoint 文档", "office_other")
    # The part the content types name must be there: a hand-made zip with only the types file is not a
    # document a school can open.
    if any(part.lower() not in names for part in main_parts):
        raise DocumentRefused(DAMAGED, "office_damaged")
    return kind


# PowerPoint's binary stream: a VBAInfo container (recVer 0xF, type 0x03FF) holding a VBAInfoAtom
# (recVer 2, type 0x0400, 20 bytes). Searched as bytes: the stream is a flat list of records.
_PPT_VBA_INFO = re.compile(rb"\x0f\x00\xff\x03....\x02\x00\x00\x04\x14\x00\x00\x00", re.DOTALL)


def ole_kind(data: bytes) -> str:
    """doc or ppt from an OLE2 compound file; DocumentRefused for macros, a password or another kind."""
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises many types on broken input; any means "cannot read"
        raise DocumentRefused(DAMAGED, "ole_damaged") from exc
    try:
        streams = [[part.lower() for part in path] for path in ole.listdir(streams=True, storages=True)]
        tops = {path[0] for path in streams}
        # A password-protected docx/pptx is an OLE file holding the encrypted package.
        if "encryptedpackage" in tops or "encryptioninfo" in tops:
            raise DocumentRefused(ENCRYPTED, "office_encrypted")
        # Word: VBA under Macros (or _VBA_PROJECT_CUR when saved by other tools); any VBA storage at all.
        if any(part in ("macros", "_vba_project_cur", "vba") for path in streams for part in path):
            raise DocumentRefused(MACRO, "office_macro")
        if "worddocument" in tops:
            if _word_encrypted(ole):
                raise DocumentRefused(ENCRYPTED, "office_encrypted")
            return "doc"
        if "powerpoint document" in tops:
            size = ole.get_size("PowerPoint Document")
            if size > len(data):
                raise DocumentRefused(DAMAGED, "ole_damaged")
            stream = ole.openstream("PowerPoint Document").read()
            if _PPT_VBA_INFO.search(stream):
                raise DocumentRefused(MACRO, "office_macro")
            return "ppt"
        if "workbook" in tops or "book" in tops:
            raise DocumentRefused("这是 Excel 表格，不是 Word 或 PowerPoint 文档", "office_other")
        raise DocumentRefused("这是无法识别的 Office 文件：请另存为 .docx 或 PDF 后再上传", "ole_unknown")
    except DocumentRefused:
        raise
    except Exception as exc:  # as above: a stream that cannot be read is a damaged file
        raise DocumentRefused(DAMAGED, "ole_damaged") from exc
    finally:
        ole.close()


def _word_encrypted(ole: olefile.OleFileIO) -> bool:
    """Word's FIB flag fEncrypted (bit 8 of the 16-bit flags at offset 10 of the WordDocument stream)."""
    with ole.openstream("WordDocument") as stream:
        fib = stream.read(12)
    return len(fib) == 12 and bool(struct.unpack("<H", fib[10:12])[0] & 0x0100)
