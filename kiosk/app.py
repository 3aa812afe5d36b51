"""The kiosk app: the assembled kiosk (kiosk/assembly.py) in a Kivy window.

    run(settings)                      # what systemd's kiosk.service runs (python -m kiosk)

Kivy must be prepared before it is imported (``kiosk.ui.kivy_env.prepare_kivy_env``): the
entry point (kiosk/__main__.py) does that and then imports this module.

Threads: devices and lockerd call back on their own threads; ``post`` moves each call onto the
Kivy main thread with ``Clock.schedule_once``. Jobs run on ``KivyWorker``'s pool and finish on
the main thread too. The session's idle tick and the systemd watchdog ping run from the Kivy
Clock, so a frozen UI stops pinging and systemd restarts it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from kivy.clock import Clock

from kiosk.assembly import Kiosk, assemble
from kiosk.i18n import Language, Translations
from kiosk.settings import KioskSettings
from kiosk.ui.app import KioskApp, configure_kivy
from kiosk.ui.router import SessionRouter
from kiosk.ui.screens.home import HomeScreen
from kiosk.ui.screens.out_of_service import OutOfServiceScreen
from kiosk.ui.shell import KioskShell, ScreenFactory, ShellHooks
from kiosk.ui.worker import KivyWorker

# one module per journey screen, each with a ``SCREENS`` mapping (name -> factory)
SCREEN_MODULES = ("ticket", "checkin", "status", "evaluation", "pickup", "staff", "prereview")


def all_screens() -> dict[str, ScreenFactory]:
    screens: dict[str, ScreenFactory] = {
        "home": HomeScreen,
        "out_of_service": OutOfServiceScreen,
    }
    for name in SCREEN_MODULES:
        module = importlib.import_module(f"kiosk.ui.screens.{name}")
        screens.update(module.SCREENS)
    return screens


def post_to_ui(call: Callable[[], None]) -> None:
    """Run ``call`` on the Kivy main thread (safe from any thread)."""
    Clock.schedule_once(lambda _dt: call())


@dataclass
class RunningKiosk:
    """The parts a demo or a test reaches into while the app runs."""

    kiosk: Kiosk
    worker: KivyWorker
    app: KioskApp
    router: list[SessionRouter] = field(default_factory=list)
    # Kivy's Clock and bindings hold bound methods weakly: helpers (the demo's script and hot
    # keys) live here for as long as the app runs
    keep: list[object] = field(default_factory=list)


def build_app(
    settings: KioskSettings,
    *,
    on_started: Callable[[RunningKiosk], None] | None = None,
    on_first_frame: Callable[[RunningKiosk], None] | None = None,
) -> RunningKiosk:
    ui = settings.kiosk.ui
    configure_kivy(ui)
    translations = Translations.load()
    worker = KivyWorker()
    kiosk = assemble(
        settings,
        worker,
        post_to_ui,
        translate=lambda text, lang: translations[Language.parse(lang)].text(text),
    )
    session = kiosk.session
    countdown_s = 15.0
    holder: list[RunningKiosk] = []

    def start(shell: KioskShell) -> None:
        router = SessionRouter(shell, session, countdown_s)
        holder[0].router.append(router)
        router.start()
        kiosk.start()
        if on_started is not None:
            on_started(holder[0])

    app = KioskApp(
        ui,
        all_screens(),
        start=start,
        on_first_frame=(lambda _shell: on_first_frame(holder[0])) if on_first_frame else None,
        on_tick=session.tick,
        hooks=ShellHooks(
            on_language=lambda lang: session.set_language("en" if lang is Language.EN else "zh"),
            on_elderly=session.set_elderly,
            on_more_time=session.more_time,
            on_touch=session.touched,
        ),
    )
    running = RunningKiosk(kiosk, worker, app)
    holder.append(running)
    return running


def run(settings: KioskSettings) -> int:
    running = build_app(settings)
    try:
        running.app.run()
    finally:
        running.kiosk.close()
        running.worker.close()
    return 0
