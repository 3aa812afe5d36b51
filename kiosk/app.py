"""The kiosk app: the assembled kiosk (kiosk/assembly.py) in a Kivy window.

    run(settings)                      # what systemd's kiosk.service runs (python -m kiosk)

Kivy must be prepared before it is imported (``kiosk.ui.kivy_env.prepare_kivy_env``): the
entry point (kiosk/__main__.py) does that and then imports this module.

Threads: devices and lockerd call back on their own threads; ``post`` moves each call onto the
Kivy main thread with ``Clock.schedule_once``. Jobs run on ``KivyWorker``'s pool and finish on
the main thread too. The session's idle tick and the systemd watchdog ping run from the Kivy
Clock, so a frozen UI stops pinging and systemd restarts it.

Start-up: the first frame shows the home page with the tiles the kiosk will offer
(``StartingHome``, kiosk/ui/starting.py), with only the first frame's part of the settings
checked (kiosk/start_settings.py); checking the rest, importing the journeys, drivers and the
hall and assembling them (kiosk/assembly.py) happens on the next frame. A tile, language or 大字版
touched in between is remembered and applied to the session when it exists. systemd hears
READY=1 only then. If the assembly fails, the page says so in plain words and the app exits
with status 1 after ``[kiosk.ui] start_failed_exit_s``, so systemd restarts it (kiosk.service).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kivy.clock import Clock

from kiosk.flows.tiles import JourneyKind, installed_journeys
from kiosk.i18n import Language, Translations
from kiosk.start_settings import StartSettings
from kiosk.ui.app import KioskApp, configure_kivy
from kiosk.ui.screens.home import HomeScreen
from kiosk.ui.screens.out_of_service import OutOfServiceScreen
from kiosk.ui.shell import KioskShell, ScreenFactory, ShellHooks
from kiosk.ui.starting import StartFailed, StartingHome, starting_tiles
from kiosk.ui.worker import KivyWorker

if TYPE_CHECKING:  # imported after the first frame (see "Start-up" above)
    from kiosk.assembly import Kiosk
    from kiosk.flows.base import Worker
    from kiosk.settings import KioskSettings
    from kiosk.ui.router import SessionRouter

log = logging.getLogger(__name__)

# one module per journey screen, each with a ``SCREENS`` mapping (name -> factory)
SCREEN_MODULES = ("ticket", "checkin", "status", "evaluation", "pickup", "staff", "prereview")
COUNTDOWN_S = 15.0


def session_screens() -> dict[str, ScreenFactory]:
    """The screens the first frame needs: home and out of service."""
    return {"home": HomeScreen, "out_of_service": OutOfServiceScreen}


def journey_screens() -> dict[str, ScreenFactory]:
    screens: dict[str, ScreenFactory] = {}
    for name in SCREEN_MODULES:
        module = importlib.import_module(f"kiosk.ui.screens.{name}")
        screens.update(module.SCREENS)
    return screens


def all_screens() -> dict[str, ScreenFactory]:
    return {**session_screens(), **journey_screens()}


def post_to_ui(call: Callable[[], None]) -> None:
    """Run ``call`` on the Kivy main thread (safe from any thread)."""
    Clock.schedule_once(lambda _dt: call())


class KioskStart:
    """The start-up in two steps (see "Start-up" above), apart from ``KioskApp`` so tests can
    drive it on a shell in the test window: ``show_starting`` for the first frame, then
    ``assemble`` on the next one. ``hooks`` are the shell's header and touch hooks, which
    go to ``StartingHome`` until the session exists. ``settings`` checked whole already, or
    only the first frame's part (kiosk/start_settings.py): the rest is checked in ``assemble``."""

    def __init__(
        self,
        settings: KioskSettings | StartSettings,
        worker: Worker,
        translations: Translations,
    ) -> None:
        if not isinstance(settings, StartSettings):
            settings = StartSettings.of(settings)
        self.settings = settings
        self.worker = worker
        self.translations = translations
        self.starting = StartingHome(starting_tiles(installed_journeys(locker=settings.has_locker)))
        self.shell: KioskShell | None = None
        self.kiosk: Kiosk | None = None
        self.failed: BaseException | None = None
        self.router: SessionRouter | None = None

    def hooks(self) -> ShellHooks:
        return ShellHooks(
            on_language=self._language,
            on_elderly=self._elderly,
            on_more_time=self._to_session("more_time"),
            on_touch=self._to_session("touched"),
        )

    def tick(self) -> None:
        self._to_session("tick")()

    def show_starting(self, shell: KioskShell) -> None:
        self.shell = shell
        shell.show("home", self.starting)

    def assemble(self) -> bool:
        """Build the kiosk and put its session on screen: True. False: the failure page is
        up and ``failed`` holds the error (the caller exits)."""
        shell = self.shell
        if shell is None:
            raise RuntimeError("show_starting first")
        try:
            from kiosk.assembly import assemble  # noqa: PLC0415 - journeys, drivers and hall

            translations = self.translations
            kiosk = assemble(
                self.settings.full(),
                self.worker,
                post_to_ui,
                translate=lambda text, lang: translations[Language.parse(lang)].text(text),
            )
            shell.add_screens(journey_screens())
        except Exception as exc:  # shown and exited on, never swallowed
            log.exception("the kiosk could not be assembled")
            self.failed = exc
            shell.show("out_of_service", StartFailed())
            return False
        from kiosk.ui.router import SessionRouter  # noqa: PLC0415 - imports the session

        self.kiosk = kiosk
        self._hand_over(kiosk)
        self.router = SessionRouter(shell, kiosk.session, COUNTDOWN_S)
        self.router.start()
        kiosk.start()
        return True

    def close(self) -> None:
        if self.kiosk is not None:
            self.kiosk.close()

    def _hand_over(self, kiosk: Kiosk) -> None:
        """What the applicant touched while the kiosk was starting, applied to the session."""
        session, starting = kiosk.session, self.starting
        if starting.language is not None:
            session.set_language("en" if starting.language is Language.EN else "zh")
        if starting.elderly is not None:
            session.set_elderly(starting.elderly)
        tile, starting.tile = starting.tile, None
        if tile is not None and session.active is JourneyKind.HOME:
            session.start(tile)

    def _language(self, lang: Language) -> None:
        if self.kiosk is not None:
            self.kiosk.session.set_language("en" if lang is Language.EN else "zh")
        elif self.shell is not None:
            self.starting.set_language(lang)
            self.shell.ctx.set_language(lang)

    def _elderly(self, on: bool) -> None:
        if self.kiosk is not None:
            self.kiosk.session.set_elderly(on)
        elif self.shell is not None:
            self.starting.set_elderly(on)
            self.shell.ctx.set_elderly(on)

    def _to_session(self, method: str) -> Callable[[], None]:
        def call() -> None:
            if self.kiosk is not None:
                getattr(self.kiosk.session, method)()

        return call


