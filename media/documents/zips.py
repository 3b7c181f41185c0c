"""Opening a zip-based upload (docx, pptx) without letting it blow up: the central directory is read and
bounded before any entry is decompressed.

A zip bomb is small on disk and huge once inflated: deflate reaches ~1000:1, and entries may overlap so
that one compressed block is counted many times. Everything below is read from the directory alone.
"""

from __future__ import annotations

import io
import struct
import zipfile

from media.documents.rules import DocumentRefused
from media.documents.sniff import ZIP_END

# A long thesis with figures is a few hundred parts; 2000 leaves room and bounds the directory's parsing.
MAX_ENTRIES = 2000
# What a 10 MB Office file may inflate to: text-heavy XML compresses ~10-30×, so 10 MB → ≤ 300 MB.
MAX_TOTAL_UNCOMPRESSED = 300 * 1024 * 1024
# One part's ratio: Office XML rarely passes 50:1; a bomb is near 1000:1. Small parts are not judged,
# since a few bytes of repeated XML compress beyond any ratio without harm.
MAX_RATIO = 200
RATIO_FROM_BYTES = 1024 * 1024
# What we read from inside (the content types, a few small XML parts): never more than this per part.
MAX_PART_READ = 2 * 1024 * 1024

_BOMB = "文件解压后体积异常（疑似“压缩炸弹”），无法处理：请用 Office 重新另存后再上传"
_DAMAGED = "文件已损坏或不完整，无法打开：请用 Office 重新另存后再上传"


def open_bounded(data: bytes) -> zipfile.ZipFile:
    """A ZipFile over ``data`` once its directory is within the limits; DocumentRefused otherwise."""
    declared = _declared_entries(data)
    if declared > MAX_ENTRIES:
        raise DocumentRefused(f"文件内部条目过多（{declared} 个），无法处理", "zip_too_many_entries")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:  # zipfile raises many types on broken input; any means "cannot read"
        raise DocumentRefused(_DAMAGED, "zip_damaged") from exc
    if len(infos) > MAX_ENTRIES:
        raise DocumentRefused(f"文件内部条目过多（{len(infos)} 个），无法处理", "zip_too_many_entries")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size >= RATIO_FROM_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DocumentRefused(_BOMB, "zip_bomb")
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise DocumentRefused(_BOMB, "zip_bomb")
    _refuse_overlaps(infos, len(data))
    return zf


def read_part(zf: zipfile.ZipFile, name: str) -> bytes | None:
    """A part's bytes, at most MAX_PART_READ of them (the declared size may lie); None when absent."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_PART_READ:
        raise DocumentRefused(_BOMB, "zip_bomb")
    try:
        with zf.open(info) as part:
            out = part.read(MAX_PART_READ + 1)
    except Exception as exc:  # also an encrypted entry (RuntimeError) or an unknown method
        raise DocumentRefused(_DAMAGED, "zip_damaged") from exc
    if len(out) > MAX_PART_READ:
        raise DocumentRefused(_BOMB, "zip_bomb")
    return out


def _declared_entries(data: bytes) -> int:
    """The entry count the end-of-central-directory record declares, read before zipfile parses the
    directory (a directory of millions of entries is itself the attack). Zip64 is refused: no Office
    file under the size cap needs it."""
    i = data.rfind(ZIP_END, max(0, len(data) - 65_557))
    if i < 0 or i + 22 > len(data):
        raise DocumentRefused(_DAMAGED, "zip_damaged")
    _disk, _cd_disk, _here, entries, cd_size, cd_offset = struct.unpack("<HHHHII", data[i + 4 : i + 20])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        raise DocumentRefused(_DAMAGED, "zip64")
    return int(entries)


def _refuse_overlaps(infos: list[zipfile.ZipInfo], size: int) -> None:
    """Entries must not share bytes: overlapping entries make one compressed block count many times (the
    non-recursive zip bomb). Each entry spans at least its 30-byte local header, name and compressed data."""
    end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise DocumentRefused(_BOMB, "zip_overlap")
        # zipfile decoded the name as UTF-8 when flag 0x800 says so, as cp437 otherwise: encode it back.
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        name_len = len(info.orig_filename.encode(encoding, "replace"))
        end = info.header_offset + 30 + name_len + info.compress_size
        if end > size:
            raise DocumentRefused(_DAMAGED, "zip_damaged")
