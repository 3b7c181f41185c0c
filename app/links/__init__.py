"""Signed links opened at the site root, outside every area's prefix: photo files
(/media/photos/<token>), the receipt check staff open by scanning a receipt's QR code
(/verify/<token>) and an exam ticket's (/verify/ticket/<token>). All are short, and the token alone
says what they grant."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("links", __name__)

from app.links import documents, photos, receipts, tickets  # noqa: E402,F401  (routes register on bp)
