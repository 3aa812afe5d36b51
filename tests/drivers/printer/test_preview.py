"""PNG previews of the same layouts: they decode, and their QR reads back as what was printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from pyzbar.pyzbar import decode

from drivers.printer.layout import Layout, pickup_slip_layout, queue_ticket_layout, receipt_layout
from drivers.printer.preview import (
    NOTO_CJK_REGULAR,
    SC_FAMILY,
    _sc_face,
    render_preview,
    save_preview,
)
from drivers.printer.printer import open_printer
from drivers.printer.profiles import PROFILES
from drivers.printer.settings import PrinterSettings
from drivers.printer.sim import raster_image
from tests.drivers.printer.conftest import pickup_slip, queue_ticket, receipt

LAYOUTS = {
    "queue": lambda: queue_ticket_layout(queue_ticket()),
    "receipt": lambda: receipt_layout(receipt()),
    "pickup": lambda: pickup_slip_layout(pickup_slip()),
}


def qr_texts(image: Image.Image) -> list[str]:
    return [symbol.data.decode() for symbol in decode(image)]


@pytest.mark.parametrize("profile", ["generic-58", "budget-58-raster"])
@pytest.mark.parametrize("kind", ["queue", "receipt"])
def test_preview_qr_equals_what_the_printer_printed(
    tmp_path: Path, kind: str, profile: str
) -> None:
    layout: Layout = LAYOUTS[kind]()
    settings = PrinterSettings(backend="sim", profile=profile)
    with open_printer(settings) as printer:
        printer.print_layout(layout)
        assert printer.sim is not None
        items = printer.sim.items
    path = tmp_path / "slip.png"
    preview = save_preview(layout, settings.resolved_profile(), path)
    assert not preview.font_fallback
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width == settings.resolved_profile().width_dots
        from_preview = qr_texts(png)
    if settings.resolved_profile().native_qr:
        printed = [i["data"] for i in items if i["kind"] == "qr"]
    else:
        printed = [q for i in items if i["kind"] == "image" for q in qr_texts(raster_image(i))]
    assert from_preview == printed == layout.qr_payloads()


def test_pickup_slip_preview_has_lines_and_no_qr() -> None:
    preview = render_preview(LAYOUTS["pickup"](), PROFILES["generic-80"])
    image = preview.image
    assert qr_texts(image) == []
    # ink on most text rows: at least the 9 lines of text and 2 rules drew something
    assert image.mode == "L"
    pixels, width = image.tobytes(), image.width
    rows = (pixels[y * width : (y + 1) * width] for y in range(image.height))
    inked_rows = sum(1 for row in rows if min(row) < 128)
    assert inked_rows > 11 * 10


def test_simplified_chinese_face_is_picked_by_name() -> None:
    font = _sc_face(NOTO_CJK_REGULAR, 24)
    assert font is not None and font.getname()[0] == SC_FAMILY


def test_missing_fonts_fall_back_and_still_render(tmp_path: Path) -> None:
    layout = LAYOUTS["queue"]()
    preview = render_preview(
        layout,
        PROFILES["generic-58"],
        regular_font=tmp_path / "none.ttc",
        bold_font=tmp_path / "none-bold.ttc",
    )
    assert preview.font_fallback
    assert qr_texts(preview.image) == layout.qr_payloads()
