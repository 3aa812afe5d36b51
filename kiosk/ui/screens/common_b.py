"""What the pickup, staff and pre-review screens share: a page rebuilt only when what it shows
changed, the building blocks of a page, and small pictures that tell without words where to put
a card, a document or a barcode.

The screens hold no rules. ``PageScreen.render`` asks the subclass for a ``signature`` of what
the page shows (the flow's state and view, minus what changes while typing); when it changed,
the page is laid out again with ``build``; ``update`` then refreshes the parts that change on
every key press (a keypad's entry box). So a digit typed on a keypad does not rebuild the page,
and a language or mode switch (``ctx.revision``) always does.

``reason``: a flow says why it stopped (no item, locked out, a jammed door) in a ``notice``,
which the applicant dismisses with OK. The page keeps saying it while the flow stays in that
state, so an elderly applicant who pressed OK can still read it. It is the flow's or lockerd's
message, never personal data, and it is dropped with the page on ``detach``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from kivy.graphics import Color, Ellipse, Line, Rectangle, RoundedRectangle, Triangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.flows.base import FlowStateError, Msg, Notice, Text
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen, Observable
from kiosk.ui.theme import FontRole
from kiosk.ui.widgets import KioskButton, TextLabel, plain
from kiosk.ui.widgets.buttons import Style
from kiosk.ui.widgets.layouts import FitBox, FitGrid
from kiosk.ui.widgets.text import Colour

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Observable)

CANCEL = Msg("Cancel")
BACK = Msg("Back")
FINISH = Msg("Finish")
ASK_STAFF = Msg("Ask staff for help")
BACK_TO_MENU = Msg("Back to menu")

HINT_HEIGHT_TILES = 3.0  # a hint picture is this many tile heights high
HERO_SCALE = 1.6  # a bay id or receipt number: this much bigger than the keypad display


def act(method: Callable[..., object], *args: Any) -> Callable[..., None]:
    """A touch handler that calls one flow method with ``args`` (and whatever the widget
    passes, e.g. a keypad's digit). A second tap on a button the flow has moved past (two taps
    inside one frame, before the page was redrawn) is logged and dropped: a flow's
    ``FlowStateError`` must never reach the Kivy loop."""

    def tap(*more: Any) -> None:
        try:
            method(*args, *more)
        except FlowStateError as exc:
            log.warning("touch ignored, the page was out of date: %s", exc)

    return tap


def hhmm(moment: datetime | None) -> str:
    """A time of day as the hall's clock shows it (the flow gives local, aware times)."""
    return "" if moment is None else f"{moment:%H:%M}"


def day(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d}"


# -- small widgets -----------------------------------------------------------------------------


class Banner(TextLabel):
    """A line of text on a coloured strip: a warning (tries left) or a status badge."""

    def __init__(
        self, ctx: UiContext, source: Text | None, style: Style = "warning", **kwargs: Any
    ) -> None:
        self.style: Style = style
        colour: Colour = "on_warning" if style == "warning" else "on_danger"
        if style == "primary":
            colour = "on_primary"
        elif style == "secondary":
            colour = "on_secondary"
        kwargs.setdefault("padding", (16, 8))
        super().__init__(ctx, source, colour=colour, **kwargs)
        with self.canvas.before:
            self._fill = Color()
            self._box = RoundedRectangle()
        self.bind(pos=self._draw, size=self._draw)
        ctx.bind(revision=self._draw)
        self._draw()

    def _draw(self, *_args: Any) -> None:
        self._fill.rgba = getattr(self.ctx.theme.palette, self.style)
        self._box.pos, self._box.size = self.pos, self.size
        self._box.radius = [self.ctx.theme.sizes.spacing_px / 2] * 4


class HeroLabel(TextLabel):
    """A bay id or a receipt number: bold, bigger than anything else on the page."""

    def refresh(self, *args: Any) -> None:
        super().refresh(*args)
        self.bold = True
        self.font_size = round(self.ctx.theme.sizes.font_display_px * HERO_SCALE)


