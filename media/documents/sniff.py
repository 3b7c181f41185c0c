"""The real type of an uploaded document from its bytes, and zip archives hidden inside other files."""

from __future__ import annotations

import struct

from media import decode

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_LOCAL = b"PK\x03\x04"
ZIP_CENTRAL = b"PK\x01\x02"
ZIP_END = b"PK\x05\x06"

# Programs, whatever the name says: Windows PE (MZ), ELF, Mach-O (both byte orders, 32/64-bit, fat),
# WebAssembly. A Java class shares CAFEBABE with the fat Mach-O header.
_EXECUTABLE_MAGICS = (
    b"MZ",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"\x00asm",
)
# Text that a system runs: a shebang script or a Windows batch file.
_SCRIPT_OPENERS = (b"#!", b"@echo")


def real_kind(data: bytes) -> str:
    """One of the slot formats (jpg, png, pdf, ole, zip) or what else it is (executable, script, text …).

    OLE2 and zip are narrowed to doc/ppt and docx/pptx by media.documents.office, which reads inside them.
    """
    head = data[:64]
    if not head:
        return "empty"
    if head.startswith(_EXECUTABLE_MAGICS):
        return "executable"
    if head.startswith(OLE_MAGIC):
        return "ole"
    if head.startswith(ZIP_LOCAL):
        return "zip"
    if head.lstrip().lower().startswith(_SCRIPT_OPENERS):
        return "script"
    kind = decode.sniff(data)
    return {"jpeg": "jpg"}.get(kind, kind)


# Compression methods a zip reader knows (stored, deflate, deflate64, bzip2, LZMA, zstd, xz): a zip
# header naming another one is random bytes, not a zip.
_ZIP_METHODS = {0, 8, 9, 12, 14, 93, 95}


def carries_zip(data: bytes) -> bool:
    """Whether a zip archive is hidden in the file (a JPEG+ZIP or PDF+ZIP polyglot): an end-of-central-
    directory record whose central directory is really there, or a local file header with a sane method
    and name. Four signature bytes alone turn up by chance in a few MB of compressed data; the fields
    around them do not."""
    return _has_end_record(data) or _has_local_header(data)


def _has_end_record(data: bytes) -> bool:
    i = data.find(ZIP_END)
    while i >= 0:
        if i + 22 <= len(data):
            _disk, _cd_disk, _here, entries, cd_size, cd_offset = struct.unpack(
                "<HHHHII", data[i + 4 : i + 20]
            )
            # Readers find the directory either at the offset it declares or, for a zip appended to
            # another file, just before this record.
            for start in (cd_offset, i - cd_size):
                if entries and 0 <= start < i and data[start : start + 4] == ZIP_CENTRAL:
                    return True
        i = data.find(ZIP_END, i + 1)
    return False


def _has_local_header(data: bytes) -> bool:
    i = data.find(ZIP_LOCAL)
    while i >= 0:
        fields = data[i + 4 : i + 30]
        if len(fields) == 26:
            version, _flags, method = struct.unpack("<HHH", fields[:6])
            name_len = struct.unpack("<H", fields[22:24])[0]
            name = data[i + 30 : i + 30 + name_len]
            sane = version <= 63 and method in _ZIP_METHODS and 0 < name_len <= 1024
            if sane and len(name) == name_len and all(b >= 0x20 for b in name):
                return True
        i = data.find(ZIP_LOCAL, i + 1)
    return False
