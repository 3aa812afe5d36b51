"""What the ticket, check-in, status and evaluation screens share: a page made of a heading,
content, a spacer and a row of big navigation buttons at the bottom (``JourneyScreen.page``),
built again whenever what it shows changes (``page_key``); a language switch only re-translates.

The screens hold no rules. They read the flow's state and view, lay out one page for it and
wire each button to one flow method (through ``act``). Texts go through ``PageLabel``, which
breaks lines as Chinese is typeset, and a ticket number through ``HeroLabel``. Two things here
are only about drawing:

- ``reason``: a flow tells why it stopped (printer out of paper, the hall's quota text) as a
  ``notice``, which the applicant dismisses with OK. The page under it keeps saying why, so an
  elderly applicant who pressed OK still reads it. The text is kept only while the flow stays
  in that state, and never holds personal data (it is the printer's or the hall's message).
- ``detach`` empties the page: nothing a journey showed stays in the widget tree after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.flows.base import FlowStateError, Msg, Notice, Text
from kiosk.flows.tiles import WHERE_INSTEAD
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen, Observable
from kiosk.ui.theme import FontRole
from kiosk.ui.widgets import KioskButton, TextLabel, plain
from kiosk.ui.widgets.buttons import HeightRole, Style
from kiosk.ui.widgets.layouts import FitBox, FitGrid
from kiosk.ui.widgets.text import Colour

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Observable)

HERO_SCALE = 3.0  # the ticket number: three times the keypad display size
SLACK_PX = 2  # kept free at the end of a line, against rounding between measure and draw
BACK = Msg("Back")
HOME = Msg("Home")
DONE = Msg("Done")


def act(method: Callable[..., object], *args: Any) -> Callable[..., None]:
    """A touch handler that calls one flow method with ``args`` (and whatever the widget
    passes, e.g. a keypad's digit). A touch on a button the flow has already moved past (two
    taps inside one frame, before the page was redrawn) is a no-op, logged: a flow's
    ``FlowStateError`` must never reach the Kivy loop."""

    def tap(*more: Any) -> None:
        try:
            method(*args, *more)
        except FlowStateError as exc:
            log.warning("touch ignored, the page was out of date: %s", exc)

    return tap


# 避头尾: what may not start a line (closing punctuation) and what may not end one (openers)
NO_LINE_START = frozenset("。，、；：？！）》」』】〉〕”’．…—～·%,.;:?!)]}")
NO_LINE_END = frozenset("（《「『【〈〔“‘([{")


def _latin(char: str) -> bool:
    return char.isascii() and not char.isspace()


def line_units(text: str) -> list[str]:
    """Pieces a line may break between: a Latin word with its trailing spaces, or one Chinese
    character; closing punctuation sticks to what precedes it, an opener to what follows."""
    units: list[str] = []
    for char in text:
        if units and (
            char in NO_LINE_START
            or char.isspace()
            or units[-1][-1] in NO_LINE_END
            or (_latin(char) and _latin(units[-1][-1]))
        ):
            units[-1] += char
        else:
            units.append(char)
    return units


def break_lines(text: str, width: float, measure: Callable[[str], float]) -> str:
    """``text`` with a newline wherever a line must break to fit ``width``: greedy, between
    ``line_units``, spaces at a break dropped. A unit wider than a line gets a line of its
    own (the label then splits it, and the overflow check in the tests reports a Latin one)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for unit in line_units(paragraph):
            if line and measure((line + unit).rstrip()) > width:
                lines.append(line.rstrip())
                line = unit
            else:
                line += unit
        lines.append(line.rstrip())
    return "\n".join(lines)


class PageLabel(TextLabel):
    """A ``TextLabel`` that breaks its lines the way Chinese is typeset: no line starts with
    "。" or "，" and none ends with "（". Kivy wraps Chinese wherever the width runs out, which
    leaves a lone "。" on the last line of many sentences; this sets the breaks itself (the
    text shown is the same, with newlines). Used for every text of these pages."""

    def __init__(self, ctx: UiContext, source: Text | None = None, **kwargs: Any) -> None:
        super().__init__(ctx, source, **kwargs)
        self.bind(width=self._break)

    def refresh(self, *args: Any) -> None:
        super().refresh(*args)
        self._break()

    def _break(self, *_args: Any) -> None:
        if self.source is None or self.fit_width:
            return
        text = self.ctx.text(self.source)
        left, _top, right, _bottom = self.padding
        width = self.width - left - right - SLACK_PX
        if width <= 0:
            self.text = text
            return
        core = self._label
        core.resolve_font_name()
        self.text = break_lines(text, width, lambda part: float(core.get_extents(part)[0]))


class HeroLabel(TextLabel):
    """A ticket number, in type several times the biggest theme size, bold."""

    def refresh(self, *args: Any) -> None:
        super().refresh(*args)
        self.bold = True
        self.font_size = round(self.ctx.theme.sizes.font_display_px * HERO_SCALE)