class _Hint(Widget):  # type: ignore[misc]
    """A picture drawn with canvas shapes (no text): fixed height, redrawn on resize."""

    height_tiles = HINT_HEIGHT_TILES

    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        kwargs.setdefault("size_hint_y", None)
        super().__init__(**kwargs)
        self.ctx = ctx
        self.bind(pos=self._redraw, size=self._redraw)
        ctx.bind(revision=self._redraw)
        self._redraw()

    def _redraw(self, *_args: Any) -> None:
        self.height = round(self.ctx.theme.sizes.tile_height_px * self.height_tiles)
        self.canvas.clear()
        with self.canvas:
            self.draw()

    def draw(self) -> None:
        raise NotImplementedError

    def _arrow_down(self, cx: float, top: float, bottom: float, width: float) -> None:
        palette = self.ctx.theme.palette
        Color(*palette.danger)
        head = width * 1.6
        Line(points=[cx, top, cx, bottom + head * 0.8], width=max(3.0, width / 4))
        Triangle(points=[cx - head / 2, bottom + head, cx + head / 2, bottom + head, cx, bottom])


class CardHint(_Hint):
    """A card held over the reader, with an arrow: "put your card here"."""

    def draw(self) -> None:
        palette = self.ctx.theme.palette
        w, h = self.height * 1.3, self.height
        x0, y0 = self.center_x - w / 2, self.y
        # the reader: a dark pad at the bottom
        Color(*palette.on_secondary)
        RoundedRectangle(pos=(x0, y0), size=(w, h * 0.22), radius=[h * 0.04] * 4)
        Color(*palette.secondary)
        Rectangle(pos=(x0 + w * 0.1, y0 + h * 0.07), size=(w * 0.8, h * 0.08))
        # the card: ID-1 proportions, above the pad
        cw, ch = w * 0.55, w * 0.55 / 1.586
        cx, cy = self.center_x - cw / 2, y0 + h * 0.28
        Color(*palette.primary)
        RoundedRectangle(pos=(cx, cy), size=(cw, ch), radius=[ch * 0.08] * 4)
        Color(*palette.secondary)
        Rectangle(pos=(cx + cw * 0.65, cy + ch * 0.2), size=(cw * 0.25, ch * 0.6))  # photo
        for n in range(3):
            Rectangle(
                pos=(cx + cw * 0.08, cy + ch * (0.25 + 0.18 * n)), size=(cw * 0.45, ch * 0.07)
            )
        self._arrow_down(cx + cw / 2, y0 + h, cy + ch + h * 0.03, h * 0.05)


class DocumentHint(_Hint):
    """A sheet on the document camera's plate under the camera head."""

    def draw(self) -> None:
        palette = self.ctx.theme.palette
        w, h = self.height * 1.4, self.height
        x0, y0 = self.center_x - w / 2, self.y
        Color(*palette.on_secondary)
        RoundedRectangle(pos=(x0, y0), size=(w, h * 0.12), radius=[h * 0.03] * 4)  # base
        Rectangle(pos=(x0 + w * 0.9, y0), size=(w * 0.06, h * 0.95))  # arm
        Rectangle(pos=(x0 + w * 0.45, y0 + h * 0.88), size=(w * 0.5, h * 0.08))  # head
        Color(*palette.secondary)
        Rectangle(pos=(x0 + w * 0.05, y0 + h * 0.12), size=(w * 0.8, h * 0.06))  # plate
        Color(*palette.primary[:3], 0.35)
        Triangle(
            points=[
                x0 + w * 0.5, y0 + h * 0.88,
                x0 + w * 0.15, y0 + h * 0.2,
                x0 + w * 0.8, y0 + h * 0.2,
            ]
        )  # fmt: skip
        Color(*palette.background)
        Rectangle(pos=(x0 + w * 0.25, y0 + h * 0.18), size=(w * 0.4, h * 0.04))  # the sheet
        Color(*palette.primary)
        Line(rectangle=(x0 + w * 0.25, y0 + h * 0.18, w * 0.4, h * 0.04), width=2)


class BarcodeHint(_Hint):
    """A barcode under the scanner's beam: "scan the envelope"."""

    height_tiles = 1.2
    _BARS = (3, 1, 2, 1, 1, 3, 1, 2, 2, 1, 3, 1, 1, 2, 1, 3, 2, 1, 1, 2, 3, 1)

    def draw(self) -> None:
        palette = self.ctx.theme.palette
        w, h = self.height * 1.6, self.height * 0.8
        x0, y0 = self.center_x - w / 2, self.y + self.height * 0.1
        Color(*palette.secondary)
        Rectangle(pos=(x0, y0), size=(w, h))
        Color(*palette.text)
        unit = w * 0.8 / (sum(self._BARS) * 1.5)
        x = x0 + w * 0.1
        for n, bar in enumerate(self._BARS):
            if n % 2 == 0:
                Rectangle(pos=(x, y0 + h * 0.15), size=(bar * unit, h * 0.7))
            x += bar * unit * 1.5
        Color(*palette.danger)
        Line(points=[x0 - w * 0.03, y0 + h / 2, x0 + w * 1.03, y0 + h / 2], width=3)


