"""Widgets every screen is built from. Each takes the app's ``UiContext`` and draws its texts
through it, so a language or mode change re-renders them."""

from kiosk.ui.widgets.buttons import BigTile, KioskButton
from kiosk.ui.widgets.idle import IdleCountdown
from kiosk.ui.widgets.keypad import Keypad
from kiosk.ui.widgets.overlays import BusyOverlay, NoticeBox
from kiosk.ui.widgets.text import TextLabel, plain
from kiosk.ui.widgets.tiles import Tile, TilePage
from kiosk.ui.widgets.toggles import ElderlyToggle, LanguageToggle

__all__ = [
    "BigTile",
    "BusyOverlay",
    "ElderlyToggle",
    "IdleCountdown",
    "Keypad",
    "KioskButton",
    "LanguageToggle",
    "NoticeBox",
    "TextLabel",
    "Tile",
    "TilePage",
    "plain",
]
