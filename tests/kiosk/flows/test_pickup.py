"""The pickup flow against a real lockerd, the lock-board simulator (doors opened and shut through
its hooks, as a person would) and the simulated card reader."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from drivers.identity.types import Identity
from drivers.identity.vcard.sim import SimIdentityReader
from kiosk.flows.base import Bilingual, InlineWorker, Msg, QueueWorker
from kiosk.flows.home import Cancelled, Finished
from kiosk.flows.pickup import HelpRequest, PickupFlow, PickupState
from kiosk.services.locker_gateway import GridPosition, LockerGateway
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.locker_fixtures import (
    DoorFeed,
    card_reader,
    citizen,
    close_door,
    feed,  # noqa: F401 (a fixture)
    gateway,  # noqa: F401 (a fixture)
    load,
    open_door,
    running_lockerd,
    worker,  # noqa: F401 (a fixture)
    wrong_password,
)
from tests.locker.harness import InProcessLockerd


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    with running_lockerd(tmp_path, lockboard_sim) as daemon:
        yield daemon


@pytest.fixture
def reader() -> SimIdentityReader:
    return card_reader()


@pytest.fixture
def helps() -> list[HelpRequest]:
    return []


@pytest.fixture
def flow(worker: QueueWorker, gateway: LockerGateway, helps: list[HelpRequest]) -> PickupFlow:
    return PickupFlow(worker, gateway, on_help=helps.append, grid_rows=3)


def enter(flow: PickupFlow, digits: str) -> None:
    for digit in digits:
        flow.press(digit)


def read_card(flow: PickupFlow, worker: QueueWorker, identity: Identity) -> None:
    assert flow.card_read(identity)
    assert flow.busy == Msg.of("Looking for your items…")
    worker.pump()
    assert flow.busy is None


def test_happy_path_opens_the_bay_until_the_door_is_shut(
    locker: InProcessLockerd,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    feed: DoorFeed,
) -> None:
    person = citizen(reader, 1)
    deposit_id, bay_id, password = load(locker, person, size="M")
    feed.drain()
    assert flow.prompt == Msg.of("Please place your ID card on the reader.")
    read_card(flow, worker, person)
    assert flow.state is PickupState.PASSWORD
    selected = flow.view.selected
    assert selected is not None and selected.deposit_id == deposit_id
    enter(flow, password[:5])
    assert flow.view.entry == "●●●●●○" and not flow.view.can_confirm
    flow.press("9")
    flow.delete()  # a slip of the finger, taken back
    flow.press(password[5])
    assert flow.view.entry == "●●●●●●" and flow.view.can_confirm
    assert password not in repr(flow.keypad)
    flow.confirm()
    assert flow.busy == Msg.of("Opening bay…")
    assert flow.state is PickupState.PASSWORD and flow.keypad.count == 0
    worker.pump()
    assert flow.state is PickupState.OPEN
    bay = flow.view.open_bay
    assert bay is not None and bay.bay_id == bay_id == "A03" and bay.size == "M"
    assert bay.position == GridPosition(0, 2) and bay.grid is not None
    assert (bay.grid.columns, bay.grid.rows) == (2, 3)
    assert flow.prompt == Msg.of(
        "Bay {bay} is open. Please take your item and close the door.", bay="A03"
    )
    assert len(locker.sim.control.unlock_log()) == 2  # the load, then this pickup
    # the applicant opens the door, takes the certificate and shuts it
    open_door(locker, bay_id)
    feed.deliver_until(flow, lambda: flow.view.open_bay == replace(bay, door="open"))
    assert flow.state is PickupState.OPEN
    locker.sim.control.take_item(locker.board, locker.channel(bay_id))
    close_door(locker, bay_id)
    feed.deliver_until(flow, lambda: flow.state is PickupState.DONE)
    assert flow.prompt == Msg.of("Thank you. Please take your ID card with you.")
    flow.finish()
    assert flow.ended == Finished("pickup", str(deposit_id), evaluate=True)
    assert flow.state is PickupState.CLOSED and flow.identity is None
    assert person.id_hash is not None
    assert locker.client.call("deposits.for_identity", identity_hash=person.id_hash) == {
        "deposits": []
    }


def test_door_shut_before_the_reply_reaches_the_screen(
    locker: InProcessLockerd,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    feed: DoorFeed,
) -> None:
    person = citizen(reader, 2)
    _, bay_id, password = load(locker, person)
    feed.drain()
    read_card(flow, worker, person)
    enter(flow, password)
    seen_before = len(feed.seen)
    flow.confirm()
    wait_until(lambda: len(locker.sim.control.unlock_log()) == 2, what="pickup unlock")
    open_door(locker, bay_id)
    close_door(locker, bay_id)
    feed.deliver_until(
        flow, lambda: any(e.door == "closed" for e in feed.seen[seen_before:]), timeout_s=5
    )
    assert flow.busy is not None  # the reply is still waiting for the UI thread
    worker.pump()
    assert flow.state is PickupState.DONE


def test_several_items_are_chosen_from_a_list(
    locker: InProcessLockerd, flow: PickupFlow, worker: QueueWorker, reader: SimIdentityReader
) -> None:
    person = citizen(reader, 3)
    load(locker, person, case="ZJ2026-0301")
    second_id, second_bay, second_pw = load(locker, person, case="ZJ2026-0302")
    read_card(flow, worker, person)
    assert flow.state is PickupState.CHOOSE
    flow.set_page_size(1)  # elderly mode: one item a page
    assert [d.case_number for d in flow.view.deposits] == ["ZJ2026-0301"]
    assert flow.view.page_count == 2
    flow.next_page()
    assert [d.case_number for d in flow.view.deposits] == ["ZJ2026-0302"]
    assert all(d.masked_name == "张*三" for d in flow.view.deposits)
    flow.choose(second_id)
    assert flow.state is PickupState.PASSWORD
    flow.back()
    assert flow.state is PickupState.CHOOSE
    flow.choose(second_id)
    enter(flow, second_pw)
    flow.confirm()
    worker.pump()
    opened = flow.view.open_bay
    assert flow.state is PickupState.OPEN and opened is not None and opened.bay_id == second_bay


def test_no_items_is_said_plainly(
    locker: InProcessLockerd, flow: PickupFlow, worker: QueueWorker, reader: SimIdentityReader
) -> None:
    read_card(flow, worker, citizen(reader, 4))
    assert flow.state is PickupState.NO_ITEMS
    assert flow.notice is not None and isinstance(flow.notice.text, Msg)
    assert flow.notice.text.msgid.startswith("No item is waiting for you.")
    assert locker.sim.control.unlock_log() == []
    flow.finish()
    assert flow.ended == Finished("pickup", "", evaluate=False)


def test_wrong_passwords_count_down_then_lock_out(
    locker: InProcessLockerd,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    helps: list[HelpRequest],
) -> None:
    person = citizen(reader, 5)
    deposit_id, bay_id, password = load(locker, person)
    read_card(flow, worker, person)
    lefts = []
    for _ in range(4):
        enter(flow, wrong_password(password))
        flow.confirm()
        worker.pump()
        assert flow.state is PickupState.PASSWORD and flow.keypad.count == 0
        assert flow.notice is not None and isinstance(flow.notice.text, Bilingual)
        assert f"{flow.view.attempts_left} tries left" in flow.notice.text.en
        lefts.append(flow.view.attempts_left)
    assert lefts == [4, 3, 2, 1]
    enter(flow, wrong_password(password))
    flow.confirm()
    worker.pump()
    assert flow.state is PickupState.LOCKED
    until = flow.view.locked_until
    assert until is not None and until > locker.clock.now()
    assert flow.notice is not None and isinstance(flow.notice.text, Bilingual)
    assert until.strftime("%H:%M") in flow.notice.text.zh
    assert len(locker.sim.control.unlock_log()) == 1  # only the load ever fired
    flow.new_code()
    assert flow.state is PickupState.NEW_CODE
    assert flow.notice is not None and flow.notice.call_staff
    assert helps == [HelpRequest("new_code", deposit_id, bay_id)]


def test_overdue_item_is_explained_without_asking_the_password(
    locker: InProcessLockerd, flow: PickupFlow, worker: QueueWorker, reader: SimIdentityReader
) -> None:
    person = citizen(reader, 6)
    load(locker, person)
    locker.clock.advance(8 * 86_400)
    read_card(flow, worker, person)
    assert flow.state is PickupState.OVERDUE
    assert flow.notice is not None and flow.notice.code == "overdue"


def test_jammed_door_calls_staff(
    locker: InProcessLockerd,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    helps: list[HelpRequest],
) -> None:
    person = citizen(reader, 7)
    deposit_id, bay_id, password = load(locker, person)
    locker.sim.control.jam(locker.board, locker.channel(bay_id))
    read_card(flow, worker, person)
    enter(flow, password)
    flow.confirm()
    worker.pump()
    assert flow.state is PickupState.HELP
    notice = flow.notice
    assert notice is not None and notice.call_staff and notice.code == "door_jammed"
    assert isinstance(notice.text, Bilingual) and "item is still safe inside" in notice.text.en
    assert helps == [HelpRequest("door_jammed", deposit_id, bay_id)]
    assert ("door_jammed", bay_id) in locker.alarms()


def test_lockerd_down_is_plain_words_and_staff(
    locker: InProcessLockerd,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    helps: list[HelpRequest],
) -> None:
    person = citizen(reader, 8)
    _, _, password = load(locker, person)
    read_card(flow, worker, person)
    locker.stop()
    enter(flow, password)
    flow.confirm()
    worker.pump()
    assert flow.state is PickupState.HELP
    assert flow.notice is not None and flow.notice.code == "lockerd_unavailable"
    assert isinstance(flow.notice.text, Bilingual) and "储物柜服务" in flow.notice.text.zh
    assert [h.reason for h in helps] == ["lockerd_unavailable"]


def test_lockerd_down_at_the_card(tmp_path: Path, reader: SimIdentityReader) -> None:
    gateway = LockerGateway.connect(str(tmp_path / "no-lockerd.sock"), timeout_s=1)
    flow = PickupFlow(InlineWorker(), gateway)
    assert flow.card_read(citizen(reader, 9))
    assert flow.state is PickupState.HELP and flow.notice is not None
    assert flow.notice.call_staff and flow.notice.code == "lockerd_unavailable"


def test_card_without_an_id_number_is_refused(
    flow: PickupFlow, worker: QueueWorker, reader: SimIdentityReader
) -> None:
    reader.present_card("idcard")  # a plain PC/SC reader sees only the chip serial
    chip_only = reader.read(timeout_s=2.0)
    assert flow.card_read(chip_only)
    assert worker.outstanding == 0 and flow.state is PickupState.IDENTIFY
    assert flow.notice is not None and flow.notice.code == "card_without_number"
    reader.present_card("staff")  # a staff card is not for this screen: the session says so
    assert not flow.card_read(reader.read(timeout_s=2.0))


def test_contact_staff_from_the_keypad(
    locker: InProcessLockerd,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    helps: list[HelpRequest],
) -> None:
    person = citizen(reader, 10)
    deposit_id, bay_id, _ = load(locker, person)
    read_card(flow, worker, person)
    enter(flow, "12")
    flow.contact_staff()
    assert flow.state is PickupState.HELP and flow.keypad.count == 0
    assert helps == [HelpRequest("applicant_asked", deposit_id, bay_id)]
    flow.cancel()
    assert flow.ended == Cancelled() and flow.state is PickupState.CLOSED


def test_idle_wipe_drops_identity_digits_and_a_late_answer(
    locker: InProcessLockerd,
    gateway: LockerGateway,
    flow: PickupFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
) -> None:
    person = citizen(reader, 11)
    _, _, password = load(locker, person)
    read_card(flow, worker, person)
    enter(flow, password[:4])
    flow.wipe()
    assert flow.state is PickupState.CLOSED and flow.ended is None
    assert flow.identity is None and flow.keypad.count == 0 and flow.view.entry == "○○○○○○"
    assert flow.view.deposits == () and flow.view.selected is None
    assert person.name_masked not in repr(flow.view)
    # wiped while a job ran: its answer is dropped, nothing personal comes back
    again = PickupFlow(worker, gateway)
    read_card(again, worker, person)
    enter(again, password)
    again.confirm()
    again.wipe()
    worker.pump()
    assert again.state is PickupState.CLOSED and again.view.open_bay is None
    assert again.identity is None and again.busy is None
