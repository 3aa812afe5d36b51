"""Sizes and colours of the touch UI, for the standard and the elderly (大字版) mode.

Sizes are designed in millimetres and turned into pixels with the panel's real density
(``[kiosk.ui] screen_dpi``), so a touch target stays at least ~15 mm whatever the panel. The
elderly mode has bigger type and targets, and its tiles take the full width. How many choices
go on a page is the session's (``SessionSettings.page_size``/``elderly_page_size``, 6 and 3):
the tile sizes here are chosen so that many fit a portrait screen. Colours keep text at a
contrast of at least 7:1 (WCAG AAA) against what it is drawn on.

Type sizes come from one short scale (``TYPE_SCALE_MM``) shared by both modes: the elderly mode
takes bigger steps of the same scale. Kivy's SDL2 text provider opens a face of the font for
every distinct pixel size it draws (about 0.7 MiB each for the prepared CJK font, kept for the
life of the process), so the scale keeps the whole UI, in both modes, at six sizes (plus the
bold heroes). A new size costs memory on every kiosk: take a step of the scale, not a size of
its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MM_PER_INCH = 25.4
Rgba = tuple[float, float, float, float]
FontRole = Literal["title", "body", "small", "tile", "key", "display"]


def mm_to_px(mm: float, dpi: float) -> int:
    return round(mm / MM_PER_INCH * dpi)


def hex_rgba(code: str, alpha: float = 1.0) -> Rgba:
    code = code.lstrip("#")
    red, green, blue = (int(code[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (red, green, blue, alpha)


def relative_luminance(colour: Rgba) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue, _ = colour
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast_ratio(first: Rgba, second: Rgba) -> float:
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@dataclass(frozen=True)
class Palette:
    background: Rgba
    text: Rgba
    text_muted: Rgba
    primary: Rgba
    on_primary: Rgba
    secondary: Rgba
    on_secondary: Rgba
    warning: Rgba
    on_warning: Rgba
    danger: Rgba
    on_danger: Rgba
    panel: Rgba
    scrim: Rgba
    header: Rgba
    on_header: Rgba

    def text_pairs(self) -> dict[str, tuple[Rgba, Rgba]]:
        """Every (text colour, background) pair the widgets draw."""
        return {
            "text": (self.text, self.background),
            "text_muted": (self.text_muted, self.background),
            "text_on_panel": (self.text, self.panel),
            "primary": (self.on_primary, self.primary),
            "secondary": (self.on_secondary, self.secondary),
            "warning": (self.on_warning, self.warning),
            "danger": (self.on_danger, self.danger),
            "header": (self.on_header, self.header),
        }


STANDARD_PALETTE = Palette(
    background=hex_rgba("#FFFFFF"),
    text=hex_rgba("#1A1A1A"),
    text_muted=hex_rgba("#3D3D3D"),
    primary=hex_rgba("#0A4A91"),  # 政务蓝 tiles and main actions
    on_primary=hex_rgba("#FFFFFF"),
    secondary=hex_rgba("#E3EAF4"),  # keypad keys, paging, toggles
    on_secondary=hex_rgba("#102A4C"),
    warning=hex_rgba("#FFF1C2"),  # the idle countdown strip
    on_warning=hex_rgba("#3B2A00"),
    danger=hex_rgba("#A4001D"),
    on_danger=hex_rgba("#FFFFFF"),
    panel=hex_rgba("#FFFFFF"),  # notice and busy boxes
    scrim=hex_rgba("#000000", 0.55),  # dims the screen behind a box
    header=hex_rgba("#0A4A91"),
    on_header=hex_rgba("#FFFFFF"),
)


@dataclass(frozen=True)
class Sizes:
    """Pixel sizes for one mode."""

    font_title_px: int
    font_body_px: int
    font_small_px: int
    font_tile_px: int
    font_key_px: int
    font_display_px: int  # a keypad's entered digits
    touch_min_px: int  # nothing touchable is smaller than this either way
    tile_height_px: int
    key_px: int
    header_height_px: int
    idle_bar_height_px: int
    padding_px: int
    spacing_px: int
    tile_columns: int

    def font(self, role: FontRole) -> int:
        return {
            "title": self.font_title_px,
            "body": self.font_body_px,
            "small": self.font_small_px,
            "tile": self.font_tile_px,
            "key": self.font_key_px,
            "display": self.font_display_px,
        }[role]


@dataclass(frozen=True)
class Theme:
    elderly: bool
    sizes: Sizes
    palette: Palette


# The type scale, millimetres on the panel. Every font role in both modes is one of its steps.
TYPE_SCALE_MM = (6.5, 8.5, 10.0, 12.0, 14.0, 16.0)
# role: (standard, elderly) step of TYPE_SCALE_MM; elderly is at least one step bigger
_FONT_STEP: dict[FontRole, tuple[int, int]] = {
    "small": (0, 1),  # 6.5 / 8.5 mm
    "body": (1, 3),  # 8.5 / 12 mm
    "tile": (2, 4),  # 10 / 14 mm
    "title": (3, 5),  # 12 / 16 mm
    "key": (3, 5),  # 12 / 16 mm
    "display": (4, 5),  # 14 / 16 mm: a keypad's digits, a ticket's queue line
}
_TOUCH_MIN_MM = (15.0, 20.0)
_TILE_MM = (36.0, 46.0)
_KEY_MM = (28.0, 34.0)
_HEADER_MM = (20.0, 24.0)
_IDLE_BAR_MM = (22.0, 26.0)
_PADDING_MM = (6.0, 6.0)
_SPACING_MM = (4.0, 5.0)
_TILE_COLUMNS = (2, 1)


def make_theme(elderly: bool, dpi: float, palette: Palette | None = None) -> Theme:
    mode = 1 if elderly else 0

    def px(pair: tuple[float, float]) -> int:
        return mm_to_px(pair[mode], dpi)

    def font_px(role: FontRole) -> int:
        return mm_to_px(TYPE_SCALE_MM[_FONT_STEP[role][mode]], dpi)

    sizes = Sizes(
        font_title_px=font_px("title"),
        font_body_px=font_px("body"),
        font_small_px=font_px("small"),
        font_tile_px=font_px("tile"),
        font_key_px=font_px("key"),
        font_display_px=font_px("display"),
        touch_min_px=px(_TOUCH_MIN_MM),
        tile_height_px=px(_TILE_MM),
        key_px=px(_KEY_MM),
        header_height_px=px(_HEADER_MM),
        idle_bar_height_px=px(_IDLE_BAR_MM),
        padding_px=px(_PADDING_MM),
        spacing_px=px(_SPACING_MM),
        tile_columns=_TILE_COLUMNS[mode],
    )
    return Theme(elderly=elderly, sizes=sizes, palette=palette or STANDARD_PALETTE)
