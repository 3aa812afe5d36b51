"""The demo's hot keys and its scripted journey (kiosk/demo.py). Kivy must be prepared first.

The script acts as the applicant would, through the session and the journeys' own methods (the
same calls the screens' buttons make), and through the simulators for the card reader, scanner
and lock board. After each step it waits for the journey to get there, lets the screen draw,
and saves a screenshot. It stops the app at the end, or at the first step that does not arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window

from kiosk.app import RunningKiosk
from kiosk.flows.home import JourneyKind, TileId

log = logging.getLogger(__name__)

STEP_TIMEOUT_S = 30.0
SETTLE_S = 0.4  # frames to draw the new state before the screenshot
POLL_S = 0.1


class HotKeys:
    def __init__(self, running: RunningKiosk, locker_demo: Any, booking_payload: str) -> None:
        self.running = running
        self.locker_demo = locker_demo
        self.booking_payload = booking_payload

    def bind(self) -> None:
        Window.bind(on_key_down=self._key)

    def _key(self, _window: Any, key: int, *_args: Any) -> bool:
        devices = self.running.kiosk.devices
        printer_sim = devices.printer.sim  # type: ignore[attr-defined]
        actions: dict[int, Callable[[], object]] = {
            282: lambda: devices.identity.present_card("citizen"),  # type: ignore[attr-defined]
            283: lambda: devices.identity.present_card("staff"),  # type: ignore[attr-defined]
            284: devices.identity.remove_card,  # type: ignore[attr-defined]
            285: lambda: devices.scanner.scan(self.booking_payload),  # type: ignore[attr-defined]
            286: printer_sim.pull_paper,
            287: printer_sim.load_paper,
            288: lambda: person_at_open_bay(self.locker_demo),
        }
        action = actions.get(key)  # F1..F7 are SDL key codes 282..288
        if action is None:
            return False
        action()
        return True


def person_at_open_bay(locker_demo: Any) -> None:
    """The applicant opens the unlocked bay, takes the certificate and shuts the door."""
    bays = locker_demo.client.call("status")["bays"]
    for bay in bays:
        channel = int(str(bay["bay_id"])[1:])
        if locker_demo.sim.pull_door(1, channel):
            locker_demo.sim.take_item(1, channel)
            locker_demo.sim.close_door(1, channel)
            return


@dataclass(frozen=True)
class Step:
    name: str  # also the screenshot's name
    act: Callable[[], object]
    arrived: Callable[[], bool]


class Script:
    def __init__(
        self, running: RunningKiosk, steps: list[Step], shots: Path, failures: list[str]
    ) -> None:
        self.running = running
        self.steps = steps
        self.shots = shots
        self.failures = failures
        self._index = -1
        self._waited_s = 0.0
        self._settled_s = 0.0
        self._event: Any = None

    def start(self) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self._next()
        self._event = Clock.schedule_interval(self._poll, POLL_S)

    def _next(self) -> None:
        self._index += 1
        self._waited_s = self._settled_s = 0.0
        if self._index >= len(self.steps):
            self._finish()
            return
        step = self.steps[self._index]
        log.info("demo step %s", step.name)
        step.act()

    def _poll(self, dt: float) -> None:
        if self._index >= len(self.steps):
            return
        step = self.steps[self._index]
        self._waited_s += dt
        if not step.arrived():
            if self._waited_s > STEP_TIMEOUT_S:
                self.failures.append(f"step {step.name!r} did not arrive")
                self._finish()
            return
        self._settled_s += dt
        if self._settled_s < SETTLE_S:
            return
        shell = self.running.app.shell
        assert shell is not None
        shell.export_to_png(str(self.shots / f"{self._index + 1:02d}-{step.name}.png"))
        print(f"[demo] {self._index + 1:02d} {step.name}", flush=True)
        self._next()

    def _finish(self) -> None:
        if self._event is not None:
            self._event.cancel()
        self._index = len(self.steps)
        self.running.app.stop()


def then(*calls: Callable[[], object]) -> Callable[[], None]:
    """One step's action made of several calls, in order."""

    def run() -> None:
        for call in calls:
            call()

    return run


