"""QR codes as inline SVG (no image files, nothing cached on disk)."""

from __future__ import annotations

import qrcode
import qrcode.image.svg


def qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


def group_key(base32_key: str, size: int = 4) -> str:
    """``ABCDEFGH...`` as ``ABCD EFGH ...``, easier to type into an authenticator app."""
    return " ".join(base32_key[i : i + size] for i in range(0, len(base32_key), size))
