"""Real parts for the locker flows: lockerd in process on a real socket, the lock-board simulator
on a real pty (its automatic person switched off, so the test opens and shuts doors as a person
would), the simulated card reader with virtual cards, and a feed that hands lockerd's door events
to a flow on the test's thread, as the app does on the UI thread.

Import what you need explicitly: helpers, and the ``gateway``, ``feed`` and ``worker`` fixtures
(each test module defines its own ``locker``, with the bays it needs, and its own ``reader``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from drivers.identity import SimSettings
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import CitizenCard
from drivers.identity.vcard.sim import SimIdentityReader
from hallkiosk.clock import ManualClock
from hallkiosk.privacy import IdentityHasher, gb11643_check_digit
from kiosk.flows.base import QueueWorker
from kiosk.services.locker_gateway import EventSubscription, LockerEvent, LockerGateway
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.harness import START, InProcessLockerd

HASHER = IdentityHasher(b"kiosk-flow-tests-identity-key-32b")
PROTOCOL = "8a80"


@contextlib.contextmanager
def running_lockerd(
    tmp_path: Path,
    lockboard_sim: LockboardSimFactory,
    *,
    clock: ManualClock | None = None,
    channels: int = 6,
) -> Iterator[InProcessLockerd]:
    """lockerd with ``channels`` bays (sizes S S M M L L, repeating) on one 8A/80 board."""
    sim = lockboard_sim(PROTOCOL, boards=(1,), channels=16, auto_person=False)
    daemon = InProcessLockerd(
        tmp_path, sim, PROTOCOL, channels=channels, clock=clock or ManualClock(START)
    ).start()
    try:
        yield daemon
    finally:
        daemon.stop()


@contextlib.contextmanager
def queue_worker() -> Iterator[QueueWorker]:
    worker = QueueWorker()
    try:
        yield worker
    finally:
        worker.close()


# -- people at the cabinet -------------------------------------------------------------------


def open_door(locker: InProcessLockerd, bay_id: str) -> None:
    """A person pulls the handle of an unlocked bay, and lockerd sees it open."""
    assert locker.sim.control.pull_door(locker.board, locker.channel(bay_id)), f"{bay_id} latched"
    locker.wait_door(bay_id, "open")


def close_door(locker: InProcessLockerd, bay_id: str) -> None:
    locker.sim.control.close_door(locker.board, locker.channel(bay_id))
    locker.wait_door(bay_id, "closed")


def load(
    locker: InProcessLockerd,
    identity: Identity,
    *,
    size: str = "S",
    case: str = "ZJ2026-0001",
) -> tuple[int, str, str]:
    """A clerk loads one certificate for ``identity``: (deposit id, bay, password)."""
    assert identity.id_hash is not None and identity.name_masked is not None
    started = locker.client.call(
        "deposit.start",
        staff_id="clerk1",
        case_number=case,
        size=size,
        recipient={
            "identity_hash": identity.id_hash,
            "masked_name": identity.name_masked,
            "masked_id": identity.id_masked or "",
        },
    )
    bay_id = str(started["bay_id"])
    open_door(locker, bay_id)
    locker.sim.control.put_item(locker.board, locker.channel(bay_id))
    close_door(locker, bay_id)
    confirmed = locker.client.call(
        "deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"]
    )
    return int(started["deposit_id"]), bay_id, str(confirmed["password"])


def wrong_password(right: str) -> str:
    return next(p for p in ("000000", "111111", "222222") if p != right)


# -- cards -----------------------------------------------------------------------------------


def id_number(serial: int) -> str:
    first17 = f"99010119800101{serial:03d}"  # region 990101: assigned to nobody
    return first17 + gb11643_check_digit(first17)


def card_reader() -> SimIdentityReader:
    return SimIdentityReader(SimSettings(), PcscSettings(), HASHER)


def citizen(reader: SimIdentityReader, serial: int = 1, name: str = "张小三") -> Identity:
    """Present a citizen card and read it as the app would."""
    reader.present_card(CitizenCard(PcscSettings().citizen, id_number(serial), name))
    identity = reader.read(timeout_s=2.0)
    reader.remove_card()
    return identity


# -- door events to a flow -------------------------------------------------------------------


class DoorListener(Protocol):
    def door_opened(self, bay_id: str) -> None: ...

    def door_closed(self, bay_id: str) -> None: ...


class DoorFeed:
    """lockerd's events arrive on the subscription's thread; ``deliver`` hands the door ones to
    a flow on the calling thread, as the app posts them to the UI thread."""

    def __init__(self, gateway: LockerGateway) -> None:
        self.events: queue.SimpleQueue[LockerEvent] = queue.SimpleQueue()
        self.seen: list[LockerEvent] = []  # every event, for assertions
        self.threads: set[str] = set()
        self.subscription: EventSubscription = gateway.subscribe(self._on_event, retry_s=0.05)
        wait_until(lambda: self.subscription.connected, timeout_s=10, what="event subscription")

    def _on_event(self, event: LockerEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.seen.append(event)
        self.events.put(event)

    def drain(self) -> None:
        """Forget events so far (the loads before the test's pickup): in the app they reached
        the UI thread long before the flow started."""
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return

    def deliver(self, flow: DoorListener) -> int:
        delivered = 0
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return delivered
            if event.type != "door" or event.bay_id is None:
                continue
            if event.door == "open":
                flow.door_opened(event.bay_id)
            elif event.door == "closed":
                flow.door_closed(event.bay_id)
            delivered += 1

    def deliver_until(
        self, flow: DoorListener, done: Callable[[], Any], *, timeout_s: float = 10.0
    ) -> None:
        def step() -> Any:
            self.deliver(flow)
            return done()

        wait_until(step, timeout_s=timeout_s, what="door events reaching the flow")

    def close(self) -> None:
        self.subscription.close()


# -- fixtures shared by the locker flows' and screens' tests ----------------------------------


@pytest.fixture
def gateway(locker: InProcessLockerd) -> Iterator[LockerGateway]:
    gw = LockerGateway.connect(str(locker.settings.socket_path), timeout_s=20)
    yield gw
    gw.close()


@pytest.fixture
def feed(gateway: LockerGateway) -> Iterator[DoorFeed]:
    door_feed = DoorFeed(gateway)
    yield door_feed
    door_feed.close()


@pytest.fixture
def worker() -> Iterator[QueueWorker]:
    with queue_worker() as w:
        yield w