class StatusMark(_Hint):
    """A big round mark over a result page: a tick (done) or an exclamation mark (attention)."""

    height_tiles = 1.4

    def __init__(self, ctx: UiContext, kind: str = "done", **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(ctx, **kwargs)

    def draw(self) -> None:
        palette = self.ctx.theme.palette
        d = self.height * 0.9
        x0, y0 = self.center_x - d / 2, self.center_y - d / 2
        Color(*(palette.primary if self.kind == "done" else palette.danger))
        Ellipse(pos=(x0, y0), size=(d, d))
        Color(*palette.on_primary)
        stroke = d * 0.07
        if self.kind == "done":
            Line(
                points=[x0 + d * 0.27, y0 + d * 0.5, x0 + d * 0.44, y0 + d * 0.32,
                        x0 + d * 0.74, y0 + d * 0.68],
                width=stroke, cap="round", joint="round",
            )  # fmt: skip
        else:
            Line(points=[x0 + d / 2, y0 + d * 0.78, x0 + d / 2, y0 + d * 0.42], width=stroke,
                 cap="round")  # fmt: skip
            Ellipse(pos=(x0 + d / 2 - stroke, y0 + d * 0.2), size=(stroke * 2, stroke * 2))


class Row(BoxLayout):  # type: ignore[misc]
    """A horizontal line of labels and buttons: its height is the tallest child's (a label's
    text height, a button's own height); labels fill it and centre their text."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("size_hint_y", None)
        super().__init__(orientation="horizontal", **kwargs)

    def add_widget(self, widget: Widget, *args: Any, **kwargs: Any) -> None:
        if isinstance(widget, TextLabel) and not isinstance(widget, KioskButton):
            widget.fit_height = False
            widget.size_hint = (widget.size_hint_x, 1)
            widget.bind(texture_size=self._fit)
        else:
            widget.bind(height=self._fit)
        super().add_widget(widget, *args, **kwargs)
        self._fit()

    def _fit(self, *_args: Any) -> None:
        wanted = [
            c.texture_size[1]
            if isinstance(c, TextLabel) and not isinstance(c, KioskButton)
            else c.height
            for c in self.children
        ]
        self.height = max(wanted, default=0)


# -- the page ----------------------------------------------------------------------------------


class PageScreen(FlowScreen[F]):
    """A ``FlowScreen`` that lays out one page per state and keeps it while nothing it shows
    changed. Subclasses implement ``signature``, ``build`` and, for keypads, ``update``."""

    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self._shown: object = None  # the signature of the page on screen
        self._reason: tuple[str, Text] | None = None
        self.builds = 0  # how many times a page was laid out (tests read it)

    # -- binding -------------------------------------------------------------------------------

    def attach(self, flow: F) -> None:
        self._shown = None
        self._reason = None
        super().attach(flow)

    def detach(self) -> None:
        super().detach()
        self._shown = None
        self._reason = None
        self.forget()
        self.body.clear_widgets()  # nothing a journey showed stays in the widget tree

    def forget(self) -> None:
        """Drop references to the page's widgets (subclasses holding any)."""

    # -- rendering -----------------------------------------------------------------------------

    def render(self, flow: F) -> None:
        state = str(getattr(flow, "state", ""))
        reason = self.reason(flow, state)
        shown = (id(flow), self.ctx.revision, state, reason, self.signature(flow))
        if shown != self._shown:
            self._shown = shown
            self.forget()
            self.body.clear_widgets()
            self.build(flow)
            self.builds += 1
        self.update(flow)

    def signature(self, flow: F) -> object:
        """What the page shows, comparable with ``==``; a change lays the page out again."""
        raise NotImplementedError

    def build(self, flow: F) -> None:
        raise NotImplementedError

    def update(self, flow: F) -> None:
        """Every render, after ``build``: refresh what changes without a new page."""

    def reason(self, flow: Any, state: str) -> Text | None:
        """Why the flow stopped in ``state``: its notice now, or the one it gave in ``state``
        and the applicant dismissed since."""
        notice: Notice | None = getattr(flow, "notice", None)
        if notice is not None:
            self._reason = (state, notice.text)
        if self._reason is not None and self._reason[0] == state:
            return self._reason[1]
        self._reason = None
        return None

    # -- building blocks ---------------------------------------------------------------------

    def title(self, text: Text | None) -> TextLabel:
        return TextLabel(self.ctx, text, role="title", fit_height=True)

    def line(
        self,
        text: Text | None,
        role: FontRole = "body",
        colour: Colour = "text",
        **kwargs: Any,
    ) -> TextLabel:
        return TextLabel(self.ctx, text, role=role, colour=colour, fit_height=True, **kwargs)

    def banner(self, text: Text, style: Style = "warning", role: FontRole = "body") -> Banner:
        return Banner(self.ctx, text, style, role=role, fit_height=True)

    def hero(self, value: str) -> HeroLabel:
        return HeroLabel(self.ctx, plain(value), role="display", fit_height=True)

    def button(
        self,
        text: Text,
        on_tap: Callable[[], None],
        style: Style = "primary",
        *,
        role: FontRole = "tile",
        height_role: Any = "key",
    ) -> KioskButton:
        """A main action: big type, at least a keypad key high."""
        return KioskButton(self.ctx, text, on_tap, style, role=role, height_role=height_role)

    def small_button(
        self,
        text: Text,
        on_tap: Callable[[], None],
        style: Style = "secondary",
        *,
        height_role: Any = "key",
    ) -> KioskButton:
        """A way out or a side action: body type, a keypad key high (``height_role="touch"``
        for one inside a list)."""
        return KioskButton(self.ctx, text, on_tap, style, role="body", height_role=height_role)

    def actions(self, *buttons: KioskButton | None, columns: int = 2) -> FitGrid:
        """Buttons in a grid (the last row along the bottom of the page), each cell as wide as
        the others; ``None`` entries are left out."""
        shown = [b for b in buttons if b is not None]
        grid = FitGrid(
            cols=max(1, min(columns, len(shown))), spacing=self.ctx.theme.sizes.spacing_px
        )
        for button in shown:
            grid.add_widget(button)
        return grid

    def column(self, widgets: Sequence[Widget | None]) -> FitBox:
        box = FitBox(orientation="vertical", spacing=self.ctx.theme.sizes.spacing_px)
        for widget in widgets:
            if widget is not None:
                box.add_widget(widget)
        return box

    def row(self, widgets: Sequence[Widget | None], widths: Sequence[float] = ()) -> Row:
        """Side by side, as high as the tallest, texts centred on the buttons' middle;
        ``widths`` are the widgets' shares of the width."""
        row = Row(spacing=self.ctx.theme.sizes.spacing_px)
        shown = [w for w in widgets if w is not None]
        for n, widget in enumerate(shown):
            if n < len(widths):
                widget.size_hint_x = widths[n]
            row.add_widget(widget)
        return row

    def scrolled(self, widgets: Sequence[Widget | None]) -> ScrollView:
        """Content of any length (a guide, a list of loads): takes the rest of the page and
        scrolls when it must."""
        bar = self.ctx.theme.sizes.spacing_px // 2
        view = ScrollView(do_scroll_x=False, bar_width=bar, scroll_type=["bars", "content"])
        column = self.column(widgets)
        column.padding = (0, 0, bar * 3, 0)  # the bar never covers a mark at the right edge
        view.add_widget(column)
        return view

    def page(
        self,
        *widgets: Widget | None,
        fill: Widget | None = None,
        bottom: Sequence[Widget | None] = (),
        centre: bool = False,
    ) -> None:
        """The body: ``widgets`` from the top (or, with ``centre``, in the middle of the
        space), ``fill`` (or empty space) taking the rest of the height, then ``bottom`` (the
        page's buttons) along the bottom edge."""
        if centre:
            self.body.add_widget(Widget())
        for widget in widgets:
            if widget is not None:
                self.body.add_widget(widget)
        if fill is None:
            self.body.add_widget(Widget())
        elif fill.size_hint_y is None:  # a picture of its own height: centred in the space
            self.body.add_widget(Widget())
            self.body.add_widget(fill)
            self.body.add_widget(Widget())
        else:
            self.body.add_widget(fill)
        for widget in bottom:
            if widget is not None:
                self.body.add_widget(widget)


__all__ = [
    "ASK_STAFF",
    "BACK",
    "BACK_TO_MENU",
    "CANCEL",
    "FINISH",
    "Banner",
    "BarcodeHint",
    "CardHint",
    "DocumentHint",
    "HeroLabel",
    "PageScreen",
    "Row",
    "StatusMark",
    "act",
    "day",
    "hhmm",
]
