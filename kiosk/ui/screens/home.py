"""The home page: one big tile per service. It renders the session's ``tiles`` (a tile the
hardware cannot serve is shown off, with the reason) and starts the chosen journey."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from kiosk.flows.base import Msg, Text
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen
from kiosk.ui.widgets import TextLabel, Tile, TilePage


class HomeTile(Protocol):
    """One of the session's tiles (``kiosk.flows.home.Tile``)."""

    @property
    def id(self) -> Any: ...

    @property
    def title(self) -> Text: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def reason(self) -> Text | None: ...


class HomeModel(Protocol):
    """What the home page needs of the session. (Typed structurally: importing the session's
    modules here would load every journey before the first frame.)"""

    @property
    def tiles(self) -> Sequence[HomeTile]: ...

    def start(self, tile: Any) -> None: ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...


class HomeScreen(FlowScreen[HomeModel]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.heading = TextLabel(ctx, Msg("Please choose a service"), role="title", fit_height=True)
        self.tile_page = TilePage(ctx)
        self.body.add_widget(self.heading)
        self.body.add_widget(self.tile_page)

    def render(self, flow: HomeModel) -> None:
        self.tile_page.show(
            [
                Tile(tile.title, partial(flow.start, tile.id), tile.enabled, tile.reason)
                for tile in flow.tiles
            ]
        )
