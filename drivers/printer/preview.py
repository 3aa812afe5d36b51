"""The same Layout as a PNG: what the slip will look like, for tests, docs and ops screens.

Text uses the Simplified Chinese face of Noto Sans CJK (face 2 of the .ttc; face 0 is the
Japanese one and draws some characters differently), checked by name. Without the fonts the
preview still renders with Pillow's built-in font and says so (Chinese then shows as boxes).
Geometry follows the printer: the paper is ``width_dots`` wide, font A is 12 x 24 dots (a
Chinese character 24 x 24), and lines wrap exactly where the renderer wraps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from drivers.printer.layout import Align, Cut, Feed, Layout, QRCode, Separator, Text, text_lines
from drivers.printer.profiles import PrinterProfile, QrErrorLevel
from drivers.printer.qrimage import fit_module_dots, qr_image

NOTO_CJK_REGULAR = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
NOTO_CJK_BOLD = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
NOTO_SC_FACE_INDEX = 2  # JP 0, KR 1, SC 2, TC 3, HK 4 in Debian's fonts-noto-cjk
SC_FAMILY = "Noto Sans CJK SC"
CHAR_DOTS = 24  # height of font A and width of a Chinese character
LINE_DOTS = 30  # default line spacing (ESC 2) is about 1/6 inch
MARGIN_DOTS = 16  # white paper above and below the print


@dataclass(frozen=True)
class Preview:
    image: Image.Image
    font_fallback: bool  # True when the CJK font was missing

    def save(self, path: str | Path) -> None:
        self.image.save(path, format="PNG")


FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


class _Fonts:
    """Fonts by (size, bold), loaded on first use; one per preview, not global."""

    def __init__(self, regular: Path, bold: Path) -> None:
        self._paths = {False: regular, True: bold}
        self._cache: dict[tuple[int, bool], FontType] = {}
        self.fallback = False

    def get(self, px: int, bold: bool) -> FontType:
        key = (px, bold)
        if key not in self._cache:
            self._cache[key] = self._load(px, bold)
        return self._cache[key]

    def _load(self, px: int, bold: bool) -> FontType:
        for path in (self._paths[bold], self._paths[False]):
            font = _sc_face(path, px)
            if font is not None:
                return font
        self.fallback = True
        return ImageFont.load_default(size=px)


def _sc_face(path: Path, px: int) -> ImageFont.FreeTypeFont | None:
    """The Simplified Chinese face of a Noto CJK collection, or None."""
    if not path.is_file():
        return None
    try:
        font = ImageFont.truetype(str(path), px, index=NOTO_SC_FACE_INDEX)
    except OSError:
        return None
    # a collection packed in another order would give Japanese glyph shapes: look by name
    if font.getname()[0] == SC_FAMILY:
        return font
    for index in range(10):
        try:
            font = ImageFont.truetype(str(path), px, index=index)
        except OSError:
            break
        if font.getname()[0] == SC_FAMILY:
            return font
    return None


def render_preview(
    layout: Layout,
    profile: PrinterProfile,
    *,
    regular_font: Path = NOTO_CJK_REGULAR,
    bold_font: Path = NOTO_CJK_BOLD,
) -> Preview:
    fonts = _Fonts(regular_font, bold_font)
    width = profile.width_dots
    # draw on a tall strip, then crop to what was used
    height = MARGIN_DOTS * 2 + _estimate_height(layout, profile)
    paper = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(paper)
    y = MARGIN_DOTS
    for element in layout.elements:
        match element:
            case Text():
                font = fonts.get(CHAR_DOTS * element.size, element.bold)
                for line in text_lines(element, profile.chars_per_line):
                    text_w = int(draw.textlength(line, font=font)) if line else 0
                    x = _x(element.align, text_w, width)
                    draw.text((x, y), line, fill=0, font=font)
                    y += LINE_DOTS * element.size
            case Separator():
                mid = y + LINE_DOTS // 2
                for x0 in range(0, width, 12):
                    draw.line([(x0, mid), (x0 + 7, mid)], fill=0, width=2)
                y += LINE_DOTS
            case QRCode():
                level: QrErrorLevel = element.error_level or profile.qr_error_level
                dots = fit_module_dots(element.payload, level, profile)
                symbol = qr_image(element.payload, level, dots).convert("L")
                paper.paste(symbol, (_x(element.align, symbol.width, width), y))
                y += symbol.height
            case Feed():
                y += LINE_DOTS * element.lines
            case Cut():
                y += LINE_DOTS * profile.feed_before_cut_lines
                if profile.cutter != "none":
                    for x0 in range(0, width, 8):
                        draw.line([(x0, y), (x0 + 3, y)], fill=128, width=1)
    return Preview(paper.crop((0, 0, width, min(height, y + MARGIN_DOTS))), fonts.fallback)


def _x(align: Align, item_width: int, paper_width: int) -> int:
    if align is Align.CENTER:
        return max(0, (paper_width - item_width) // 2)
    if align is Align.RIGHT:
        return max(0, paper_width - item_width)
    return 0


def _estimate_height(layout: Layout, profile: PrinterProfile) -> int:
    total = 0
    for element in layout.elements:
        match element:
            case Text():
                lines = len(text_lines(element, profile.chars_per_line))
                total += LINE_DOTS * element.size * lines
            case Separator():
                total += LINE_DOTS
            case QRCode():
                total += profile.width_dots  # a QR is never wider than the paper
            case Feed():
                total += LINE_DOTS * element.lines
            case Cut():
                total += LINE_DOTS * (profile.feed_before_cut_lines + 1)
    return total


def save_preview(layout: Layout, profile: PrinterProfile, path: str | Path) -> Preview:
    preview = render_preview(layout, profile)
    preview.save(path)
    return preview
