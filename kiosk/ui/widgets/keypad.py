"""A numeric keypad for pickup passwords, PINs and phone numbers.

It holds no digits: each key calls the flow (``kiosk.flows.keypad.Keypad`` keeps them, and a
secret is read once with ``take()``), and the screen's ``render`` passes back what the entry box
shows (``flow.keypad.display``, masked for secrets) and whether OK may be pressed. So a wipe of
the flow leaves nothing behind on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.uix.boxlayout import BoxLayout

from kiosk.flows.base import Msg, Text
from kiosk.ui.context import UiContext
from kiosk.ui.widgets.buttons import KioskButton, Style
from kiosk.ui.widgets.layouts import FitBox, FitGrid
from kiosk.ui.widgets.text import TextLabel, plain


class Keypad(FitBox):
    def __init__(
        self,
        ctx: UiContext,
        on_digit: Callable[[str], None],
        on_delete: Callable[[], None],
        on_confirm: Callable[[], None],
        on_clear: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(orientation="vertical", **kwargs)
        self.ctx = ctx
        self.entry = TextLabel(ctx, role="display", size_hint_y=None)
        self.keys = FitGrid(cols=3)
        for digit in "123456789":
            self.keys.add_widget(self._key(digit, on_digit))
        if on_clear is not None:
            self.keys.add_widget(self._button(Msg("Clear"), on_clear, "secondary"))
        else:
            self.keys.add_widget(BoxLayout())  # an empty cell keeps 0 in the middle
        self.keys.add_widget(self._key("0", on_digit))
        self.keys.add_widget(self._button(Msg("Delete"), on_delete, "secondary"))
        self.confirm = self._button(Msg("OK"), on_confirm, "primary")
        for widget in (self.entry, self.keys, self.confirm):
            self.add_widget(widget)
        ctx.bind(revision=self._layout)
        self._layout()
        self.show("", can_confirm=False)

    def _button(self, label: Text, on_tap: Callable[[], None], style: Style) -> KioskButton:
        return KioskButton(self.ctx, label, on_tap, style, role="key", height_role="key")

    def _key(self, digit: str, on_digit: Callable[[str], None]) -> KioskButton:
        return self._button(plain(digit), lambda: on_digit(digit), "secondary")

    def show(self, entry: str, can_confirm: bool) -> None:
        """What the entry box shows (already masked by the flow) and whether OK works."""
        self.entry.set_source(plain(entry))
        self.confirm.disabled = not can_confirm

    def _layout(self, *_args: Any) -> None:
        sizes = self.ctx.theme.sizes
        self.spacing = sizes.spacing_px
        self.keys.spacing = sizes.spacing_px
        self.entry.height = sizes.key_px
