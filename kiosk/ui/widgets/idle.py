"""The idle countdown strip: how long until the kiosk goes home and forgets the applicant, a
bar that runs down, and a "more time" button.

It only shows values. The session (kiosk/flows/session.py) owns the timer: its tick sets
``seconds_left``/``total_s``/``shown``, and ``on_more_time`` asks it to restart the count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kivy.graphics import Color, Rectangle
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.flows.base import Msg
from kiosk.ui.context import UiContext
from kiosk.ui.widgets.buttons import KioskButton
from kiosk.ui.widgets.text import TextLabel

_BAR_HEIGHT_FRACTION = 0.12


class IdleCountdown(BoxLayout):  # type: ignore[misc]
    seconds_left = NumericProperty(0.0)
    total_s = NumericProperty(60.0)
    shown = BooleanProperty(False)

    def __init__(self, ctx: UiContext, on_more_time: Callable[[], None], **kwargs: Any) -> None:
        kwargs.setdefault("size_hint_y", None)
        super().__init__(orientation="horizontal", **kwargs)
        self.ctx = ctx
        self.message = TextLabel(ctx, colour="on_warning", halign="left")
        self.more_time = KioskButton(ctx, Msg("More time"), on_more_time, "primary", fit_width=True)
        self.add_widget(self.message)
        self.add_widget(self.more_time)
        with self.canvas.before:
            self._back_colour = Color()
            self._back = Rectangle()
            self._bar_colour = Color()
            self._bar = Rectangle()
        self.bind(
            pos=self._draw,
            size=self._draw,
            seconds_left=self._draw,
            total_s=self._draw,
            shown=self._draw,
        )
        self.more_time.bind(height=self._draw)
        ctx.bind(revision=self._draw)
        self._draw()

    def show(self, seconds_left: float, total_s: float) -> None:
        self.total_s = max(total_s, 0.001)
        self.seconds_left = max(0.0, seconds_left)
        self.shown = True

    def hide(self) -> None:
        self.shown = False

    def _draw(self, *_args: Any) -> None:
        sizes = self.ctx.theme.sizes
        palette = self.ctx.theme.palette
        vertical_padding_px = sizes.spacing_px // 2
        self.padding = (sizes.padding_px, vertical_padding_px)
        needed_px = self.more_time.height + 2 * vertical_padding_px
        self.height = max(sizes.idle_bar_height_px, needed_px)
        self.spacing = sizes.spacing_px
        # hidden: drawn empty and untouchable, but it keeps its place so nothing jumps
        self.opacity = 1.0 if self.shown else 0.0
        self.more_time.disabled = not self.shown
        seconds = math.ceil(self.seconds_left)
        self.message.set_source(
            Msg.of("Returning to the home page in {seconds} s", seconds=seconds)
            if self.shown
            else None
        )
        fraction = min(1.0, self.seconds_left / self.total_s) if self.shown else 0.0
        self._back_colour.rgba = palette.warning
        self._back.pos, self._back.size = self.pos, self.size
        self._bar_colour.rgba = palette.danger if fraction < 0.25 else palette.primary
        bar_height = max(4.0, self.height * _BAR_HEIGHT_FRACTION)
        self._bar.pos = self.pos
        self._bar.size = (self.width * fraction, bar_height)

    def on_touch_down(self, touch: Any) -> bool:
        if not self.shown:
            return False  # a disabled widget would swallow the touch
        return bool(super().on_touch_down(touch))
