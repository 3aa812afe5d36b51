"""``SessionRouter``: keeps the window in step with the session (kiosk/flows/session.py).

The session says which journey is active; the router shows it on the screen of the same name
(``JourneyKind`` values), or the session itself on ``home`` and ``out_of_service``. It keeps the
UI context's language and mode equal to the session's (the session resets them for the next
person), drives the idle countdown strip, and shows the session's own notices (a card on a page
that takes none, a code the scanner could not read) over the journey's screen.

It runs only on the Kivy main thread: the session may change from a device callback posted
there, or from a job's ``done``, and each change only pulls a Clock trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.clock import Clock

from kiosk.flows.base import Notice, Text
from kiosk.flows.session import KioskSession
from kiosk.i18n import Language
from kiosk.ui.shell import KioskShell

SESSION_SCREENS = ("home", "out_of_service")


class JourneyOnScreen:
    """What a journey screen binds to: the journey, with the session's notice merged in.

    Screens read the journey's state, view and methods through it unchanged; ``notice`` is the
    journey's own, else the session's, and dismissing clears both.
    """

    def __init__(self, session: KioskSession, journey: Any) -> None:
        self._session = session
        self._journey = journey

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journey, name)

    @property
    def journey(self) -> Any:
        return self._journey

    @property
    def notice(self) -> Notice | None:
        own: Notice | None = getattr(self._journey, "notice", None)
        return own if own is not None else self._session.notice

    @property
    def busy(self) -> Text | None:
        return getattr(self._journey, "busy", None)

    def dismiss_notice(self) -> None:
        if getattr(self._journey, "notice", None) is not None:
            self._journey.dismiss_notice()
        if self._session.notice is not None:
            self._session.dismiss_notice()

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        off_journey = self._journey.subscribe(lambda _j: listener(self))
        off_session = self._session.subscribe(lambda _s: listener(self))

        def off() -> None:
            off_journey()
            off_session()

        return off


class SessionRouter:
    def __init__(self, shell: KioskShell, session: KioskSession, countdown_s: float) -> None:
        self.shell = shell
        self.session = session
        self.countdown_s = countdown_s
        self._shown: tuple[str, Any] | None = None
        self._trigger = Clock.create_trigger(self._sync)
        session.subscribe(lambda _s: self._trigger())

    def start(self) -> None:
        self._sync(0.0)

    def _sync(self, _dt: float) -> None:
        session, shell = self.session, self.shell
        language = Language.parse(session.language)
        if shell.ctx.lang is not language:
            shell.ctx.set_language(language)
        if shell.ctx.elderly != session.elderly:
            shell.ctx.set_elderly(session.elderly)
        name = session.active.value
        journey = session.journey
        if self._shown is None or self._shown[0] != name or self._shown[1] is not journey:
            target: Any = session if journey is None else JourneyOnScreen(session, journey)
            shell.show(name, target)
            self._shown = (name, journey)
        if session.countdown_visible:
            shell.idle.show(session.seconds_left, self.countdown_s)
        else:
            shell.idle.hide()
