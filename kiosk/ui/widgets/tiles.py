"""A page of big choice tiles, with paging controls when the flow pages its list.

The flow (or the session, for the home page) decides what is on the page and how many per page
(fewer in elderly mode); this widget lays the page out in the theme's columns and forwards
taps and page turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from kiosk.flows.base import Msg, Text
from kiosk.ui.context import UiContext
from kiosk.ui.widgets.buttons import BigTile, KioskButton
from kiosk.ui.widgets.layouts import FitBox, FitGrid
from kiosk.ui.widgets.text import TextLabel


@dataclass(frozen=True)
class Tile:
    label: Text
    on_tap: Callable[[], None]
    enabled: bool = True
    note: Text | None = None  # shown under the label, e.g. why a tile is off


@dataclass(frozen=True)
class Paging:
    page: int  # from 0
    pages: int
    on_previous: Callable[[], None]
    on_next: Callable[[], None]


class TilePage(BoxLayout):  # type: ignore[misc]
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(orientation="vertical", **kwargs)
        self.ctx = ctx
        self._tiles: tuple[Tile, ...] = ()
        self._paging: Paging | None = None
        ctx.bind(revision=self._rebuild)
        self._rebuild()

    def show(self, tiles: Sequence[Tile], paging: Paging | None = None) -> None:
        self._tiles = tuple(tiles)
        self._paging = paging
        self._rebuild()

    def _rebuild(self, *_args: Any) -> None:
        sizes = self.ctx.theme.sizes
        self.spacing = sizes.spacing_px
        self.clear_widgets()
        grid = FitGrid(cols=sizes.tile_columns, spacing=sizes.spacing_px)
        for tile in self._tiles:
            widget = BigTile(self.ctx, tile.label, tile.on_tap, note=tile.note)
            widget.disabled = not tile.enabled
            grid.add_widget(widget)
        self.add_widget(grid)
        self.add_widget(Widget())  # pushes the paging row to the bottom
        if self._paging is not None and self._paging.pages > 1:
            self.add_widget(self._paging_row(self._paging))

    def _paging_row(self, paging: Paging) -> FitBox:
        sizes = self.ctx.theme.sizes
        row = FitBox(spacing=sizes.spacing_px)
        back = KioskButton(self.ctx, Msg("Previous page"), paging.on_previous, "secondary")
        where = TextLabel(
            self.ctx, Msg.of("Page {page} of {pages}", page=paging.page + 1, pages=paging.pages)
        )
        more = KioskButton(self.ctx, Msg("Next page"), paging.on_next, "secondary")
        back.disabled = paging.page <= 0
        more.disabled = paging.page >= paging.pages - 1
        for widget in (back, where, more):
            row.add_widget(widget)
        return row
