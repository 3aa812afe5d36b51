"""The clerk's lock kept in kiosk.db: the staff journey (real lockerd behind it, the simulated
reader with a virtual staff card) writes it before the session shows out of service, a session
built on the same file starts locked with the same words and the clerk on record, only a clerk's
unlock lifts it, and a lock that cannot be written leaves the kiosk in service and says so.

The whole assembled kiosk restarted on its data directory is in tests/kiosk/test_staff_lock.py."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import StaffCard
from drivers.identity.vcard.sim import SimIdentityReader
from hallkiosk.clock import ManualClock, utc_iso
from kiosk.flows.base import Bilingual, Msg, QueueWorker
from kiosk.flows.home import JourneyKind, JourneyStart
from kiosk.flows.session import OPS_LOCK_STAYS, STAFF_LOCKED, WHERE_INSTEAD, KioskSession
from kiosk.flows.staff import LOCK_FAILED, StaffFlow, StaffPinGuard, StaffState
from kiosk.health import KioskHealth
from kiosk.services.locker_gateway import LockerGateway
from kiosk.services.staff_lock import StaffLock, StaffLockState
from kiosk.services.store import KioskStore
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.locker_fixtures import (
    card_reader,
    gateway,  # noqa: F401 (a fixture)
    running_lockerd,
    worker,  # noqa: F401 (a fixture)
)
from tests.locker.harness import InProcessLockerd

K = JourneyKind
PIN = "246810"
MAINTENANCE = Bilingual("设备维护", "Maintenance")


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    (tmp_path / "locker").mkdir()
    with running_lockerd(tmp_path / "locker", lockboard_sim) as daemon:
        yield daemon


@pytest.fixture
def reader() -> Iterator[SimIdentityReader]:
    sim = card_reader()
    sim.present_card(StaffCard(PcscSettings().staff, staff_id="clerk7", pin=PIN, pin_tries=10))
    yield sim
    sim.close()


class Kiosk:
    """kiosk.db, the clerk's lock in it and a session whose staff journey is the real one; built
    again on the same file as a restarted kiosk would be."""

    def __init__(
        self,
        db: Path,
        clock: ManualClock,
        worker: QueueWorker,
        gateway: LockerGateway,
        reader: SimIdentityReader,
    ) -> None:
        self.store = KioskStore(db)
        self.staff_lock = StaffLock(self.store, clock)
        guard = StaffPinGuard(clock)

        def staff(start: JourneyStart) -> StaffFlow:
            flow = StaffFlow(worker, clock, gateway, reader, guard, kiosk_locks=self.staff_lock)
            if start.identity is not None:
                flow.card_read(start.identity)
            return flow

        self.session = KioskSession(clock, {K.STAFF: staff}, staff_lock=self.staff_lock)
        self.health = KioskHealth(has_locker=True)
        self.session.subscribe(self.health.record_session)

    def close(self) -> None:
        self.store.close()


def staff_menu(kiosk: Kiosk, worker: QueueWorker, reader: SimIdentityReader) -> StaffFlow:
    """The clerk puts the staff card down on the home (or out-of-service) page, enters the PIN."""
    card: Identity = reader.read(timeout_s=2.0)
    kiosk.session.card_read(card)
    flow = kiosk.session.journey
    assert isinstance(flow, StaffFlow) and flow.state is StaffState.PIN
    for digit in PIN:
        flow.press(digit)
    flow.confirm()
    worker.pump()
    assert flow.state is StaffState.MENU and flow.staff_id == "clerk7"
    return flow


def on_disk(db: Path) -> list[tuple[str, str]]:
    """What a restarted kiosk would find (another connection to the file)."""
    other = sqlite3.connect(db)
    try:
        return other.execute("SELECT staff_id, locked_at FROM kiosk_staff_lock").fetchall()
    finally:
        other.close()


def test_the_clerks_lock_is_on_disk_before_the_screen_says_so_and_outlives_the_session(
    tmp_path: Path,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
) -> None:
    clock = locker.clock
    db = tmp_path / "kiosk.db"
    kiosk = Kiosk(db, clock, worker, gateway, reader)
    session = kiosk.session
    assert session.active is K.HOME and kiosk.staff_lock.state() is None
    seen: list[tuple[K, list[tuple[str, str]]]] = []
    session.subscribe(lambda s: seen.append((s.active, on_disk(db))))

    flow = staff_menu(kiosk, worker, reader)
    flow.lock_kiosk()
    assert flow.busy == Msg.of("Locking the kiosk…")
    assert session.active is K.STAFF and not session.locked  # nothing said before the write
    worker.pump()
    since = utc_iso(clock.now())
    assert flow.kiosk_lock is True and flow.state is StaffState.CLOSED
    assert session.active is K.OUT_OF_SERVICE and session.staff_locked
    # the first time the session showed out of service, the row was already there
    first = next(rows for active, rows in seen if active is K.OUT_OF_SERVICE)
    assert first == [("clerk7", since)]
    assert (session.out_of_service_reason, session.where_instead) == (STAFF_LOCKED, WHERE_INSTEAD)
    lock = session.staff_lock
    assert lock is not None and (lock.staff_id, lock.since) == ("clerk7", since)
    health = kiosk.health()
    assert (health["staff_locked"], health["out_of_service"]) == (True, True)
    assert (health["staff_locked_by"], health["staff_locked_since"]) == ("clerk7", since)

    # ops lock and unlock by signed command: the clerk's lock stays, with its words
    session.lock(MAINTENANCE)
    assert session.out_of_service_reason == MAINTENANCE
    session.unlock()
    assert session.active is K.OUT_OF_SERVICE and session.staff_locked
    assert session.out_of_service_reason == STAFF_LOCKED
    kiosk.close()

    # the kiosk restarted: the session is out of service from the start, the clerk on record
    clock.advance(3600)
    again = Kiosk(db, clock, worker, gateway, reader)
    try:
        assert again.staff_lock.state() == StaffLockState("clerk7", since)
        session = again.session
        assert session.active is K.OUT_OF_SERVICE and session.staff_locked
        assert not session.ops_locked
        assert (session.out_of_service_reason, session.where_instead) == (
            STAFF_LOCKED,
            WHERE_INSTEAD,
        )
        assert not any(t.enabled for t in session.tiles)
        # only a clerk lifts it: staff card on the out-of-service page, PIN, unlock
        flow = staff_menu(again, worker, reader)
        flow.unlock_kiosk()
        assert flow.busy == Msg.of("Unlocking the kiosk…")
        assert on_disk(db) == [("clerk7", since)]  # not yet: the screen still says locked
        worker.pump()
        assert session.active is K.HOME and not session.locked and session.notice is None
        assert on_disk(db) == [] and again.staff_lock.state() is None
        assert again.health()["staff_locked"] is False
        assert again.health()["staff_locked_by"] is None
    finally:
        again.close()
    assert on_disk(db) == []


def test_a_clerks_unlock_leaves_the_ops_lock_and_a_lock_over_it_is_kept_for_later(
    tmp_path: Path,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
) -> None:
    kiosk = Kiosk(tmp_path / "kiosk.db", locker.clock, worker, gateway, reader)
    try:
        session = kiosk.session
        session.lock(MAINTENANCE)  # ops
        flow = staff_menu(kiosk, worker, reader)
        flow.lock_kiosk()  # the clerk too: the screen is cracked
        worker.pump()
        assert session.ops_locked and session.staff_locked
        assert session.out_of_service_reason == MAINTENANCE  # ops' words while both hold
        session.unlock()  # ops lift theirs
        assert session.active is K.OUT_OF_SERVICE and session.out_of_service_reason == STAFF_LOCKED
        session.lock(MAINTENANCE)
        flow = staff_menu(kiosk, worker, reader)
        flow.unlock_kiosk()
        worker.pump()
        assert session.active is K.OUT_OF_SERVICE and session.ops_locked
        assert not session.staff_locked and kiosk.staff_lock.state() is None
        assert session.notice is not None and session.notice.text == OPS_LOCK_STAYS
    finally:
        kiosk.close()


def test_a_lock_that_cannot_be_written_leaves_the_kiosk_in_service_and_tells_the_clerk(
    tmp_path: Path,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
) -> None:
    db = tmp_path / "kiosk.db"
    kiosk = Kiosk(db, locker.clock, worker, gateway, reader)
    try:
        flow = staff_menu(kiosk, worker, reader)
        kiosk.store.conn.execute("PRAGMA busy_timeout=100")  # give up on the lock below soon
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds kiosk.db
        try:
            flow.lock_kiosk()
            worker.pump()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert flow.state is StaffState.MENU and flow.ended is None and flow.kiosk_lock is None
        assert flow.notice is not None and flow.notice.text == LOCK_FAILED
        assert flow.notice.code == "kiosk_lock_failed" and flow.notice.call_staff
        assert kiosk.session.active is K.STAFF and not kiosk.session.locked
        assert kiosk.staff_lock.state() is None and on_disk(db) == []
        flow.lock_kiosk()  # the clerk tries again once the file is free
        worker.pump()
        assert kiosk.session.active is K.OUT_OF_SERVICE and on_disk(db) != []
    finally:
        kiosk.close()
