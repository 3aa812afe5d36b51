"""Touch buttons: a coloured box with big text, never lower than the theme's touch minimum."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from kivy.graphics import Color, RoundedRectangle
from kivy.uix.behaviors import ButtonBehavior
from kivy.utils import escape_markup

from kiosk.flows.base import Text
from kiosk.ui.context import UiContext
from kiosk.ui.theme import FontRole, Rgba
from kiosk.ui.widgets.text import Colour, TextLabel

Style = Literal["primary", "secondary", "danger", "warning"]
HeightRole = Literal["touch", "key", "tile"]  # the theme size a button is at least as high as
_TEXT_COLOUR: dict[Style, Colour] = {
    "primary": "on_primary",
    "secondary": "on_secondary",
    "danger": "on_danger",
    "warning": "on_warning",
}
_PRESSED_DARKEN = 0.75
_DISABLED_ALPHA = 0.4
_RADIUS_FRACTION = 0.12  # of the touch minimum


class KioskButton(ButtonBehavior, TextLabel):  # type: ignore[misc]
    """Calls ``on_tap`` when a touch that started on it is released on it. Its height fits its
    text, but is never below ``min_height_px`` (the touch minimum)."""

    def __init__(
        self,
        ctx: UiContext,
        source: Text | None,
        on_tap: Callable[[], None],
        style: Style = "primary",
        *,
        role: FontRole = "body",
        height_role: HeightRole = "touch",
        **kwargs: Any,
    ) -> None:
        self.style: Style = style
        self.height_role: HeightRole = height_role
        self._on_tap = on_tap
        kwargs.setdefault("size_hint_y", None)
        kwargs.setdefault("padding", (24, 8))
        # keywords only: ButtonBehavior.__init__ passes nothing positional up the MRO
        super().__init__(ctx=ctx, source=source, role=role, colour=_TEXT_COLOUR[style], **kwargs)
        with self.canvas.before:
            self._fill = Color(*self._background())
            self._box = RoundedRectangle(pos=self.pos, size=self.size)
        self.bind(pos=self._redraw, size=self._redraw, state=self._redraw, disabled=self._redraw)
        self.refresh()

    def min_height_px(self) -> int:
        sizes = self.ctx.theme.sizes
        return {"touch": sizes.touch_min_px, "key": sizes.key_px, "tile": sizes.tile_height_px}[
            self.height_role
        ]

    def set_style(self, style: Style) -> None:
        self.style = style
        self.colour = _TEXT_COLOUR[style]
        self.refresh()

    def refresh(self, *args: Any) -> None:
        super().refresh(*args)
        if hasattr(self, "_fill"):  # Label.__init__ may refresh before the canvas exists
            self._fit()
            self._redraw()

    def _fit(self, *_args: Any) -> None:
        # the texture includes the padding
        self.height = max(self.min_height_px(), self.texture_size[1])
        if self.fit_width:
            self.width = max(self.ctx.theme.sizes.touch_min_px, self.texture_size[0])

    def _background(self) -> Rgba:
        red, green, blue, alpha = getattr(self.ctx.theme.palette, self.style)
        if self.disabled:
            return (red, green, blue, alpha * _DISABLED_ALPHA)
        if self.state == "down":
            return (red * _PRESSED_DARKEN, green * _PRESSED_DARKEN, blue * _PRESSED_DARKEN, alpha)
        return (red, green, blue, alpha)

    def _redraw(self, *_args: Any) -> None:
        red, green, blue, _alpha = self.color
        self.disabled_color = (red, green, blue, _DISABLED_ALPHA)
        self._fill.rgba = self._background()
        self._box.pos = self.pos
        self._box.size = self.size
        self._box.radius = [self.ctx.theme.sizes.touch_min_px * _RADIUS_FRACTION] * 4

    def on_release(self) -> None:
        self._on_tap()


class BigTile(KioskButton):
    """A choice on a tile page: big text, no icon, at least the theme's tile height. A
    ``note`` (e.g. why the tile is off) goes under the label in small type."""

    def __init__(
        self,
        ctx: UiContext,
        source: Text,
        on_tap: Callable[[], None],
        note: Text | None = None,
        **kwargs: Any,
    ) -> None:
        self.note = note
        super().__init__(
            ctx, source, on_tap, style="primary", role="tile", height_role="tile", **kwargs
        )

    def refresh(self, *args: Any) -> None:
        super().refresh(*args)
        if self.note is not None and self.source is not None:
            small = self.ctx.theme.sizes.font_small_px
            label = escape_markup(self.ctx.text(self.source))
            note = escape_markup(self.ctx.text(self.note))
            self.markup = True
            self.text = f"{label}\n[size={small}]{note}[/size]"
