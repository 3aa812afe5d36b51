"""The cabinet picture: every bay of the locker as a box where it sits in the cabinet, the open
one bright amber with a blinking red border and its id in bold, so an applicant at 3 a.m. or a
clerk with an armful of envelopes finds the door at a glance.

It draws lockerd's ``CabinetGrid`` (columns of bays, row 0 at the top) with canvas rectangles;
each bay's id is a label over its box. Without a grid (lockerd's layout could not be read) the
flow still knows the bay id: the picture then shows that id alone, in one big box.

The blink runs on the Kivy clock only while the picture is on a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kivy.clock import Clock
from kivy.graphics import Color, Line, Rectangle, RoundedRectangle
from kivy.uix.widget import Widget

from kiosk.services.locker_gateway import CabinetGrid, GridPosition
from kiosk.ui.context import UiContext
from kiosk.ui.theme import Rgba, hex_rgba
from kiosk.ui.widgets import TextLabel, plain

HIGHLIGHT: Rgba = hex_rgba("#FFB000")  # amber: 8:1 with the warning text colour on it
BLINK_S = 0.5
_GAP_FRACTION = 0.08  # of a cell's smaller side, between cells
_FONT_FRACTION = 0.42  # a bay id's type, of the cell's height
_WIDTH_PER_CHAR = 0.62  # a Latin character's advance, of the font size (a little generous)
_MAX_CELL_ASPECT = 1.6  # cells no wider than this many times their height


@dataclass
class Cell:
    """One bay as drawn: its box (in the picture's coordinates), colour and label."""

    bay_id: str
    position: GridPosition
    fill: Color
    box: Rectangle
    label: BayLabel

    @property
    def rect(self) -> tuple[float, float, float, float]:
        x, y = self.box.pos
        w, h = self.box.size
        return x, y, w, h


class BayLabel(TextLabel):
    """A bay id sized to its cell, not to the theme's role."""

    def __init__(self, ctx: UiContext, bay_id: str, **kwargs: Any) -> None:
        self.max_font_px = 0.0
        self.strong = False
        super().__init__(ctx, plain(bay_id), role="small", **kwargs)

    def refresh(self, *args: Any) -> None:
        super().refresh(*args)
        limit = self.max_font_px
        font = self.ctx.theme.sizes.font("display" if self.strong else "body")
        self.font_size = max(8, round(min(font, limit))) if limit > 0 else font
        self.bold = self.strong
        self.color = getattr(self.ctx.theme.palette, "on_warning" if self.strong else "text")


class CabinetPicture(Widget):  # type: ignore[misc]
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.grid: CabinetGrid | None = None
        self.highlighted: str | None = None
        self.cells: dict[str, Cell] = {}
        self.blink_on = True
        self._blinker: Any = None
        with self.canvas.before:
            self._frame_colour = Color()
            self._frame = RoundedRectangle()
        with self.canvas.after:
            self._border_colour = Color(0, 0, 0, 0)
            self._border = Line(width=1)
        self.bind(pos=self._layout, size=self._layout, parent=self._on_parent)
        ctx.bind(revision=self._layout)

    # -- what the screen calls -------------------------------------------------------------------

    def show(self, grid: CabinetGrid | None, bay_id: str | None) -> None:
        """Draw ``grid`` with ``bay_id`` highlighted (or ``bay_id`` alone without a grid)."""
        if grid is None and bay_id is not None:
            grid = CabinetGrid(1, 1, {bay_id: GridPosition(0, 0)})
        self.grid = grid
        self.highlighted = bay_id
        self.clear_widgets()
        self.canvas.clear()
        self.cells = {}
        if grid is not None:
            order = sorted(grid.positions.items(), key=lambda kv: (kv[1].column, kv[1].row))
            for bay, position in order:  # the boxes first, the labels over them after
                with self.canvas:
                    fill = Color()
                    box = Rectangle()
                self.cells[bay] = Cell(bay, position, fill, box, BayLabel(self.ctx, bay))
            for cell in self.cells.values():
                self.add_widget(cell.label)
        self._layout()

    def cell_at(self, x: float, y: float) -> Cell | None:
        """The bay drawn at (x, y), in the picture's coordinates (``to_widget`` of a touch)."""
        for cell in self.cells.values():
            left, bottom, width, height = cell.rect
            if left <= x <= left + width and bottom <= y <= bottom + height:
                return cell
        return None

    # -- drawing -------------------------------------------------------------------------------

    def _layout(self, *_args: Any) -> None:
        palette = self.ctx.theme.palette
        grid = self.grid
        self._frame_colour.rgba = palette.on_secondary
        if grid is None or grid.columns < 1 or grid.rows < 1 or self.width <= 0:
            self._frame.size = (0, 0)
            self._border.points = []
            return
        pad = self.ctx.theme.sizes.spacing_px
        # cells keep a door-like shape: the cabinet is centred, not stretched
        cell_h = (self.height - 2 * pad) / grid.rows
        cell_w = min((self.width - 2 * pad) / grid.columns, cell_h * _MAX_CELL_ASPECT)
        total_w = cell_w * grid.columns + 2 * pad
        left = self.center_x - total_w / 2
        top = self.top - pad
        gap = max(2.0, min(cell_w, cell_h) * _GAP_FRACTION)
        self._frame.pos = (left, self.y)
        self._frame.size = (total_w, self.height)
        self._frame.radius = [pad / 2] * 4
        for cell in self.cells.values():
            x = left + pad + cell.position.column * cell_w + gap / 2
            y = top - (cell.position.row + 1) * cell_h + gap / 2
            w, h = cell_w - gap, cell_h - gap
            cell.box.pos, cell.box.size = (x, y), (w, h)
            strong = cell.bay_id == self.highlighted
            cell.fill.rgba = HIGHLIGHT if strong else palette.secondary
            label = cell.label
            label.strong = strong
            chars = max(1, len(cell.bay_id))
            label.max_font_px = min(h * _FONT_FRACTION, w / (chars * _WIDTH_PER_CHAR))
            label.pos, label.size = (x, y), (w, h)
            label.refresh()
            if strong:
                width = max(3.0, min(gap * 1.2, self.ctx.theme.sizes.spacing_px * 0.6))
                self._border.width = width
                self._border.rectangle = (x - width / 2, y - width / 2, w + width, h + width)
        self._border_colour.rgba = palette.danger if self.blink_on else (0, 0, 0, 0)
        if self.highlighted not in self.cells:
            self._border.points = []

    # -- the blink -----------------------------------------------------------------------------

    @property
    def blinking(self) -> bool:
        return self._blinker is not None

    def _on_parent(self, *_args: Any) -> None:
        if self.parent is not None and self._blinker is None:
            self._blinker = Clock.schedule_interval(self._blink, BLINK_S)
        elif self.parent is None:
            self._stop()

    def _blink(self, _dt: float) -> None:
        if self.get_root_window() is None:  # the page was taken off the screen
            self._stop()
            return
        self.blink_on = not self.blink_on
        self._border_colour.rgba = self.ctx.theme.palette.danger if self.blink_on else (0, 0, 0, 0)

    def _stop(self) -> None:
        if self._blinker is not None:
            self._blinker.cancel()
            self._blinker = None
        self.blink_on = True


__all__ = ["HIGHLIGHT", "BayLabel", "CabinetPicture", "Cell"]
