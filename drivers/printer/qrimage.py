"""One QR encoder for the raster path and the preview, so both show exactly the same symbol."""

from __future__ import annotations

import qrcode
import qrcode.constants
from PIL import Image

from drivers.printer.errors import LayoutError
from drivers.printer.profiles import PrinterProfile, QrErrorLevel

# One white module each side inside the image; the paper around it adds the rest of the quiet
# zone (centred symbol, a blank line above and below).
QR_BORDER_MODULES = 1
# 1-dot modules are below what a phone reads off thermal paper
MIN_MODULE_DOTS = 2

_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}


def qr_matrix(payload: str, error_level: QrErrorLevel) -> list[list[bool]]:
    """Modules (True = dark) including ``QR_BORDER_MODULES`` of white on each side."""
    code = qrcode.QRCode(
        version=None, error_correction=_LEVELS[error_level], border=QR_BORDER_MODULES
    )
    code.add_data(payload)
    code.make(fit=True)
    matrix: list[list[bool]] = [[bool(cell) for cell in row] for row in code.get_matrix()]
    return matrix


def fit_module_dots(payload: str, error_level: QrErrorLevel, profile: PrinterProfile) -> int:
    """The profile's module size, made smaller if the symbol would not fit the paper."""
    side = len(qr_matrix(payload, error_level))
    dots = min(profile.qr_module_dots, profile.width_dots // side)
    if dots < MIN_MODULE_DOTS:
        raise LayoutError(
            f"QR of {side} modules does not fit {profile.width_dots} dots readably; "
            "shorten the payload"
        )
    return dots


def qr_image(payload: str, error_level: QrErrorLevel, module_dots: int) -> Image.Image:
    """Black-on-white 1-bit image, ``module_dots`` pixels per module."""
    matrix = qr_matrix(payload, error_level)
    side = len(matrix)
    small = Image.new("1", (side, side), 1)
    small.putdata([0 if dark else 1 for row in matrix for dark in row])
    return small.resize((side * module_dots, side * module_dots), Image.Resampling.NEAREST)
