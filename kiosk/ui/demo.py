"""A small stand-in for the session, to run the UI shell without the real journeys: the home
page, a password journey with a keypad, a job and a notice, and out of service.

``python -m kiosk.ui`` shows it in a window; ``kiosk.ui.bench_target`` walks through it for the
start-up benchmark. When the real session is wired in (kiosk/flows/session.py), the entry point
builds that instead and this module stays for screen authors to try widgets on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kivy.uix.widget import Widget

from kiosk.flows.base import Flow, Msg, Notice, Outcome, Text, Worker
from kiosk.flows.keypad import Keypad as KeypadModel
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen
from kiosk.ui.screens.home import HomeScreen
from kiosk.ui.screens.out_of_service import OutOfServiceScreen
from kiosk.ui.shell import KioskShell, ScreenFactory
from kiosk.ui.widgets import Keypad, KioskButton, TextLabel

DEMO_PASSWORD = "123456"  # noqa: S105 - the demo journey's, not a secret


class TileId(StrEnum):  # the session's (kiosk.flows.home), without loading the journeys
    TICKET = "ticket"
    CHECKIN = "checkin"
    PREREVIEW = "prereview"
    STATUS = "status"
    PICKUP = "pickup"


@dataclass(frozen=True)
class HomeTile:
    id: TileId
    title: Text
    enabled: bool = True
    reason: Text | None = None


TILES = (
    HomeTile(TileId.TICKET, Msg("Take a queue ticket")),
    HomeTile(TileId.CHECKIN, Msg("Appointment check-in")),
    HomeTile(TileId.PREREVIEW, Msg("Online pre-review")),
    HomeTile(TileId.STATUS, Msg("Case status")),
    HomeTile(TileId.PICKUP, Msg("Collect a certificate")),
)


class DemoHome:
    """The session's home page, reduced to tiles and a callback."""

    def __init__(self, on_start: Callable[[TileId], None]) -> None:
        self._on_start = on_start
        self._listeners: list[Callable[[Any], None]] = []
        self.out_of_service_reason: Text | None = Msg("The ticket printer is out of paper.")
        self.where_instead: Text | None = Msg(
            "Please go to the service counter, or use another self-service kiosk."
        )

    @property
    def tiles(self) -> tuple[HomeTile, ...]:
        return TILES

    def start(self, tile: TileId) -> None:
        self._on_start(tile)

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)


class PinState(StrEnum):
    ENTERING = "entering"
    DONE = "done"


class DemoPinFlow(Flow[PinState]):
    name = "demo-pin"

    def __init__(self, worker: Worker, on_done: Callable[[], None]) -> None:
        super().__init__(worker, PinState.ENTERING)
        self.keypad = KeypadModel(len(DEMO_PASSWORD), secret=True)
        self._on_done = on_done

    def press(self, digit: str) -> None:
        if self.keypad.press(digit):
            self._changed()

    def delete(self) -> None:
        self.keypad.delete()
        self._changed()

    def confirm(self) -> None:
        self._require(PinState.ENTERING)
        password = self.keypad.take()
        self._job(Msg("Checking the password…"), lambda: password == DEMO_PASSWORD, self._checked)

    def _checked(self, outcome: Outcome[bool]) -> None:
        if outcome.ok and outcome.value:
            self._go(PinState.DONE)
            self._on_done()
        else:
            self._notify(Notice(Msg("The password is wrong. Please try again."), "wrong"))

    def wipe(self) -> None:
        self.keypad.clear()
        super().wipe()


class PinScreen(FlowScreen[DemoPinFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.prompt = TextLabel(
            ctx, Msg("Please enter the 6-digit pickup password."), role="title", fit_height=True
        )
        self.keypad: Keypad | None = None
        self.back: KioskButton | None = None

    def render(self, flow: DemoPinFlow) -> None:
        if self.keypad is None or self.keypad.parent is None:
            self.body.clear_widgets()
            self.keypad = Keypad(self.ctx, flow.press, flow.delete, flow.confirm)
            self.body.add_widget(self.prompt)
            self.body.add_widget(self.keypad)
            self.body.add_widget(Widget())  # the rest of the height, below the keypad
        self.keypad.show(flow.keypad.display, can_confirm=flow.keypad.complete)

    def attach(self, flow: DemoPinFlow) -> None:
        self.keypad = None  # its callbacks belong to the previous flow
        super().attach(flow)


def demo_screens() -> dict[str, ScreenFactory]:
    return {"home": HomeScreen, "pin": PinScreen, "out_of_service": OutOfServiceScreen}


class DemoRouter:
    """Plays the session: home -> (pickup) password -> home; (any other tile) out of
    service -> home on the next tap of the language switch."""

    def __init__(self, shell: KioskShell, worker: Worker) -> None:
        self.shell = shell
        self.worker = worker
        self.home = DemoHome(self._start)
        self.pin: DemoPinFlow | None = None

    def go_home(self) -> None:
        if self.pin is not None:
            self.pin.wipe()
            self.pin = None
        self.shell.idle.hide()
        self.shell.show("home", self.home)

    def _start(self, tile: TileId) -> None:
        if tile is TileId.PICKUP:
            self.pin = DemoPinFlow(self.worker, self.go_home)
            self.shell.show("pin", self.pin)
        else:
            self.shell.show("out_of_service", self.home)
