"""Staff mode against a real lockerd (doors opened and shut through the board simulator's hooks),
the simulated card reader with a virtual staff card, the scanner, printer, camera and voice
simulators."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from drivers.camera import CameraSettings
from drivers.camera.sim import SimCamera
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import StaffCard
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter, PrinterSettings, QueueTicket, queue_ticket_layout
from drivers.scanner import ScannerSettings
from drivers.scanner.formats import make_booking_code, make_case_barcode
from drivers.scanner.sim import SimScanner
from drivers.voice import VoiceSettings
from drivers.voice.sim import SimVoice
from kiosk.flows.base import Bilingual, Msg, QueueWorker
from kiosk.flows.home import Finished, HandOver, JourneyKind
from kiosk.flows.selftest import SelfTest
from kiosk.flows.staff import (
    MappingCaseDirectory,
    RememberingPrinter,
    StaffFlow,
    StaffPinGuard,
    StaffState,
)
from kiosk.services.locker_gateway import LockerGateway, Recipient
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
)
from tests.locker.harness import InProcessLockerd

PIN = "246810"


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    with running_lockerd(tmp_path, lockboard_sim) as daemon:
        yield daemon


@pytest.fixture
def reader() -> SimIdentityReader:
    return card_reader()


@pytest.fixture
def staff_card(reader: SimIdentityReader) -> StaffCard:
    # ten tries on the card, so the kiosk's own limit of three is what stops a guesser
    card = StaffCard(PcscSettings().staff, staff_id="clerk7", pin=PIN, pin_tries=10)
    reader.present_card(card)
    return card


@pytest.fixture
def printer() -> Iterator[RememberingPrinter]:
    inner = EscposTicketPrinter(PrinterSettings(backend="sim"))
    yield RememberingPrinter(inner)
    inner.close()


@pytest.fixture
def scanner() -> Iterator[SimScanner]:
    sim = SimScanner(ScannerSettings())
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def guard(locker: InProcessLockerd) -> StaffPinGuard:
    return StaffPinGuard(locker.clock, max_wrong=3, lockout_s=300)


def make_flow(
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
    guard: StaffPinGuard,
    **extra: object,
) -> StaffFlow:
    return StaffFlow(worker, locker.clock, gateway, reader, guard, grid_rows=3, **extra)  # type: ignore[arg-type]


@pytest.fixture
def flow(
    *,
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
    guard: StaffPinGuard,
    printer: RememberingPrinter,
) -> StaffFlow:
    return make_flow(worker, locker, gateway, reader, guard, printer=printer)


def staff_identity(reader: SimIdentityReader) -> Identity:
    return reader.read(timeout_s=2.0)


def enter(flow: StaffFlow, digits: str) -> None:
    for digit in digits:
        flow.press(digit)


def log_in(flow: StaffFlow, worker: QueueWorker, reader: SimIdentityReader) -> None:
    assert flow.card_read(staff_identity(reader))
    assert flow.state is StaffState.PIN
    enter(flow, PIN)
    flow.confirm()
    assert flow.busy == Msg.of("Checking the PIN…")
    worker.pump()
    assert flow.state is StaffState.MENU and flow.staff_id == "clerk7"


def scan(flow: StaffFlow, scanner: SimScanner, code: str) -> None:
    assert scanner.scan(code)
    assert flow.code_scanned(scanner.read(timeout_s=2.0).value)


def test_wrong_pins_lock_staff_login_for_five_minutes(
    flow: StaffFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    staff_card: StaffCard,
    locker: InProcessLockerd,
) -> None:
    assert flow.prompt == Msg.of("Please place your staff card on the reader.")
    applicant = citizen(card_reader(), 1)
    assert flow.card_read(applicant)  # taken, but refused in plain words
    assert flow.state is StaffState.LOGIN and flow.notice is not None
    assert flow.notice.code == "staff_card_required"
    assert flow.card_read(staff_identity(reader))
    tries: list[int | None] = []
    for _ in range(2):
        enter(flow, "1111")
        flow.confirm()
        worker.pump()
        assert flow.state is StaffState.PIN and flow.keypad.count == 0
        tries.append(flow.view.tries_left)
    assert tries == [2, 1]
    enter(flow, "1111")
    flow.confirm()
    worker.pump()
    assert flow.state is StaffState.PIN_LOCKED
    until = flow.view.locked_until
    assert isinstance(until, datetime) and until > locker.clock.now()
    assert staff_card.pin_tries_left == 7  # the card itself was not blocked
    # locked: even the right PIN is not tried on the card
    assert flow.card_read(staff_identity(reader))
    assert flow.state is StaffState.PIN_LOCKED
    locker.clock.advance(5 * 60 + 1)
    assert flow.card_read(staff_identity(reader))
    assert flow.state is StaffState.PIN
    enter(flow, PIN)
    flow.confirm()
    worker.pump()
    assert flow.state is StaffState.MENU and flow.view.staff_name == "王*作"


def test_a_blocked_card_is_said_plainly(
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
) -> None:
    guard = StaffPinGuard(locker.clock, max_wrong=5)
    flow = make_flow(worker, locker, gateway, reader, guard)
    reader.present_card("staff")  # the demo card: three tries on the chip
    assert flow.card_read(staff_identity(reader))
    for _ in range(3):
        enter(flow, "0000")
        flow.confirm()
        worker.pump()
    assert flow.state is StaffState.LOGIN
    assert flow.notice is not None and flow.notice.code == "staff_pin_blocked"
    assert isinstance(flow.notice.text, Bilingual) and "锁定" in flow.notice.text.zh


def test_loading_several_certificates_in_a_row(
    *,
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
    guard: StaffPinGuard,
    staff_card: StaffCard,
    scanner: SimScanner,
    feed: DoorFeed,
) -> None:
    applicant = citizen(card_reader(), 2, "李小明")
    other = citizen(card_reader(), 3, "欧阳小红")
    assert applicant.id_hash and other.id_hash and other.name_masked
    case1, case2, case3 = (make_case_barcode("GA", 2026, n) for n in (1, 2, 3))
    directory = MappingCaseDirectory(
        {
            case2: Recipient(other.id_hash, other.name_masked, other.id_masked or ""),
            case3: Recipient(other.id_hash, other.name_masked, other.id_masked or ""),
        }
    )
    flow = make_flow(worker, locker, gateway, reader, guard, cases=directory)
    log_in(flow, worker, reader)
    flow.start_loading()
    assert flow.busy == Msg.of("Reading the locker…")
    worker.pump()
    assert flow.state is StaffState.LOAD_SCAN and flow.view.pending_loads == ()
    # a valid code of another kind is refused in plain words, not silently
    scan(flow, scanner, make_booking_code("20240615001"))
    assert flow.notice is not None and flow.notice.code == "not_case"

    # 1: a case the directory does not know: the clerk reads the applicant's card
    scan(flow, scanner, case1)
    worker.pump()
    assert flow.state is StaffState.LOAD_RECIPIENT
    assert flow.card_read(applicant)
    assert flow.state is StaffState.LOAD_SIZE and flow.view.recipient_name == "李*明"
    flow.choose_size("S")
    assert flow.busy == Msg.of("Opening a bay…")
    worker.pump()
    assert flow.state is StaffState.LOAD_OPEN
    bay = flow.view.open_bay
    assert bay is not None and bay.bay_id == "A01" and bay.size == "S"
    open_door(locker, "A01")
    locker.sim.control.put_item(locker.board, 1)
    flow.confirm_loaded()  # too early: the door is still open
    worker.pump()
    assert flow.state is StaffState.LOAD_OPEN and flow.notice is not None
    assert flow.notice.code == "door_not_closed"
    close_door(locker, "A01")
    feed.deliver_until(
        flow, lambda: flow.view.open_bay is not None and flow.view.open_bay.door == "closed"
    )
    flow.confirm_loaded()
    worker.pump()
    assert flow.state is StaffState.LOAD_SCAN
    assert flow.notice is not None and flow.notice.code == "stored"

    # 2 and 3: known cases, the size is kept: each scan opens a bay at once
    for case, expected in ((case2, "A02"), (case3, "A03")):
        scan(flow, scanner, case)
        worker.pump()  # the directory, then the bay: one pump runs both jobs
        assert flow.state is StaffState.LOAD_OPEN, flow.notice
        bay = flow.view.open_bay
        assert bay is not None and bay.bay_id == expected  # no S left for the third: an M
        open_door(locker, expected)
        close_door(locker, expected)
        flow.confirm_loaded()
        worker.pump()
        assert flow.state is StaffState.LOAD_SCAN
    assert [(item.case_number, item.bay_id) for item in flow.view.loaded] == [
        (case1, "A01"),
        (case2, "A02"),
        (case3, "A03"),
    ]
    # the same envelope again: said at once, nothing opened
    fires = len(locker.sim.control.unlock_log())
    scan(flow, scanner, case2)
    assert flow.notice is not None and flow.notice.code == "already_loaded"
    assert len(locker.sim.control.unlock_log()) == fires
    waiting = gateway.deposits_for(other.id_hash)
    assert [d.case_number for d in waiting] == [case2, case3]
    assert [d.case_number for d in gateway.deposits_for(applicant.id_hash)] == [case1]


def test_a_load_left_open_is_found_and_cancelled_next_time(
    *,
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
    guard: StaffPinGuard,
    staff_card: StaffCard,
    scanner: SimScanner,
) -> None:
    flow = make_flow(worker, locker, gateway, reader, guard)
    log_in(flow, worker, reader)
    flow.start_loading()
    worker.pump()
    scan(flow, scanner, make_case_barcode("GA", 2026, 9))
    flow.card_read(citizen(card_reader(), 4))
    flow.choose_size("L")
    worker.pump()
    assert flow.state is StaffState.LOAD_OPEN
    flow.wipe()  # the session timed out with the bay open
    assert flow.state is StaffState.CLOSED and flow.staff_id is None
    assert flow.view.case_number is None and flow.view.recipient_name is None
    again = make_flow(worker, locker, gateway, reader, guard)
    log_in(again, worker, reader)
    again.start_loading()
    worker.pump()
    [pending] = again.view.pending_loads
    assert pending.bay_id == "A05" and pending.deposit_id is not None
    again.resume_load(pending.deposit_id)
    assert again.state is StaffState.LOAD_OPEN
    again.cancel_load()
    worker.pump()
    assert again.state is StaffState.LOAD_SCAN and again.view.pending_loads == ()
    freed = gateway.status().bay("A05")
    assert freed is not None and not freed.occupied


def test_retrieve_an_overdue_item(
    *,
    flow: StaffFlow,
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
    staff_card: StaffCard,
) -> None:
    person = citizen(card_reader(), 5)
    deposit_id, bay_id, _ = load(locker, person)
    log_in(flow, worker, reader)
    flow.show_overdue()
    worker.pump()
    assert flow.state is StaffState.OVERDUE_LIST and flow.view.overdue == ()
    flow.back_to_menu()
    locker.clock.advance(8 * 86_400)  # past the 7-day deadline
    flow.show_overdue()
    worker.pump()
    assert [d.deposit_id for d in flow.view.overdue] == [deposit_id]
    flow.retrieve(deposit_id)
    assert flow.busy == Msg.of("Opening bay…")
    worker.pump()
    assert flow.state is StaffState.RETRIEVE_OPEN
    assert flow.view.open_bay is not None and flow.view.open_bay.bay_id == bay_id
    open_door(locker, bay_id)
    flow.confirm_retrieved()
    worker.pump()
    assert flow.state is StaffState.RETRIEVE_OPEN and flow.notice is not None
    assert flow.notice.code == "door_not_closed"
    locker.sim.control.take_item(locker.board, locker.channel(bay_id))
    close_door(locker, bay_id)
    flow.confirm_retrieved()
    worker.pump()
    assert flow.state is StaffState.OVERDUE_LIST and flow.view.overdue == ()
    assert flow.notice is not None and flow.notice.code == "retrieved"
    kinds = [e["kind"] for e in locker.audit() if e["deposit_id"] == deposit_id]
    assert kinds[-3:] == ["open_intent", "open_result", "door_opened"]


def test_self_test_shows_a_printer_out_of_paper(
    *,
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    reader: SimIdentityReader,
    guard: StaffPinGuard,
    staff_card: StaffCard,
    printer: RememberingPrinter,
    scanner: SimScanner,
) -> None:
    camera = SimCamera(CameraSettings(width=640, height=480))
    voice = SimVoice(VoiceSettings(sim_chars_per_s=1000))
    test = SelfTest(
        printer=printer,
        reader=reader,
        scanner=scanner,
        camera=camera,
        locker=gateway,
        voice=voice,
    )
    flow = make_flow(worker, locker, gateway, reader, guard, printer=printer, self_test=test)
    log_in(flow, worker, reader)
    inner = printer._inner
    assert isinstance(inner, EscposTicketPrinter) and inner.sim is not None
    inner.sim.pull_paper()
    scanner.unplug()
    flow.self_test()
    assert flow.busy == Msg.of("Testing the devices…")
    worker.pump()
    assert flow.state is StaffState.SELF_TEST
    results = {r.component: r for r in flow.view.results}
    assert set(results) == {"printer", "card_reader", "scanner", "camera", "locker", "voice"}
    assert not results["printer"].ok and results["printer"].code == "printer_paper_out"
    assert isinstance(results["printer"].text, Bilingual)
    assert not results["scanner"].ok
    assert all(results[c].ok for c in ("card_reader", "camera", "locker", "voice"))
    assert results["camera"].text == Msg.of(
        "The camera took a picture ({width} x {height}).", width=640, height=480
    )
    assert [u.text for u in voice.history] == ["语音测试"]
    inner.sim.load_paper()
    scanner.plug()
    flow.self_test()
    worker.pump()
    assert all(r.ok for r in flow.view.results)
    voice.close()


def test_reprint_the_last_slip_and_lock_the_kiosk(
    *,
    flow: StaffFlow,
    worker: QueueWorker,
    reader: SimIdentityReader,
    staff_card: StaffCard,
    printer: RememberingPrinter,
    locker: InProcessLockerd,
) -> None:
    log_in(flow, worker, reader)
    flow.reprint()
    assert flow.notice is not None and flow.notice.code == "no_slip"
    ticket = QueueTicket(
        hall_name="示范政务服务中心",
        ticket_number="A023",
        category="收件号",
        business="社保医保",
        people_ahead=3,
        estimated_wait_min=12,
        issued_at=locker.clock.now(),
        qr_payload="hallkiosk:ticket:t-1",
    )
    printer.print_layout(queue_ticket_layout(ticket))  # printed earlier by another journey
    assert flow.view.can_reprint
    inner = printer._inner
    assert isinstance(inner, EscposTicketPrinter) and inner.sim is not None
    inner.sim.clear()
    flow.reprint()
    assert flow.busy == Msg.of("Printing…")
    worker.pump()
    assert flow.notice is not None and flow.notice.code == "reprinted"
    texts = [i["text"] for i in inner.sim.items if i["kind"] == "text"]
    assert "A023" in texts and "【补打】 REPRINT" in texts
    assert [i["data"] for i in inner.sim.items if i["kind"] == "qr"] == ["hallkiosk:ticket:t-1"]
    flow.lock_kiosk()
    assert flow.kiosk_lock is True and flow.ended == HandOver(JourneyKind.OUT_OF_SERVICE)
    assert flow.state is StaffState.CLOSED and flow.staff_id is None


def test_idle_wipe_forgets_the_staff_member_and_the_pin(
    flow: StaffFlow, worker: QueueWorker, reader: SimIdentityReader, staff_card: StaffCard
) -> None:
    assert flow.card_read(staff_identity(reader))
    enter(flow, PIN[:3])
    flow.wipe()
    assert flow.state is StaffState.CLOSED and flow.keypad.count == 0
    assert flow.view.staff_id is None and flow.view.entry == "○○○○"
    assert flow.ended is None


def test_logout_ends_without_evaluation(
    flow: StaffFlow, worker: QueueWorker, reader: SimIdentityReader, staff_card: StaffCard
) -> None:
    log_in(flow, worker, reader)
    flow.logout()
    assert flow.ended == Finished("staff", evaluate=False) and flow.staff_id is None
