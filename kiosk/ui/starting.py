"""The home page while the kiosk starts (kiosk/app.py "Start-up").

The window shows the home tiles from the first frame; the journeys, drivers and the hall are
assembled on the frames after it. ``StartingHome`` stands in for the session meanwhile: it lists
the tiles the assembled kiosk will offer (kiosk/flows/tiles.py) and remembers what the applicant
touched (the last tile, language and 大字版), which kiosk/app.py hands to the session once it
exists. Nothing here imports a journey, a driver or the hall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kiosk.flows.base import Msg, Text
from kiosk.flows.tiles import TILES, WHERE_INSTEAD, JourneyKind, Tile, TileId
from kiosk.i18n import Language


def starting_tiles(journeys: Iterable[JourneyKind]) -> tuple[Tile, ...]:
    """The tiles of ``journeys`` in home-page order, all on (the hardware is not checked yet)."""
    offered = set(journeys)
    return tuple(
        Tile(tile_id, spec.title, enabled=True)
        for tile_id, spec in TILES.items()
        if spec.journey in offered
    )


class StartingHome:
    """What the home screen binds to before the session exists."""

    def __init__(self, tiles: Iterable[Tile]) -> None:
        self._tiles = tuple(tiles)
        self.tile: TileId | None = None  # the last tile touched, started once the kiosk is up
        self.language: Language | None = None
        self.elderly: bool | None = None

    @property
    def tiles(self) -> tuple[Tile, ...]:
        return self._tiles

    def start(self, tile: Any) -> None:
        self.tile = TileId(tile)

    def set_language(self, language: Language) -> None:
        self.language = language

    def set_elderly(self, on: bool) -> None:
        self.elderly = on

    def subscribe(self, _listener: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None  # the tiles never change while starting


class StartFailed:
    """The out-of-service page when the kiosk could not be assembled (systemd restarts it)."""

    out_of_service_reason: Text = Msg.of("This kiosk could not start. It will try again shortly.")
    where_instead: Text = WHERE_INSTEAD

    def subscribe(self, _listener: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None
