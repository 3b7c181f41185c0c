"""media.documents: hostile uploads are refused with a Chinese message, good ones come back ready to store.

Every file is made here: PDFs with pypdf, Office files as zips or hand-built OLE2 compound files, images
with Pillow or (for the bomb) a bare PNG header.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable

import pytest
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from media.documents import (
    DIPLOMA,
    ID_CARD,
    THESIS,
    XUEXIN_RECORD,
    DocumentRefused,
    SlotRules,
    check_document,
    refuse_if_full,
)
from media.documents import pdf as pdf_module
from media.documents.sniff import carries_zip
from media.documents.zips import MAX_ENTRIES

# ---------------------------------------------------------------- builders


def make_pdf(pages: int = 1, tweak: Callable[[PdfWriter], None] | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    if tweak is not None:
        tweak(writer)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _open_action(action: dict[str, object]) -> Callable[[PdfWriter], None]:
    def tweak(writer: PdfWriter) -> None:
        d = DictionaryObject()
        for key, value in action.items():
            d[NameObject(key)] = NameObject(value) if str(value).startswith("/") else TextStringObject(value)
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(d)

    return tweak


def make_jpeg(w: int, h: int, *, orientation: int | None = None, color: str = "gray") -> bytes:
    img = Image.new("RGB", (w, h), color)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"  # make: metadata that must not survive
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares w×h pixels with a token IDAT: a decompression bomb's header, nothing allocated."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
_PPTX_MAIN = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"


def make_ooxml(
    main_type: str = _DOCX_MAIN,
    main_part: str = "word/document.xml",
    extra: dict[str, bytes] | None = None,
    extra_types: str = "",
) -> bytes:
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main_part}" ContentType="{main_type}"/>{extra_types}</Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships '
        'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        f'Target="{main_part}"/></Relationships>'
    )
    body = '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("_rels/.rels", rels)
        zf.writestr(main_part, body)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def make_ole(entries: list[tuple[str, str, int, bytes]]) -> bytes:
    """A minimal OLE2 compound file (version 3, 512-byte sectors) that olefile reads.

    ``entries``: (name, "storage" | "stream", parent index (0 = root), data), in order; entry i is
    directory entry i + 1. Streams are padded to 4096 bytes so no mini stream is needed."""
    dir_entries = [("Root Entry", 5, -1, b"")] + [
        (name, 1 if kind == "storage" else 2, parent, data.ljust(4096, b"\x00") if kind == "stream" else b"")
        for name, kind, parent, data in entries
    ]
    n_dir_sectors = (len(dir_entries) * 128 + 511) // 512
    # Sector 0: FAT; then the directory; then each stream's sectors.
    fat = [FATSECT]
    dir_start = 1
    fat += [*range(2, 1 + n_dir_sectors), ENDOFCHAIN]
    starts: list[int] = []
    blobs = b""
    for _name, kind_code, _parent, data in dir_entries:
        if kind_code != 2:
            starts.append(ENDOFCHAIN)
            continue
        first = len(fat)
        count = len(data) // 512
        starts.append(first)
        fat += [*range(first + 1, first + count), ENDOFCHAIN]
        blobs += data
    assert len(fat) <= 128
    fat += [FREESECT] * (128 - len(fat))
    children: dict[int, list[int]] = {}
    for index, (_n, _k, parent, _d) in enumerate(dir_entries):
        if index:
            children.setdefault(parent, []).append(index)
    directory = b""
    for index, (name, kind_code, parent, data) in enumerate(dir_entries):
        siblings = children.get(parent, []) if index else []
        right = (
            siblings[siblings.index(index) + 1]
            if index and siblings.index(index) + 1 < len(siblings)
            else NOSTREAM
        )
        child = children.get(index, [NOSTREAM])[0]
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        directory += (
            encoded.ljust(64, b"\x00")
            + struct.pack("<HBBIII", len(encoded), kind_code, 1, NOSTREAM, right, child)
            + b"\x00" * 16
            + struct.pack("<I", 0)
            + b"\x00" * 16
            + struct.pack("<III", starts[index], len(data), 0)
        )
    directory = directory.ljust(n_dir_sectors * 512, b"\x00")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\x00" * 6
        + struct.pack("<IIIIIIIII", 0, 1, dir_start, 0, 4096, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", FREESECT) * 108
    )
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + directory + blobs


def make_doc(*, macros: bool = False) -> bytes:
    fib = b"\xec\xa5" + b"\x00" * 30  # wIdent of a Word 97+ FIB; flags (offset 10) 0: not encrypted
    entries = [("WordDocument", "stream", 0, fib)]
    if macros:
        entries += [("Macros", "storage", 0, b""), ("VBA", "storage", 2, b""), ("dir", "stream", 3, b"\x01")]
    return make_ole(entries)


def refused(data: bytes, slot: SlotRules, filename: str | None = None) -> DocumentRefused:
    with pytest.raises(DocumentRefused) as info:
        check_document(data, slot, filename=filename)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message), info.value.message
    return info.value


# ---------------------------------------------------------------- hostile files


def test_a_pdf_with_javascript_on_open_is_refused() -> None:
    data = make_pdf(tweak=_open_action({"/S": "/JavaScript", "/JS": "app.alert('hi')"}))
    err = refused(data, XUEXIN_RECORD, "备案表.pdf")
    assert err.code == "pdf_script"
    assert "PDF 含有脚本" in err.message


def _names_tree_js(writer: PdfWriter) -> None:
    # /Root /Names /JavaScript: document-level scripts a viewer runs on open.
    action = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("1")}
    )
    tree = DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject("a"), writer._add_object(action)])}
    )
    names = DictionaryObject({NameObject("/JavaScript"): writer._add_object(tree)})
    writer._root_object[NameObject("/Names")] = writer._add_object(names)


def test_a_pdf_with_javascript_in_its_names_tree_is_refused() -> None:
    assert refused(make_pdf(tweak=_names_tree_js), XUEXIN_RECORD).code == "pdf_script"


def test_a_pdf_with_a_launch_action_is_refused() -> None:
    data = make_pdf(tweak=_open_action({"/S": "/Launch", "/F": "calc.exe"}))
    err = refused(data, XUEXIN_RECORD)
    assert err.code == "pdf_launch"


def test_an_encrypted_pdf_is_refused() -> None:
    data = make_pdf(tweak=lambda w: w.encrypt(user_password="", owner_password="secret", algorithm="RC4-128"))
    err = refused(data, XUEXIN_RECORD)
    assert err.code == "pdf_encrypted"
    assert "密码" in err.message


def test_a_pdf_with_an_embedded_file_is_refused() -> None:
    data = make_pdf(tweak=lambda w: w.add_attachment("setup.exe", b"MZ" + b"\x00" * 100))
    err = refused(data, XUEXIN_RECORD)
    assert err.code == "pdf_embedded"
    assert "附件" in err.message


def test_a_pdf_over_the_page_cap_is_refused_with_its_page_count() -> None:
    err = refused(make_pdf(pages=3), SlotRules(formats=frozenset({"pdf"}), max_pages=2))
    assert err.code == "pdf_too_many_pages"
    assert "3 页" in err.message


def test_a_damaged_pdf_is_refused() -> None:
    assert refused(b"%PDF-1.7\n1 0 obj << /Type /Catalog", XUEXIN_RECORD).code == "pdf_damaged"


def test_a_pdf_child_past_its_deadline_counts_as_refused() -> None:
    verdict, thumb = pdf_module.run_child(make_pdf(), 50, wall_seconds=0.001)
    assert verdict == {"code": "timeout"} and thumb == b""


def test_a_macro_enabled_word_file_is_refused_even_named_docx() -> None:
    data = make_ooxml(
        _DOCM_MAIN,
        extra={"word/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b"\x00" * 512},
        extra_types='<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>',
    )
    err = refused(data, THESIS, "论文.docx")
    assert err.code == "office_macro"
    assert "宏" in err.message


def test_a_vba_project_under_a_plain_docx_content_type_is_still_a_macro() -> None:
    data = make_ooxml(extra={"word/vbaProject.bin": b"\x00" * 64})
    assert refused(data, THESIS).code == "office_macro"


def test_a_zip_bomb_docx_is_refused_from_its_directory() -> None:
    data = make_ooxml(extra={"word/media/blank.xml": b"\x00" * (8 * 1024 * 1024)})
    assert len(data) < 100_000
    err = refused(data, THESIS)
    assert err.code == "zip_bomb"
    assert "压缩炸弹" in err.message


def test_a_zip_with_too_many_entries_is_refused_before_it_is_parsed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(MAX_ENTRIES + 1):
            zf.writestr(f"p{i}", b"")
    assert refused(buf.getvalue(), THESIS).code == "zip_too_many_entries"


def test_a_plain_zip_is_not_a_document() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("thesis.docx", b"x")
    assert refused(buf.getvalue(), THESIS).code == "zip_not_office"


def test_a_jpeg_with_a_zip_appended_is_refused() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", b"hidden")
    data = make_jpeg(800, 600) + archive.getvalue()
    err = refused(data, ID_CARD, "身份证.jpg")
    assert err.code == "polyglot"
    assert "压缩包" in err.message


def test_a_zip_signature_by_chance_in_random_bytes_is_not_a_polyglot() -> None:
    rng = random.Random(7)
    blob = bytearray(rng.randbytes(2 * 1024 * 1024))
    for _ in range(50):  # bare signatures, without the fields a zip reader needs around them
        at = rng.randrange(len(blob) - 8)
        blob[at : at + 4] = rng.choice([b"PK\x03\x04", b"PK\x05\x06"])
    assert not carries_zip(bytes(blob))


def test_a_30000_pixel_square_png_is_refused_before_decoding() -> None:
    data = png_header_only(30_000, 30_000)
    assert len(data) < 200
    err = refused(data, DIPLOMA)
    assert err.code == "image_unreadable"
    assert "像素" in err.message


@pytest.mark.parametrize(
    "magic", [b"MZ\x90\x00", b"\x7fELF\x02\x01\x01", b"\xcf\xfa\xed\xfe", b"#!/bin/sh\n"]
)
def test_an_executable_named_pdf_is_refused(magic: bytes) -> None:
    err = refused(magic + b"\x00" * 2000, XUEXIN_RECORD, "备案表.pdf")
    assert err.code in ("refused_executable", "refused_script")
    assert err.message.startswith("文件类型与内容不符：这是一个")
    assert err.message.endswith("不是 PDF")


def test_the_executable_message_names_the_claimed_type() -> None:
    err = refused(b"MZ" + b"\x00" * 100, XUEXIN_RECORD, "备案表.pdf")
    assert err.message == "文件类型与内容不符：这是一个可执行程序，不是 PDF"


def test_a_text_file_renamed_docx_is_refused() -> None:
    err = refused("这是一段文字，不是 Word 文档".encode() * 20, THESIS, "论文.docx")
    assert err.code == "wrong_type"
    assert "文本文件" in err.message and "不是 DOCX" in err.message


def test_an_ole_doc_with_a_macros_storage_is_refused() -> None:
    err = refused(make_doc(macros=True), THESIS, "论文.doc")
    assert err.code == "office_macro"


def test_a_ppt_with_a_vba_info_record_is_refused_and_one_without_is_accepted() -> None:
    vba_info = b"\x0f\x00\xff\x03\x1c\x00\x00\x00" + b"\x02\x00\x00\x04\x14\x00\x00\x00" + b"\x00" * 20
    with_macro = make_ole(
        [("PowerPoint Document", "stream", 0, b"\x0f\x00\xe8\x03" + b"\x00" * 60 + vba_info)]
    )
    assert refused(with_macro, THESIS, "答辩.ppt").code == "office_macro"
    plain = make_ole([("PowerPoint Document", "stream", 0, b"\x0f\x00\xe8\x03" + b"\x00" * 60)])
    assert check_document(plain, THESIS, filename="答辩.ppt").kind == "ppt"


def test_a_password_protected_docx_is_refused() -> None:
    data = make_ole(
        [("EncryptionInfo", "stream", 0, b"\x04\x00\x04\x00"), ("EncryptedPackage", "stream", 0, b"x")]
    )
    err = refused(data, THESIS, "论文.docx")
    assert err.code == "office_encrypted" and "密码" in err.message


def test_a_real_type_the_slot_does_not_take_is_refused() -> None:
    err = refused(make_pdf(), SlotRules(formats=frozenset({"docx"})), "论文.docx")
    assert err.code == "not_allowed"
    assert "不是 DOCX" in err.message and ".docx" in err.message


def test_an_oversized_upload_is_refused_before_anything_else() -> None:
    err = refused(b"MZ" + b"\x00" * 2048, SlotRules(formats=frozenset({"pdf"}), max_bytes=1024))
    assert err.code == "too_large"


def test_a_full_slot_takes_no_more_files() -> None:
    refuse_if_full(4, THESIS)
    with pytest.raises(DocumentRefused) as info:
        refuse_if_full(5, THESIS)
    assert "5 个文件" in info.value.message


# ---------------------------------------------------------------- good files


def test_a_normal_pdf_is_accepted_with_its_page_count_and_a_thumbnail() -> None:
    data = make_pdf(pages=2)
    checked = check_document(data, XUEXIN_RECORD, filename="备案表.pdf")
    assert checked.kind == "pdf" and checked.mime_type == "application/pdf"
    assert checked.data == data
    assert checked.pages == 2
    assert checked.thumbnail is not None
    thumb = Image.open(io.BytesIO(checked.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) <= pdf_module.THUMB_SIDE


def test_a_docx_is_accepted_as_uploaded() -> None:
    data = make_ooxml()
    checked = check_document(data, THESIS, filename="论文.docx")
    assert checked.kind == "docx" and checked.data == data
    assert checked.mime_type.endswith("wordprocessingml.document")


def test_a_pptx_is_accepted() -> None:
    assert check_document(make_ooxml(_PPTX_MAIN, "ppt/presentation.xml"), THESIS).kind == "pptx"


def test_an_ole_doc_without_macros_is_accepted() -> None:
    assert check_document(make_doc(), THESIS, filename="论文.doc").kind == "doc"


def test_a_jpeg_with_orientation_6_comes_back_upright_without_exif() -> None:
    img = Image.new("RGB", (400, 200), "red")
    img.paste((0, 0, 255), (200, 0, 400, 200))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: red on top
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    checked = check_document(buf.getvalue(), ID_CARD, filename="身份证.jpg")
    out = Image.open(io.BytesIO(checked.data))
    assert out.format == "JPEG" and out.size == (200, 400) == (checked.width, checked.height)
    assert not out.getexif() and b"Exif" not in checked.data and b"PhoneMaker" not in checked.data
    top, bottom = out.convert("RGB").getpixel((100, 50)), out.convert("RGB").getpixel((100, 350))
    assert top[0] > 200 and top[2] < 60  # red
    assert bottom[2] > 200 and bottom[0] < 60  # blue
    assert "已按拍摄方向转正" in checked.notes


def test_a_large_jpeg_is_scaled_down_to_the_slot_cap() -> None:
    checked = check_document(make_jpeg(4000, 3000), ID_CARD)
    assert (checked.width, checked.height) == (1500, 1125)
    out = Image.open(io.BytesIO(checked.data))
    assert out.size == (1500, 1125) and out.format == "JPEG"
    assert checked.notes[0] == "已从 4000×3000 缩小为 1500×1125 像素"
    assert checked.thumbnail is not None and max(Image.open(io.BytesIO(checked.thumbnail)).size) <= 320


def test_a_small_png_keeps_its_size_and_format() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 128, 0, 128)).save(buf, "PNG")
    checked = check_document(buf.getvalue(), DIPLOMA)
    assert checked.kind == "png" and (checked.width, checked.height) == (300, 200)
    assert Image.open(io.BytesIO(checked.data)).mode == "RGB"  # transparency flattened onto white


def test_a_png_for_a_jpg_only_slot_is_converted() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buf, "PNG")
    checked = check_document(buf.getvalue(), SlotRules(formats=frozenset({"jpg"})))
    assert checked.kind == "jpg" and checked.data.startswith(b"\xff\xd8")
