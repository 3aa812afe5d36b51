"""Boxes over a screen: "working on it" while a flow's job runs, and a notice to acknowledge.

Both are modal: while one is on screen it takes every touch, so nothing behind it can be
pressed twice. ``FlowScreen`` adds them when the flow has a ``busy`` text or a ``notice`` and
removes them after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.clock import Clock
from kivy.graphics import Color, Line, Rectangle, RoundedRectangle
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.widget import Widget

from kiosk.flows.base import Msg, Notice, Text
from kiosk.ui.context import UiContext
from kiosk.ui.widgets.buttons import KioskButton
from kiosk.ui.widgets.layouts import FitBox
from kiosk.ui.widgets.text import TextLabel

_SPIN_FPS = 30
_SPIN_DEG_PER_FRAME = 12
_ARC_DEG = 270
_PANEL_WIDTH_FRACTION = 0.84


class Spinner(Widget):  # type: ignore[misc]
    """A turning arc, animated between ``start()`` and ``stop()``."""

    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.angle = 0
        self._ticker: Any = None
        with self.canvas:
            self._colour = Color(*ctx.theme.palette.primary)
            self._arc = Line(width=6, cap="round")
        self.bind(pos=self._draw, size=self._draw)

    @property
    def spinning(self) -> bool:
        return self._ticker is not None

    def start(self) -> None:
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(self._spin, 1 / _SPIN_FPS)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _spin(self, _dt: float) -> None:
        self.angle = (self.angle + _SPIN_DEG_PER_FRAME) % 360
        self._draw()

    def _draw(self, *_args: Any) -> None:
        side = min(self.width, self.height)
        x = self.center_x - side / 2
        y = self.center_y - side / 2
        self._arc.ellipse = (x, y, side, side, self.angle, self.angle + _ARC_DEG)


class _Modal(FloatLayout):  # type: ignore[misc]
    """A scrim over the whole screen with a white panel in the middle."""

    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.panel = FitBox(
            orientation="vertical",
            size_hint=(_PANEL_WIDTH_FRACTION, None),
            pos_hint={"center_x": 0.5, "center_y": 0.5},
        )
        with self.canvas.before:
            self._scrim_colour = Color()
            self._scrim = Rectangle()
        with self.panel.canvas.before:
            self._panel_colour = Color()
            self._panel = RoundedRectangle()
        self.add_widget(self.panel)
        self.bind(pos=self._draw, size=self._draw)
        self.panel.bind(pos=self._draw, size=self._draw)
        ctx.bind(revision=self._draw)
        self._draw()

    def _draw(self, *_args: Any) -> None:
        theme = self.ctx.theme
        self.panel.padding = theme.sizes.padding_px * 2
        self.panel.spacing = theme.sizes.spacing_px * 2
        self._scrim_colour.rgba = theme.palette.scrim
        self._scrim.pos, self._scrim.size = self.pos, self.size
        self._panel_colour.rgba = theme.palette.panel
        self._panel.pos, self._panel.size = self.panel.pos, self.panel.size
        self._panel.radius = [theme.sizes.padding_px] * 4

    def on_touch_down(self, touch: Any) -> bool:
        super().on_touch_down(touch)
        return True  # modal: nothing behind gets the touch

    def on_touch_move(self, touch: Any) -> bool:
        super().on_touch_move(touch)
        return True

    def on_touch_up(self, touch: Any) -> bool:
        super().on_touch_up(touch)
        return True


class BusyOverlay(_Modal):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.spinner = Spinner(ctx, size_hint_y=None)
        self.message = TextLabel(ctx, fit_height=True)
        self.panel.add_widget(self.spinner)
        self.panel.add_widget(self.message)
        ctx.bind(revision=self._size_spinner)
        self._size_spinner()
        # animate only while on a screen: a stopped overlay costs no frames
        self.bind(parent=self._on_parent)

    def _on_parent(self, *_args: Any) -> None:
        if self.parent is None:
            self.spinner.stop()
        else:
            self.spinner.start()

    def _size_spinner(self, *_args: Any) -> None:
        self.spinner.height = self.ctx.theme.sizes.key_px

    def show(self, text: Text) -> None:
        self.message.set_source(text)


class NoticeBox(_Modal):
    """A notice's text, an OK button and, when staff are needed, where to find them."""

    def __init__(self, ctx: UiContext, on_ok: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.message = TextLabel(ctx, fit_height=True)
        self.staff_hint = TextLabel(ctx, colour="text_muted", role="small", fit_height=True)
        self.ok = KioskButton(ctx, Msg("OK"), on_ok, "primary", height_role="key")
        self.notice: Notice | None = None

    def show(self, notice: Notice) -> None:
        self.notice = notice
        self.panel.clear_widgets()
        self.message.set_source(notice.text)
        self.panel.add_widget(self.message)
        if notice.call_staff:
            self.staff_hint.set_source(Msg("Please ask the staff at the service desk for help."))
            self.panel.add_widget(self.staff_hint)
        self.panel.add_widget(self.ok)
