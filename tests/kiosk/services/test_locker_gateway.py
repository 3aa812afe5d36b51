"""LockerGateway against a real lockerd in process (real socket, lock-board simulator on a pty)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.identity.types import Identity
from kiosk.services.locker_gateway import (
    ChooseDeposit,
    DoorJammed,
    DoorNotClosed,
    GridPosition,
    LockedOut,
    LockerGateway,
    NoFreeBay,
    NotFound,
    NotOverdue,
    Overdue,
    Recipient,
    Unavailable,
    WrongPassword,
)
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.locker_fixtures import (
    DoorFeed,
    card_reader,
    citizen,
    close_door,
    load,
    open_door,
    running_lockerd,
    wrong_password,
)
from tests.locker.harness import InProcessLockerd


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    with running_lockerd(tmp_path, lockboard_sim) as daemon:
        yield daemon


@pytest.fixture
def gateway(locker: InProcessLockerd) -> Iterator[LockerGateway]:
    gw = LockerGateway.connect(str(locker.settings.socket_path), timeout_s=20)
    yield gw
    gw.close()


@pytest.fixture
def person() -> Identity:
    return citizen(card_reader(), 1)


def recipient(identity: Identity) -> Recipient:
    assert identity.id_hash and identity.name_masked
    return Recipient(identity.id_hash, identity.name_masked, identity.id_masked or "")


def test_deposits_and_a_pickup(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    assert person.id_hash is not None
    assert gateway.deposits_for(person.id_hash) == []
    deposit_id, bay_id, password = load(locker, person, size="M")
    [waiting] = gateway.deposits_for(person.id_hash)
    assert (waiting.deposit_id, waiting.bay_id) == (deposit_id, bay_id)
    assert waiting.masked_name == "张*三"
    assert waiting.case_number == "ZJ2026-0001" and not waiting.overdue
    assert waiting.deadline is not None and waiting.deadline.utcoffset() is not None
    opened = gateway.pickup(person.id_hash, password, None, "req-1")
    assert (opened.bay_id, opened.deposit_id, opened.repeated) == (bay_id, deposit_id, False)
    # the same request again (a lost reply) reports, and the coil does not fire twice
    again = gateway.pickup(person.id_hash, password, None, "req-1")
    assert again.repeated and again.bay_id == bay_id
    assert len(locker.sim.control.unlock_log()) == 2  # the load and one pickup
    open_door(locker, bay_id)
    close_door(locker, bay_id)
    assert gateway.deposits_for(person.id_hash) == []


def test_wrong_password_then_lockout_are_typed(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    assert person.id_hash is not None
    _, _, password = load(locker, person)
    wrong = wrong_password(password)
    lefts: list[int] = []
    for _ in range(4):
        with pytest.raises(WrongPassword) as info:
            gateway.pickup(person.id_hash, wrong, None, f"w{len(lefts)}")
        lefts.append(info.value.attempts_left)
        assert info.value.code == "wrong_password" and "取件密码错误" in info.value.message_zh
    assert lefts == [4, 3, 2, 1]
    with pytest.raises(LockedOut) as locked:
        gateway.pickup(person.id_hash, wrong, None, "w5")
    until = locked.value.until
    assert until > locker.clock.now() and until.utcoffset() is not None
    assert until.strftime("%H:%M") in locked.value.message_en


def test_not_found_overdue_and_choose(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    assert person.id_hash is not None
    with pytest.raises(NotFound) as none:
        gateway.pickup(person.id_hash, "123456", None, "n1")
    assert none.value.code == "no_such_deposit" and none.value.message_en
    _, _, pw1 = load(locker, person, case="ZJ2026-0101")
    load(locker, person, case="ZJ2026-0102")
    with pytest.raises(ChooseDeposit):
        gateway.pickup(person.id_hash, pw1, None, "c1")
    locker.clock.advance(8 * 86_400)  # past the 7-day deadline
    assert all(d.overdue for d in gateway.deposits_for(person.id_hash))
    first = gateway.deposits_for(person.id_hash)[0]
    with pytest.raises(Overdue) as late:
        gateway.pickup(person.id_hash, pw1, first.deposit_id, "o1")
    assert "窗口" in late.value.message_zh


def test_staff_load_confirm_cancel_retrieve_and_status(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    assert person.id_hash is not None
    layout = gateway.status()
    assert [b.bay_id for b in layout.bays] == ["A01", "A02", "A03", "A04", "A05", "A06"]
    assert [b.size for b in layout.bays] == ["S", "S", "M", "M", "L", "L"]
    grid = layout.grid(rows=4)
    assert (grid.columns, grid.rows) == (2, 4)
    assert grid.position("A01") == GridPosition(0, 0)
    assert grid.position("A04") == GridPosition(0, 3)
    assert grid.position("A05") == GridPosition(1, 0)
    started = gateway.deposit_start("clerk1", "GA2026000001X", "M", recipient(person), "s1")
    assert started.size == "M" and started.bay_id == "A03"
    open_door(locker, started.bay_id)
    with pytest.raises(DoorNotClosed) as still_open:
        gateway.deposit_confirm("clerk1", started.deposit_id)
    assert still_open.value.message_zh == "请先关好柜门。"
    close_door(locker, started.bay_id)
    stored = gateway.deposit_confirm("clerk1", started.deposit_id)
    assert stored.bay_id == "A03" and stored.deadline > locker.clock.now()
    assert not hasattr(stored, "password")  # the code goes to the applicant by SMS only
    # a load given up: the bay is free again
    second = gateway.deposit_start("clerk1", "GA2026000002X", "L", recipient(person), "s2")
    open_door(locker, second.bay_id)
    close_door(locker, second.bay_id)
    gateway.deposit_cancel("clerk1", second.deposit_id)
    freed = gateway.status().bay(second.bay_id)
    assert freed is not None and not freed.occupied
    # retrieve refuses before the deadline, opens after it
    with pytest.raises(NotOverdue):
        gateway.retrieve("clerk1", started.deposit_id)
    assert gateway.overdue() == []
    locker.clock.advance(8 * 86_400)
    assert [d.deposit_id for d in gateway.overdue()] == [started.deposit_id]
    opened = gateway.retrieve("clerk1", started.deposit_id)
    assert opened.bay_id == "A03"
    open_door(locker, "A03")
    close_door(locker, "A03")
    assert gateway.overdue() == []


def test_reissue_makes_the_old_code_stop_working(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    assert person.id_hash is not None
    deposit_id, _, password = load(locker, person)
    for n in range(5):
        with pytest.raises((WrongPassword, LockedOut)):
            gateway.pickup(person.id_hash, wrong_password(password), None, f"r{n}")
    with pytest.raises(LockedOut):
        gateway.pickup(person.id_hash, password, None, "r-right")
    gateway.reissue_password("clerk1", deposit_id)
    # lockerd clears the deposit's lock but not the card's: that one runs out by itself
    locker.clock.advance(15 * 60 + 1)
    with pytest.raises(WrongPassword) as old:
        gateway.pickup(person.id_hash, password, None, "r-old")
    assert old.value.attempts_left == 4


def test_disabled_bays_are_not_allocated(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    for bay in ("A05", "A06"):
        gateway.set_bay_enabled("clerk1", bay, False, "hinge broken")
    assert [b.enabled for b in gateway.status().bays][-2:] == [False, False]
    with pytest.raises(NoFreeBay) as none:
        gateway.deposit_start("clerk1", "GA2026000003X", "L", recipient(person), "d1")
    assert none.value.code == "no_free_bay"
    gateway.set_bay_enabled("clerk1", "A05", True)
    again = gateway.deposit_start("clerk1", "GA2026000003X", "L", recipient(person), "d2")
    assert again.bay_id == "A05"


def test_jammed_door_is_typed(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    assert person.id_hash is not None
    _, bay_id, password = load(locker, person)
    locker.sim.control.jam(locker.board, locker.channel(bay_id))
    with pytest.raises(DoorJammed) as jam:
        gateway.pickup(person.id_hash, password, None, "j1")
    assert jam.value.code == "door_jammed" and "工作人员" in jam.value.message_zh
    # the item is still there for the next try once fixed
    assert [d.bay_id for d in gateway.deposits_for(person.id_hash)] == [bay_id]


def test_events_arrive_on_a_background_thread(
    locker: InProcessLockerd, gateway: LockerGateway, person: Identity
) -> None:
    feed = DoorFeed(gateway)
    try:
        _, bay_id, _ = load(locker, person)

        def door_events() -> list[tuple[str | None, str | None]]:
            return [(e.bay_id, e.door) for e in list(feed.seen) if e.type == "door"]

        wait_until(lambda: (bay_id, "closed") in door_events(), what="door closed event")
        assert door_events()[:2] == [(bay_id, "open"), (bay_id, "closed")]
        assert feed.threads == {"locker-events"}
        assert threading.current_thread().name not in feed.threads
    finally:
        feed.close()
    assert not feed.subscription._thread.is_alive()


def test_lockerd_not_running_is_unavailable(tmp_path: Path) -> None:
    gw = LockerGateway.connect(str(tmp_path / "absent.sock"), timeout_s=1)
    with pytest.raises(Unavailable) as info:
        gw.deposits_for("0" * 64)
    assert isinstance(info.value, ConnectionError)
    assert info.value.code == "lockerd_unavailable"
    assert "储物柜服务暂时不可用" in info.value.message_zh
    assert "not available" in info.value.message_en


def test_lockerd_stopping_midway_is_unavailable_and_events_reconnect(
    locker: InProcessLockerd, gateway: LockerGateway
) -> None:
    states: list[bool] = []
    subscription = gateway.subscribe(lambda e: None, on_connection=states.append, retry_s=0.05)
    try:
        wait_until(lambda: subscription.connected, timeout_s=10, what="subscribed")
        assert gateway.status().device_id == "locker-test"
        locker.stop()
        with pytest.raises(Unavailable):
            gateway.status()
        wait_until(lambda: not subscription.connected, timeout_s=10, what="stream ended")
        locker.start()
        wait_until(lambda: subscription.connected, timeout_s=10, what="resubscribed")
        assert gateway.status().device_id == "locker-test"  # the client reconnects by itself
        assert states == [True, False, True]
    finally:
        subscription.close()