class JourneyScreen(FlowScreen[F]):
    """A ``FlowScreen`` whose ``render`` lays out one whole page with ``page``."""

    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self._reason: tuple[str, Text] | None = None
        self._built: object = None  # the page_key of the page on screen

    # -- binding -------------------------------------------------------------------------------

    def attach(self, flow: F) -> None:
        self._reason = None
        self._built = None
        super().attach(flow)

    def detach(self) -> None:
        super().detach()
        self._reason = None
        self._built = None
        self.body.clear_widgets()  # the last journey's page goes with it

    # -- rendering -----------------------------------------------------------------------------

    def render(self, flow: F) -> None:
        key = self.page_key(flow)
        if key == self._built:
            return  # the same page: its widgets follow a language switch on their own
        self._built = key
        self.build(flow)

    def page_key(self, flow: F) -> object:
        """What the page is built from. A render with an equal key (a busy box coming and
        going, a language switch) leaves the page as it is; any other change rebuilds it."""
        return (
            getattr(flow, "state", None),
            getattr(flow, "view", None),
            getattr(flow, "prompt", None),
            getattr(flow, "notice", None),
            self.ctx.elderly,  # columns and page sizes differ
        )

    def build(self, flow: F) -> None:
        """Lay out the page for ``flow``'s state with ``page``."""
        raise NotImplementedError

    def reason(self, flow: Any, state: str) -> Text | None:
        """Why the flow stopped in ``state``: its notice now, or the one it gave on entering
        ``state`` (dismissed since)."""
        notice: Notice | None = getattr(flow, "notice", None)
        if notice is not None:
            self._reason = (state, notice.text)
        if self._reason is not None and self._reason[0] == state:
            return self._reason[1]
        return None

    # -- building blocks ---------------------------------------------------------------------

    def title(self, text: Text | None) -> PageLabel:
        return PageLabel(self.ctx, text, role="title", fit_height=True)

    def line(
        self,
        text: Text | None,
        role: FontRole = "body",
        colour: Colour = "text",
        halign: str = "center",
    ) -> PageLabel:
        return PageLabel(self.ctx, text, role=role, colour=colour, fit_height=True, halign=halign)

    def hero(self, value: str) -> HeroLabel:
        return HeroLabel(self.ctx, plain(value), role="display", fit_height=True)

    def button(
        self,
        text: Text,
        on_tap: Callable[[], None],
        style: Style = "primary",
        *,
        role: FontRole = "tile",
        height_role: HeightRole = "key",
    ) -> KioskButton:
        """A main action: big type, at least the keypad's key height."""
        return KioskButton(self.ctx, text, on_tap, style, role=role, height_role=height_role)

    def nav(self, *buttons: KioskButton) -> FitBox:
        """The bottom row: Back / Home / Done, side by side, each as wide as the others."""
        row = FitBox(orientation="horizontal", spacing=self.ctx.theme.sizes.spacing_px)
        for button in buttons:
            row.add_widget(button)
        return row

    def nav_button(
        self, text: Text, on_tap: Callable[[], None], style: Style = "secondary"
    ) -> KioskButton:
        return KioskButton(self.ctx, text, on_tap, style, role="body", height_role="key")

    def grid(self, widgets: Sequence[Widget], columns: int | None = None) -> FitGrid:
        sizes = self.ctx.theme.sizes
        grid = FitGrid(cols=columns or sizes.tile_columns, spacing=sizes.spacing_px)
        for widget in widgets:
            grid.add_widget(widget)
        return grid

    def column(self, widgets: Sequence[Widget]) -> FitBox:
        box = FitBox(orientation="vertical", spacing=self.ctx.theme.sizes.spacing_px)
        for widget in widgets:
            box.add_widget(widget)
        return box

    def scrolled(self, widgets: Sequence[Widget]) -> ScrollView:
        """Content of any length from the hall (a returned submission's items): it takes the
        rest of the page and scrolls if it must."""
        view = ScrollView(do_scroll_x=False, bar_width=self.ctx.theme.sizes.spacing_px)
        view.add_widget(self.column(widgets))
        return view

    def page(
        self,
        *widgets: Widget | None,
        nav: Sequence[KioskButton] = (),
        fill: Widget | None = None,
    ) -> None:
        """Replace the body: ``widgets`` from the top, ``fill`` (or empty space) taking the
        rest of the height, the ``nav`` buttons along the bottom."""
        self.body.clear_widgets()
        for widget in widgets:
            if widget is not None:
                self.body.add_widget(widget)
        self.body.add_widget(fill if fill is not None else Widget())
        if nav:
            self.body.add_widget(self.nav(*nav))


def main_actions(screen: JourneyScreen[Any], *buttons: KioskButton) -> FitBox:
    """The page's choices, one under the other, full width."""
    return screen.column(buttons)


__all__ = [
    "BACK",
    "DONE",
    "HOME",
    "WHERE_INSTEAD",
    "HeroLabel",
    "JourneyScreen",
    "PageLabel",
    "act",
    "break_lines",
    "main_actions",
]