def journey_steps(
    running: RunningKiosk, locker_demo: Any, seeded: Any, person: Callable[[], None]
) -> list[Step]:
    """Home, a ticket and its evaluation, English and 大字版, a check-in by ID card, a pickup
    with one wrong password, and the staff self-test."""
    session = running.kiosk.session
    devices = running.kiosk.devices
    reader: Any = devices.identity

    def journey() -> Any:
        return session.journey

    def state() -> str:
        current = journey()
        return "" if current is None else str(current.state)

    def at(kind: JourneyKind, *states: str) -> Callable[[], bool]:
        return lambda: session.active is kind and (not states or state() in states)

    def idle() -> bool:
        current = journey()
        return current is None or current.busy is None

    def settled(kind: JourneyKind, *states: str) -> Callable[[], bool]:
        ready = at(kind, *states)
        return lambda: ready() and idle()

    def ticket_area() -> None:
        flow = journey()
        flow.choose_area(flow.view.areas[0].area)

    def ticket_type() -> None:
        flow = journey()
        flow.choose_type(flow.view.types[0].category_id)

    def wrong_password() -> None:
        flow = journey()
        wrong = "000000" if seeded.password != "000000" else "111111"  # noqa: S105
        for digit in wrong:
            flow.press(digit)
        flow.confirm()

    def right_password() -> None:
        flow = journey()
        for digit in seeded.password:
            flow.press(digit)
        flow.confirm()

    def staff_pin() -> None:
        flow = journey()
        for digit in "123456":
            flow.press(digit)
        flow.confirm()

    def home() -> None:
        reader.remove_card()
        session.go_home()

    home_zh = at(JourneyKind.HOME)
    return [
        Step("home", lambda: None, home_zh),
        Step(
            "ticket-areas",
            lambda: session.start(TileId.TICKET),
            settled(JourneyKind.TICKET, "choose_area"),
        ),
        Step("ticket-types", ticket_area, settled(JourneyKind.TICKET, "choose_type")),
        Step("ticket-card", ticket_type, settled(JourneyKind.TICKET, "identify")),
        Step("ticket-done", lambda: journey().skip_card(), settled(JourneyKind.TICKET, "done")),
        Step("evaluation", lambda: journey().finish(), at(JourneyKind.EVALUATION)),
        Step(
            "evaluation-thanks",
            then(lambda: journey().choose_level(5), lambda: journey().submit()),
            settled(JourneyKind.EVALUATION, "thanks"),
        ),
        Step(
            "home-en",
            then(home, lambda: session.set_language("en")),
            lambda: home_zh() and session.language == "en",
        ),
        Step("home-elderly", lambda: session.set_elderly(True), lambda: session.elderly),
        Step(
            "checkin-identify",
            then(
                lambda: session.set_elderly(False),
                lambda: session.set_language("zh"),
                lambda: session.start(TileId.CHECKIN),
            ),
            settled(JourneyKind.CHECKIN, "identify"),
        ),
        Step(
            "checkin-done",
            lambda: reader.present_card("citizen"),
            settled(JourneyKind.CHECKIN, "done"),
        ),
        Step(
            "pickup-identify",
            then(home, lambda: session.start(TileId.PICKUP)),
            settled(JourneyKind.PICKUP, "identify"),
        ),
        Step(
            "pickup-password",
            lambda: reader.present_card("citizen"),
            settled(JourneyKind.PICKUP, "password"),
        ),
        Step(
            "pickup-wrong-password",
            wrong_password,
            lambda: (
                settled(JourneyKind.PICKUP, "password")()
                and journey().view.attempts_left is not None
            ),
        ),
        Step("pickup-open", right_password, settled(JourneyKind.PICKUP, "open")),
        Step("pickup-done", person, settled(JourneyKind.PICKUP, "done")),
        Step(
            "staff-pin",
            then(home, lambda: reader.present_card("staff")),
            settled(JourneyKind.STAFF, "pin"),
        ),
        Step("staff-menu", staff_pin, settled(JourneyKind.STAFF, "menu")),
        Step(
            "staff-self-test",
            lambda: journey().self_test(),
            settled(JourneyKind.STAFF, "self_test"),
        ),
        Step("home-again", then(lambda: journey().logout(), home), home_zh),
    ]
