"""A kiosk a clerk took out of service stays out of service across a restart.

The whole kiosk is assembled from a site file on a data directory, as the app does: the embedded
hall in process, the simulated card reader (a virtual staff card with its PIN), lockerd in
process on a real socket with the board simulator (staff mode needs a locker), a plain
``QueueWorker`` and the test playing the UI thread (``post``). It is closed and assembled again
on the same directory, as after a power cut or the systemd watchdog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.vcard.cards import StaffCard
from kiosk.assembly import Kiosk, assemble
from kiosk.flows.base import Bilingual, QueueWorker
from kiosk.flows.home import JourneyKind
from kiosk.flows.session import STAFF_LOCKED
from kiosk.flows.staff import StaffFlow, StaffState
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.locker_fixtures import running_lockerd
from tests.kiosk.test_assembly import UiThread, write_site
from tests.locker.harness import InProcessLockerd

K = JourneyKind
PIN = "246810"


@pytest.fixture
def worker() -> Iterator[QueueWorker]:
    made = QueueWorker()
    yield made
    made.close()


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    (tmp_path / "locker").mkdir()
    with running_lockerd(tmp_path / "locker", lockboard_sim) as daemon:
        yield daemon


class Running:
    """The assembled kiosk on one data directory: assembled, started, closed, again."""

    def __init__(self, site: Path, ui: UiThread, worker: QueueWorker) -> None:
        self.site, self.ui, self.worker = site, ui, worker
        self.kiosk: Kiosk | None = None

    def assemble(self) -> Kiosk:
        self.kiosk = assemble(load_kiosk_settings([self.site]), self.worker, self.ui.post)
        return self.kiosk

    def close(self) -> None:
        if self.kiosk is not None:
            self.kiosk.close()
            self.kiosk = None


@pytest.fixture
def running(tmp_path: Path, worker: QueueWorker, locker: InProcessLockerd) -> Iterator[Running]:
    socket_path = json.dumps(str(locker.settings.socket_path))
    site = write_site(
        tmp_path / "kiosk", f"[kiosk.locker]\nenabled = true\nsocket_path = {socket_path}\n"
    )
    made = Running(site, UiThread(), worker)
    try:
        yield made
    finally:
        made.close()


def staff_menu(running: Running, kiosk: Kiosk) -> StaffFlow:
    """The clerk puts the staff card on the reader and enters the PIN."""
    reader = kiosk.devices.identity
    card = StaffCard(PcscSettings().staff, staff_id="clerk7", pin=PIN, pin_tries=10)
    reader.present_card(card)  # type: ignore[attr-defined]
    running.ui.run_until(lambda: kiosk.session.active is K.STAFF, "staff mode")
    flow = kiosk.session.journey
    assert isinstance(flow, StaffFlow) and flow.state is StaffState.PIN
    for digit in PIN:
        flow.press(digit)
    flow.confirm()
    running.worker.pump()
    assert flow.state is StaffState.MENU and flow.staff_id == "clerk7"
    return flow


def hall_metrics(kiosk: Kiosk) -> dict[str, Any]:
    """A snapshot now, as the hall's registry receives it (the embedded pump hands it over on
    its own thread: wait for this one, not an earlier one)."""
    taken = kiosk.runtime.telemetry.take()
    hall = kiosk.runtime.embedded_hall
    assert hall is not None

    def arrived() -> dict[str, Any] | None:
        rows = hall.registry.telemetry_history("kiosk-01", "kiosk", limit=1)
        metrics: dict[str, Any] | None = rows[0]["metrics"] if rows else None
        return metrics if metrics == taken else None

    return wait_until(arrived, timeout_s=30, what="the snapshot at the hall")


def test_a_kiosk_the_clerk_locked_comes_back_locked_and_only_a_clerk_unlocks_it(
    running: Running,
) -> None:
    kiosk = running.assemble()
    kiosk.start()
    session = kiosk.session
    running.ui.run_until(lambda: session.active is K.HOME, "home")

    flow = staff_menu(running, kiosk)
    flow.lock_kiosk()
    running.worker.pump()
    kiosk.devices.identity.remove_card()  # type: ignore[attr-defined]
    assert session.active is K.OUT_OF_SERVICE and session.out_of_service_reason == STAFF_LOCKED
    lock = session.staff_lock
    assert lock is not None and lock.staff_id == "clerk7" and lock.since is not None
    metrics = hall_metrics(kiosk)
    assert (metrics["staff_locked"], metrics["out_of_service"]) == (True, True)
    assert (metrics["staff_locked_by"], metrics["staff_locked_since"]) == ("clerk7", lock.since)
    assert metrics["ops_locked"] is False
    running.close()  # the power goes

    kiosk = running.assemble()
    session = kiosk.session
    # out of service from the first frame, with the clerk's words and the clerk on record
    assert session.active is K.OUT_OF_SERVICE and session.staff_locked
    assert session.out_of_service_reason == STAFF_LOCKED and not session.ops_locked
    assert session.staff_lock == lock
    kiosk.start()
    running.ui.run_until(lambda: True, "posts")
    assert session.active is K.OUT_OF_SERVICE
    metrics = hall_metrics(kiosk)
    assert (metrics["staff_locked"], metrics["staff_locked_by"]) == (True, "clerk7")

    # ops lock and unlock it (as the command worker does): the clerk's lock stays
    kiosk.runtime.ops_lock.lock(Bilingual("设备维护", "Maintenance"), None, "cmd-1")
    running.ui.run_until(lambda: session.ops_locked, "the ops lock applied")
    kiosk.runtime.ops_lock.unlock("cmd-2")
    running.ui.run_until(lambda: not session.ops_locked, "the ops unlock applied")
    assert session.active is K.OUT_OF_SERVICE and session.out_of_service_reason == STAFF_LOCKED

    # a clerk's unlock lifts it, on disk too
    flow = staff_menu(running, kiosk)
    flow.unlock_kiosk()
    running.worker.pump()
    kiosk.devices.identity.remove_card()  # type: ignore[attr-defined]
    assert session.active is K.HOME and not session.locked
    assert kiosk.runtime.store.one("SELECT * FROM kiosk_staff_lock") is None
    metrics = hall_metrics(kiosk)
    assert (metrics["staff_locked"], metrics["staff_locked_by"]) == (False, None)
    running.close()

    kiosk = running.assemble()
    assert kiosk.session.active is K.HOME and not kiosk.session.locked
