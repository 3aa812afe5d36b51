"""``KioskApp``: the Kivy App around ``KioskShell``: window, fonts, context, periodic hooks and
the systemd watchdog. It knows no journeys; the caller gives it the screens and a ``start``
function (the router) that shows the first one.

Call ``configure_kivy(settings)`` before anything imports ``kivy.core.window`` (the entry
point does; see kiosk/ui/__main__.py), and ``prepare_kivy_env`` before anything imports kivy.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from kivy.app import App
from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.config import Config

from kiosk.ui.context import make_context
from kiosk.ui.fonts import register_default_font, resolve_fonts
from kiosk.ui.settings import UiSettings
from kiosk.ui.shell import KioskShell, ScreenFactory, ShellHooks, make_transition
from kiosk.watchdog import SdNotifier, watchdog_interval_s

log = logging.getLogger(__name__)


def configure_kivy(settings: UiSettings) -> None:
    """Kivy settings that must be in place before the window exists."""
    Config.set("graphics", "width", str(settings.window_width_px))
    Config.set("graphics", "height", str(settings.window_height_px))
    Config.set("graphics", "fullscreen", "auto" if settings.fullscreen else "0")
    Config.set("graphics", "resizable", "0")
    Config.set("kivy", "exit_on_escape", "0")  # a keyboard on the kiosk must not quit it


class KioskApp(App):  # type: ignore[misc]
    title = "hallkiosk"

    def __init__(
        self,
        settings: UiSettings,
        screens: Mapping[str, ScreenFactory],
        *,
        start: Callable[[KioskShell], None] | None = None,
        on_tick: Callable[[], object] | None = None,
        on_first_frame: Callable[[KioskShell], None] | None = None,
        hooks: ShellHooks | None = None,
        notifier: SdNotifier | None = None,
        env: Mapping[str, str] = os.environ,
        ready_at_first_frame: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._screens = dict(screens)
        self._start = start
        self._on_tick = on_tick
        self._on_first_frame = on_first_frame
        self._hooks = hooks or ShellHooks()
        self._env = env
        # False: the caller sends READY=1 itself, once it is really usable (kiosk/app.py)
        self._ready_at_first_frame = ready_at_first_frame
        self.notifier = notifier if notifier is not None else SdNotifier.from_env(env)
        self.shell: KioskShell | None = None
        self._stopped = False

    def build(self) -> KioskShell:
        EventLoop.ensure_window()  # created here, after configure_kivy
        window = EventLoop.window
        if not self.settings.fullscreen:
            window.size = (self.settings.window_width_px, self.settings.window_height_px)
        # never wait for the font cache: a first start uses the plain face (kiosk/ui/font_cache.py)
        register_default_font(resolve_fonts(self.settings, self._env, wait=False))
        ctx = make_context(self.settings)
        window.clearcolor = ctx.theme.palette.background
        self.shell = KioskShell(
            ctx,
            self._screens,
            transition=make_transition(self.settings.transition, self.settings.transition_s),
            on_language=self._hooks.on_language,
            on_elderly=self._hooks.on_elderly,
            on_more_time=self._hooks.on_more_time,
            on_touch=self._hooks.on_touch,
        )
        return self.shell

    def on_request_close(self, *_args: Any, **_kwargs: Any) -> bool:
        """A kiosk window is never closed from the window system (there is no close button
        an applicant could reach); systemd stops it with SIGTERM (``_on_signal``)."""
        log.warning("window close request ignored")
        return True

    def _on_signal(self, signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        Clock.schedule_once(lambda _dt: self.stop())

    def on_start(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        EventLoop.window.bind(on_request_close=self.on_request_close)
        shell = self._require_shell()
        if self._on_tick is not None:
            shell.every(self.settings.tick_interval_s, self._on_tick)
        ping_s = watchdog_interval_s(self._env)
        if ping_s is not None and self.notifier.enabled:
            shell.every(ping_s, self.notifier.ping)
        if self._start is not None:
            self._start(shell)
        EventLoop.window.bind(on_flip=self._first_flip)

    def _first_flip(self, window: Any) -> None:
        """The first frame showing the first screen rendered (READY=1 unless the caller
        sends it later)."""
        screen = self._require_shell().current
        if self._start is not None and (screen is None or screen.renders == 0):
            return
        window.unbind(on_flip=self._first_flip)
        if self._ready_at_first_frame:
            self.notifier.ready()
        if self._on_first_frame is not None:
            self._on_first_frame(self._require_shell())

    def on_stop(self) -> None:
        if self._stopped:
            return  # App.stop() and the end of run() both dispatch on_stop
        self._stopped = True
        if self.shell is not None:
            self.shell.stop()
        self.notifier.stopping()
        self.notifier.close()

    def _require_shell(self) -> KioskShell:
        if self.shell is None:
            raise RuntimeError("KioskApp.build has not run")
        return self.shell
