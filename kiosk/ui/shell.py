"""``KioskShell``: the window's one root widget. A header with the language and elderly
switches, the screens (a ScreenManager), and the idle countdown strip.

Screens are made on first use from a registry (name -> factory), so start-up builds only the
first one. The router (kiosk/flows/session.py) drives it with ``show(name, flow)``; periodic
work (the session's idle tick, the watchdog ping) runs through ``every``, on the Kivy Clock.

When a journey ends and the home page (``rest_screen``) is back on screen, the shell lets go of
what the journey left in memory (``release_memory``, on the frame after the home page is drawn):
a full garbage collection frees the journey's widgets, their label surfaces and textures (under
Mesa's software renderer textures are process memory), and the freed C heap is handed back to
the system. Without it glibc keeps the freed blocks, and the kiosk's resident memory after its
first journeys stays ~20 MiB above what it uses.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import (
    FadeTransition,
    NoTransition,
    ScreenManager,
    SlideTransition,
    TransitionBase,
)

from kiosk.flows.base import Msg
from kiosk.i18n import Language
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen, Observable
from kiosk.ui.widgets import ElderlyToggle, IdleCountdown, LanguageToggle, TextLabel

ScreenFactory = Callable[[UiContext], FlowScreen[Any]]
Cancel = Callable[[], None]


@dataclass(frozen=True)
class ShellHooks:
    """Where the shell's own controls report to (the session, once wired). Left out: the
    language and elderly switches change the context directly, "more time" does nothing."""

    on_language: Callable[[Language], None] | None = None
    on_elderly: Callable[[bool], None] | None = None
    on_more_time: Callable[[], None] | None = None
    on_touch: Callable[[], None] | None = None  # every touch (the idle timer restarts)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_memory() -> bool:
    """Free unreachable objects (Kivy widgets form reference cycles: only a full collection
    frees them, with their textures) and return the C heap's free pages to the system
    (``malloc_trim(0)``). True if the heap was trimmed (False without glibc)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def make_transition(kind: str, duration_s: float) -> TransitionBase:
    if kind == "slide":
        return SlideTransition(duration=duration_s)
    if kind == "fade":
        return FadeTransition(duration=duration_s)
    return NoTransition()


