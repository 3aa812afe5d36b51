"""The kiosk assembled from its settings, without the screen: devices reach the session only
through ``post`` (the UI thread in the app, the test's thread here), and what staff must know
reaches the hall as alarms.

Everything is real: the embedded hall, the simulated card reader, scanner and printer from the
packaged defaults, and lockerd in process on a real socket with the board simulator.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.identity import SimSettings
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.vcard.cards import CitizenCard
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.scanner.formats import make_booking_code, make_booking_payload
from hallkiosk.privacy import IdentityHasher
from kiosk.assembly import Kiosk, assemble
from kiosk.flows.base import Bilingual, QueueWorker
from kiosk.flows.home import Component, JourneyKind, TileId
from kiosk.flows.pickup import PickupState
from kiosk.flows.ticket import TicketState
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.locker_fixtures import (
    close_door,
    id_number,
    load,
    open_door,
    running_lockerd,
)

WAIT_S = 10.0


class UiThread:
    """Plays the Kivy main thread: ``post`` queues, ``run_until`` runs what was posted."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.ran_on: set[str] = set()

    def post(self, call: Callable[[], None]) -> None:
        self.calls.put(call)

    def run_until(self, done: Callable[[], bool], what: str) -> None:
        def step() -> bool:
            while not self.calls.empty():
                self.calls.get()()
                self.ran_on.add(threading.current_thread().name)
            return done()

        wait_until(step, timeout_s=WAIT_S, what=what)


def write_site(directory: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(directory))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n" + extra
    )
    return site


@pytest.fixture
def ui() -> UiThread:
    return UiThread()


@pytest.fixture
def worker() -> Iterator[QueueWorker]:
    made = QueueWorker()
    yield made
    made.close()


@pytest.fixture
def kiosk(tmp_path: Path, ui: UiThread, worker: QueueWorker) -> Iterator[Kiosk]:
    made = assemble(load_kiosk_settings([write_site(tmp_path)]), worker, ui.post)
    made.start()
    try:
        yield made
    finally:
        made.close()


def hall_alarms(kiosk: Kiosk) -> set[tuple[str, str]]:
    hall = kiosk.runtime.embedded_hall
    assert hall is not None
    rows = hall.store.all("SELECT code, subject FROM alarms WHERE state = 'active'")
    return {(r["code"], r["subject"]) for r in rows}


def test_a_card_and_a_scan_reach_the_session_only_through_the_ui_thread(
    kiosk: Kiosk, ui: UiThread
) -> None:
    reader = kiosk.devices.identity
    reader.present_card(CitizenCard(PcscSettings().citizen, id_number(7), "张小三"))  # type: ignore[attr-defined]
    # on home a card alone starts nothing: the applicant is told to choose a service first
    ui.run_until(lambda: kiosk.session.notice is not None, "the card's notice")
    assert kiosk.session.notice is not None and kiosk.session.notice.code == "choose_first"
    # a booking QR scanned on home starts the check-in with that code
    code = make_booking_code("20261123001")
    kiosk.devices.scanner.scan(make_booking_payload(code))  # type: ignore[attr-defined]
    ui.run_until(lambda: kiosk.session.active is JourneyKind.CHECKIN, "check-in started")
    assert ui.ran_on == {threading.current_thread().name}


def test_a_code_the_scanner_refuses_is_a_plain_notice_and_nothing_starts(
    kiosk: Kiosk, ui: UiThread
) -> None:
    kiosk.devices.scanner.scan("not a code we know")  # type: ignore[attr-defined]
    ui.run_until(lambda: kiosk.session.notice is not None, "the refusal")
    notice = kiosk.session.notice
    assert notice is not None and "cannot be read" in str(notice.text)
    assert kiosk.session.active is JourneyKind.HOME


def test_paper_out_disables_tickets_and_a_failed_print_raises_an_alarm_at_the_hall(
    kiosk: Kiosk, ui: UiThread, worker: QueueWorker
) -> None:
    sim = kiosk.devices.printer.sim  # type: ignore[attr-defined]
    session = kiosk.session
    session.start(TileId.TICKET)
    worker.pump()
    flow = session.journey
    ticket_flow = flow
    assert ticket_flow is not None and ticket_flow.state is TicketState.CHOOSE_AREA  # type: ignore[attr-defined]
    ticket_flow.choose_area(ticket_flow.view.areas[0].area)  # type: ignore[attr-defined]
    ticket_flow.choose_type(ticket_flow.view.types[0].category_id)  # type: ignore[attr-defined]
    sim.run_out_after(0)  # the paper ends during this ticket
    ticket_flow.skip_card()  # type: ignore[attr-defined]
    worker.pump()
    assert ticket_flow.state is TicketState.PRINT_FAILED  # type: ignore[attr-defined]
    alarms = hall_alarms(kiosk)
    assert any(code == "ticket_not_printed" for code, _ in alarms), alarms
    # the health check sees the printer out of paper: the ticket tile is switched off
    ui.run_until(lambda: Component.PRINTER in session.faults, "printer fault")
    session.go_home()
    tile = next(t for t in session.tiles if t.id is TileId.TICKET)
    assert not tile.enabled and tile.reason is not None
    sim.load_paper()
    ui.run_until(lambda: Component.PRINTER not in session.faults, "printer recovered")


