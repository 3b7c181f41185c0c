"""What the printed pages share (the 审核回执单 and the 准考证): their QR code, the CJK font, and an A4 PDF
with its title font and the approved photo in a 30 × 40 mm frame at the top right."""

from __future__ import annotations

import io
import logging
import os
from typing import TYPE_CHECKING

import qrcode
import qrcode.image.svg
from flask import current_app
from markupsafe import Markup

if TYPE_CHECKING:
    from fpdf import FPDF

log = logging.getLogger(__name__)

# Debian's fonts-noto-cjk (already there for Chromium); RECEIPT_FONT_PATH overrides. fpdf2 embeds
# the subset as a CFF CIDFont (FontFile3), as the PDF spec wants for Noto's CFF outlines.
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
PHOTO_MM = (30, 40)  # 3:4, as the photos are


def qr_svg(data: str) -> Markup:
    """Inline SVG: prints sharp at any size and needs no second request."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    if svg.startswith("<?xml"):
        svg = svg.split("?>", 1)[1]
    return Markup(svg)  # noqa: S704  (our own generated SVG, no user input)


def cjk_font() -> str | None:
    configured = current_app.config.get("RECEIPT_FONT_PATH")
    for path in (configured, *CJK_FONTS):
        if path and os.path.isfile(path):
            return str(path)
    return None


def a4_pdf(title: str, font: str) -> FPDF:
    """An A4 page titled `title`, with the CJK font loaded as "cjk"."""
    from fpdf import FPDF  # imported here: only the PDFs need it

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.add_page()
    # In Noto's collections the third face is Simplified Chinese (JP, KR, SC, TC, HK).
    pdf.add_font("cjk", fname=font, collection_font_number=2 if font.endswith(".ttc") else 0)
    return pdf


def photo_frame(pdf: FPDF, photo: bytes | None, top: float, what: str) -> tuple[float, float, float, float]:
    """The approved photo at the top right from `top` (an empty frame when its file no longer
    decodes); returns the frame (x, y, w, h)."""
    box = (pdf.w - pdf.r_margin - PHOTO_MM[0], top, *PHOTO_MM)
    try:
        if photo is None:
            raise ValueError("no photo file")
        pdf.image(io.BytesIO(photo), x=box[0], y=box[1], w=box[2], h=box[3])
    except (OSError, ValueError) as exc:
        log.warning("%s PDF without its photo: %s", what, exc)
        pdf.rect(*box)
    return box