class KioskShell(BoxLayout):  # type: ignore[misc]
    def __init__(
        self,
        ctx: UiContext,
        screens: Mapping[str, ScreenFactory],
        *,
        transition: TransitionBase | None = None,
        on_language: Callable[[Language], None] | None = None,
        on_elderly: Callable[[bool], None] | None = None,
        on_more_time: Callable[[], None] | None = None,
        on_touch: Callable[[], None] | None = None,
        rest_screen: str | None = "home",
        **kwargs: Any,
    ) -> None:
        super().__init__(orientation="vertical", **kwargs)
        self.ctx = ctx
        self._on_touch = on_touch
        # the screen between applicants: coming back to it releases the journey's memory
        self.rest_screen = rest_screen
        self.releases = 0  # how many times release_memory ran (tests read it)
        self._release_pending = False
        self._factories = dict(screens)
        self._timers: list[Any] = []
        self.header = BoxLayout(size_hint_y=None)
        self.title = TextLabel(ctx, Msg("24-hour self-service"), colour="on_header", halign="left")
        self.elderly_toggle = ElderlyToggle(ctx, on_elderly or ctx.set_elderly, fit_width=True)
        self.language_toggle = LanguageToggle(ctx, on_language or ctx.set_language, fit_width=True)
        for widget in (self.title, self.elderly_toggle, self.language_toggle):
            self.header.add_widget(widget)
        self.manager = ScreenManager(transition=transition or NoTransition())
        self.idle = IdleCountdown(ctx, on_more_time or (lambda: None))
        for widget in (self.header, self.manager, self.idle):
            self.add_widget(widget)
        with self.canvas.before:
            self._background_colour = Color()
            self._background = Rectangle()
        with self.header.canvas.before:
            self._header_colour = Color()
            self._header_rect = Rectangle()
        self.bind(pos=self._draw, size=self._draw)
        self.header.bind(pos=self._draw, size=self._draw)
        for toggle in (self.elderly_toggle, self.language_toggle):
            toggle.bind(height=self._draw)
        ctx.bind(revision=self._draw)
        self._draw()

    def _draw(self, *_args: Any) -> None:
        theme = self.ctx.theme
        vertical_padding_px = theme.sizes.spacing_px // 2
        self.header.padding = (theme.sizes.padding_px, vertical_padding_px)
        tallest = max(self.elderly_toggle.height, self.language_toggle.height)
        self.header.height = max(theme.sizes.header_height_px, tallest + 2 * vertical_padding_px)
        self.header.spacing = theme.sizes.spacing_px
        self._background_colour.rgba = theme.palette.background
        self._background.pos, self._background.size = self.pos, self.size
        self._header_colour.rgba = theme.palette.header
        self._header_rect.pos, self._header_rect.size = self.header.pos, self.header.size

    def on_touch_down(self, touch: Any) -> bool:
        if self._on_touch is not None:
            self._on_touch()  # the session's idle timer restarts on every touch
        return bool(super().on_touch_down(touch))

    # -- screens -------------------------------------------------------------------------------

    def add_screens(self, screens: Mapping[str, ScreenFactory]) -> None:
        """Register more screens (the journeys', once the kiosk is assembled)."""
        self._factories.update(screens)

    @property
    def names(self) -> list[str]:
        return list(self._factories)

    def screen(self, name: str) -> FlowScreen[Any]:
        """The screen called ``name``, made on first use."""
        if self.manager.has_screen(name):
            return self.manager.get_screen(name)  # type: ignore[no-any-return]
        if name not in self._factories:
            raise KeyError(f"no screen {name!r}; registered: {', '.join(self._factories)}")
        screen = self._factories[name](self.ctx)
        screen.name = name
        self.manager.add_widget(screen)
        return screen

    def show(self, name: str, flow: Observable) -> FlowScreen[Any]:
        screen = self.screen(name)
        screen.attach(flow)
        previous = self.manager.current
        self.manager.current = name
        if name == self.rest_screen and previous and previous != name:
            self._release_when_drawn()
        return screen

    # -- memory between journeys ---------------------------------------------------------------

    def _release_when_drawn(self) -> None:
        """Run ``release_memory`` on the frame after the rest screen is drawn (its transition
        over, the journey screen left), so the home page shows without waiting for it."""
        if self._release_pending:
            return
        self._release_pending = True
        window = EventLoop.window
        if window is None:
            Clock.schedule_once(self._release)
        else:
            window.bind(on_flip=self._on_flip)

    def _on_flip(self, window: Any) -> None:
        if self.manager.transition.is_active:
            return  # the journey's screen has not been left yet
        window.unbind(on_flip=self._on_flip)
        Clock.schedule_once(self._release)

    def _release(self, _dt: float) -> None:
        self._release_pending = False
        if self.manager.current != self.rest_screen:
            return  # the next applicant is already on a journey: not now
        release_memory()
        self.releases += 1

    @property
    def current(self) -> FlowScreen[Any] | None:
        return self.manager.current_screen  # type: ignore[no-any-return]

    # -- periodic work -------------------------------------------------------------------------

    def every(self, interval_s: float, callback: Callable[[], object]) -> Cancel:
        """Run ``callback()`` every ``interval_s`` on the Kivy main thread until cancelled or
        ``stop()``. A UI frozen on that thread runs none (the watchdog relies on this)."""
        # the Clock holds a bound method only weakly: this closure keeps ``callback`` alive
        event = Clock.schedule_interval(lambda _dt: callback(), interval_s)
        self._timers.append(event)

        def cancel() -> None:
            event.cancel()
            if event in self._timers:
                self._timers.remove(event)

        return cancel

    def stop(self) -> None:
        window = EventLoop.window
        if self._release_pending and window is not None:
            window.unbind(on_flip=self._on_flip)
        self._release_pending = False
        for event in self._timers:
            event.cancel()
        self._timers.clear()
        for screen in self.manager.screens:
            screen.detach()