def test_the_ops_lock_reaches_the_session_through_the_ui_thread_and_the_hall_gets_the_health(
    kiosk: Kiosk, ui: UiThread
) -> None:
    """The command worker's side of the ops lock (runtime.ops_lock) is applied to the session
    by a post; the hall's registry gets the devices' health and the session's state."""
    hall = kiosk.runtime.embedded_hall
    assert hall is not None
    session = kiosk.session

    def latest() -> dict[str, object]:
        history = hall.registry.telemetry_history("kiosk-01", "kiosk", limit=1)
        return history[0]["metrics"] if history else {}

    ui.run_until(lambda: latest().get("printer_paper") == "ok", "a snapshot with the devices")
    assert latest()["out_of_service"] is False and latest()["lockerd_reachable"] is None
    kiosk.devices.printer.sim.pull_paper()  # type: ignore[attr-defined]
    ui.run_until(lambda: latest().get("printer_paper") == "out", "paper out reported")
    assert Component.PRINTER in session.faults  # the screen and the hall agree

    reason = Bilingual("设备维护", "Maintenance")
    kiosk.runtime.ops_lock.lock(reason, None, "cmd-test")  # as the command worker does
    assert session.active is JourneyKind.HOME  # nothing until the UI thread runs the post
    ui.run_until(lambda: session.active is JourneyKind.OUT_OF_SERVICE, "locked")
    assert session.out_of_service_reason == reason
    ui.run_until(lambda: latest().get("out_of_service") is True, "out of service reported")
    assert latest()["ops_locked"] is True
    kiosk.runtime.ops_lock.unlock("cmd-test-2")
    ui.run_until(lambda: session.active is JourneyKind.HOME, "unlocked")
    assert ui.ran_on == {threading.current_thread().name}


def test_a_pickup_gets_the_card_and_the_door_events_through_the_ui_thread(
    tmp_path: Path, ui: UiThread, worker: QueueWorker, lockboard_sim: LockboardSimFactory
) -> None:
    (tmp_path / "locker").mkdir()
    with running_lockerd(tmp_path / "locker", lockboard_sim) as locker:
        socket_path = json.dumps(str(locker.settings.socket_path))
        extra = f"[kiosk.locker]\nenabled = true\nsocket_path = {socket_path}\n"
        kiosk = assemble(
            load_kiosk_settings([write_site(tmp_path / "kiosk", extra)]), worker, ui.post
        )
        kiosk.start()
        try:
            # the clerk loads a certificate for the applicant (hashed with the kiosk's key)
            hasher = IdentityHasher.from_file(kiosk.settings.identity_key_path)
            applicant = SimIdentityReader(SimSettings(), PcscSettings(), hasher)
            card = CitizenCard(PcscSettings().citizen, id_number(8), "李小四")
            applicant.present_card(card)
            identity = applicant.read(timeout_s=2.0)
            _deposit, bay, password = load(locker, identity)

            kiosk.session.start(TileId.PICKUP)
            flow = kiosk.session.journey
            assert flow is not None and flow.state is PickupState.IDENTIFY  # type: ignore[attr-defined]
            kiosk.devices.identity.present_card(card)  # type: ignore[attr-defined]
            ui.run_until(
                lambda: worker.outstanding > 0 or flow.state is not PickupState.IDENTIFY,
                "card read",
            )  # type: ignore[attr-defined]
            worker.pump()
            assert flow.state is PickupState.PASSWORD  # type: ignore[attr-defined]
            for digit in password:
                flow.press(digit)  # type: ignore[attr-defined]
            flow.confirm()  # type: ignore[attr-defined]
            worker.pump()
            assert flow.state is PickupState.OPEN  # type: ignore[attr-defined]
            # the applicant opens the door, takes the certificate and shuts it: lockerd's door
            # events reach the journey on the UI thread
            open_door(locker, bay)
            locker.sim.control.take_item(locker.board, locker.channel(bay))
            close_door(locker, bay)
            ui.run_until(lambda: flow.state is PickupState.DONE, "door closed")  # type: ignore[attr-defined]
            assert ui.ran_on == {threading.current_thread().name}
        finally:
            kiosk.close()