@dataclass
class RunningKiosk:
    """The parts a demo or a test reaches into while the app runs."""

    app: KioskApp
    start: KioskStart
    worker: KivyWorker
    # Kivy's Clock and bindings hold bound methods weakly: helpers (the demo's script and hot
    # keys) live here for as long as the app runs
    keep: list[object] = field(default_factory=list)

    @property
    def kiosk(self) -> Kiosk:
        if self.start.kiosk is None:
            raise RuntimeError("the kiosk is assembled after the first frame (see on_started)")
        return self.start.kiosk

    @property
    def failed(self) -> BaseException | None:
        return self.start.failed

    def close(self) -> None:
        self.start.close()
        self.worker.close()


def build_app(
    settings: KioskSettings | StartSettings,
    *,
    on_started: Callable[[RunningKiosk], None] | None = None,
    on_first_frame: Callable[[RunningKiosk], None] | None = None,
) -> RunningKiosk:
    """The app; ``on_first_frame`` runs at the first frame (the home page, still starting),
    ``on_started`` once the kiosk is assembled and its session is on screen."""
    worker = KivyWorker()
    start = KioskStart(settings, worker, Translations.load())
    ui = start.settings.ui
    configure_kivy(ui)
    holder: list[RunningKiosk] = []

    def first_frame(_shell: KioskShell) -> None:
        Clock.schedule_once(lambda _dt: assemble(), 0)
        if on_first_frame is not None:
            on_first_frame(holder[0])

    def assemble() -> None:
        if not start.assemble():
            Clock.schedule_once(lambda _dt: app.stop(), ui.start_failed_exit_s)
            return
        app.notifier.ready()
        if on_started is not None:
            on_started(holder[0])

    app = KioskApp(
        ui,
        session_screens(),
        start=start.show_starting,
        on_first_frame=first_frame,
        on_tick=start.tick,
        hooks=start.hooks(),
        ready_at_first_frame=False,
    )
    holder.append(RunningKiosk(app, start, worker))
    return holder[0]


def run(settings: KioskSettings | StartSettings) -> int:
    running = build_app(settings)
    try:
        running.app.run()
    finally:
        running.close()
    return 1 if running.failed is not None else 0
