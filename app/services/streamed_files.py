"""CSV and ZIP files made as they are sent: generators of bytes that never hold the whole file, for
the staff exports (app/services/exports.py, app/services/answer_exports.py).

A ZIP is written by zipfile into a sink the generator drains after every entry (and after every
chunk of a streamed entry): a non-seekable sink makes zipfile use data descriptors, so nothing is
ever rewritten. A CSV is written row by row, as Excel opens it: UTF-8 with a BOM, CRLF line ends.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.services.localtime import BEIJING

BOM = "\ufeff"
# A cell starting with one of these is read by Excel and WPS as a formula (or a DDE command): an
# answer such as `=HYPERLINK("http://…")` typed by a student would run on the staff member's
# machine. A leading apostrophe makes the spreadsheet show it as text (OWASP's CSV injection advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# Excel and WPS read a cell of digits as a number: an 18-digit ID number or a 12-digit 考籍号 shows
# as 1.10101E+17 and keeps 15 digits when saved. A leading tab (which we add after the guard, so a
# student cannot) makes them keep it as text; 11-digit phone numbers still show whole as numbers.
LONG_DIGITS = re.compile(r"\d{12,}")


def safe_cell(value: str, digits_as_text: bool = False) -> str:
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return "\t" + value if digits_as_text and LONG_DIGITS.fullmatch(value) else value


def csv_stream(rows: Iterable[Sequence[str]], *, digits_as_text: bool = False) -> Iterator[bytes]:
    """The rows as CSV bytes, one chunk per row, the BOM before the first; every cell guarded
    against formula injection. `digits_as_text` for a file people open in a spreadsheet (a
    machine-read manifest keeps its numbers bare)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    for row in rows:
        writer.writerow([safe_cell(cell, digits_as_text) for cell in row])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows at all: the BOM alone
        yield buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class ZipEntry:
    """One file of the archive: its whole bytes (a photo, a document), or chunks written as they
    come (a CSV of any length); `moment` is its date in the archive (Beijing time)."""

    name: str
    content: bytes | Iterable[bytes]
    moment: datetime | None = None


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file whose bytes the generator takes away after each entry."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def zip_stream(entries: Iterable[ZipEntry]) -> Iterator[bytes]:
    """The entries as a ZIP, stored uncompressed (photos, scans and PDFs do not compress further),
    drained after every entry: memory holds one entry (or one chunk of a streamed one) at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=zip_time(entry.moment))
            info.compress_type = zipfile.ZIP_STORED
            if isinstance(entry.content, bytes):
                archive.writestr(info, entry.content)
            else:
                with archive.open(info, mode="w", force_zip64=True) as member:
                    for chunk in entry.content:
                        member.write(chunk)
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def zip_time(moment: datetime | None) -> tuple[int, int, int, int, int, int]:
    local = (moment or datetime.now(UTC)).astimezone(BEIJING)
    return (max(local.year, 1980), local.month, local.day, local.hour, local.minute, local.second)
