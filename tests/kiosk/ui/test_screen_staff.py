"""The staff screen on a real StaffFlow: a real lockerd (board simulator, doors pulled and shut
through its hooks), the simulated card reader with a virtual staff card, the scanner, printer,
camera and voice simulators, driven by synthetic touches in the real Kivy window. Every page is
drawn in Chinese, English and elderly mode (screenshots kept), with no text overflowing."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from drivers.camera import CameraSettings
from drivers.camera.sim import SimCamera
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.vcard.cards import StaffCard
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter, PrinterSettings
from drivers.scanner import ScannerSettings
from drivers.scanner.formats import make_case_barcode
from drivers.scanner.sim import SimScanner
from drivers.voice import VoiceSettings
from drivers.voice.sim import SimVoice
from kiosk.flows.base import Bilingual, Msg, QueueWorker
from kiosk.flows.home import Finished
from kiosk.flows.selftest import SelfTest
from kiosk.flows.staff import (
    MappingCaseDirectory,
    RememberingPrinter,
    StaffFlow,
    StaffPinGuard,
    StaffState,
)
from kiosk.services.locker_gateway import LockerGateway, Recipient
from kiosk.ui.context import UiContext
from kiosk.ui.screens.cabinet import HIGHLIGHT
from kiosk.ui.screens.staff import SCREENS, StaffScreen
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
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.test_screen_pickup import (
    EveryMode,
    dismiss_notice,
    pixel_in,
    pump,
    show,
    tap,
    tap_digits,
    tap_tile,
)
from tests.locker.harness import InProcessLockerd

S = StaffState
PIN = "246810"


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    with running_lockerd(tmp_path, lockboard_sim, channels=12) as daemon:
        yield daemon


@pytest.fixture
def reader() -> SimIdentityReader:
    """The kiosk's reader, with the clerk's staff card on it (ten tries on the chip, so the
    kiosk's own limit of three is what locks)."""
    sim = card_reader()
    sim.present_card(StaffCard(PcscSettings().staff, staff_id="clerk7", pin=PIN, pin_tries=10))
    return sim


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


def scan(flow: StaffFlow, scanner: SimScanner, code: str) -> None:
    """The envelope under the scanner; the app hands the code to the flow on the UI thread."""
    assert scanner.scan(code)
    assert flow.code_scanned(scanner.read(timeout_s=2.0).value)


def log_in_by_touch(
    ui: KivyHarness, ctx: UiContext, flow: StaffFlow, worker: QueueWorker, reader: SimIdentityReader
) -> None:
    assert flow.card_read(reader.read(timeout_s=2.0))  # the staff card, as the reader gives it
    ui.settle()
    assert ctx.text(Msg("Please enter your staff PIN.")) in ui.texts()
    tap_digits(ui, PIN)
    assert PIN not in "".join(ui.texts())
    tap(ui, ctx, Msg("OK"))
    pump(ui, worker)
    assert flow.state is S.MENU


# -- every page in every mode ----------------------------------------------------------------


def test_every_staff_page_in_every_mode(
    *,
    ui: KivyHarness,
    ctx: UiContext,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
    printer: RememberingPrinter,
    scanner: SimScanner,
    guard: StaffPinGuard,
    feed: DoorFeed,
) -> None:
    check = EveryMode(ui, ctx)
    late = citizen(card_reader(), 11, "欧阳小红")
    load(locker, late, case="ZJ2026-1101")
    locker.clock.advance(8 * 86_400)  # that one is overdue now
    applicant = citizen(card_reader(), 12, "李小明")
    assert applicant.id_hash is not None
    left_open = locker.start_load(applicant.id_hash, size="L", case="ZJ2026-1102")  # no confirm
    feed.drain()
    camera = SimCamera(CameraSettings(width=640, height=480))
    voice = SimVoice(VoiceSettings(sim_chars_per_s=1000))
    self_test = SelfTest(
        printer=printer, reader=reader, scanner=scanner, camera=camera, locker=gateway, voice=voice
    )
    flow = StaffFlow(worker, locker.clock, gateway, reader, guard, printer=printer,
                     self_test=self_test)  # fmt: skip
    shell = show(ui, ctx, SCREENS, "staff", flow)
    check("login", Msg("Please place your staff card on the reader."))
    assert flow.card_read(applicant)  # an applicant's card: refused in plain words
    ui.settle()
    dismiss_notice(ui, ctx, shell)
    check("login-refused", Msg("Please use a staff card."), shots=False)

    assert flow.card_read(reader.read(timeout_s=2.0))
    ui.settle()
    tap_digits(ui, "1111")
    tap(ui, ctx, Msg("OK"))
    pump(ui, worker)
    dismiss_notice(ui, ctx, shell)
    check("pin", Msg.of("Wrong PIN. {tries} tries left.", tries=2))
    tap_digits(ui, PIN)
    tap(ui, ctx, Msg("OK"))
    pump(ui, worker)
    assert flow.state is S.MENU
    check("menu", Msg("Load certificates"))

    tap_tile(ui, ctx, Msg("Load certificates"))
    pump(ui, worker)
    assert flow.state is S.LOAD_SCAN
    check("load_scan", Msg.of("Bay {bay}: finish or cancel", bay=left_open["bay_id"]))
    scan(flow, scanner, make_case_barcode("GA", 2026, 21))  # no case directory: read the card
    ui.settle()
    assert flow.state is S.LOAD_RECIPIENT
    check("load_recipient", Msg("This case is not known here. Read the applicant's ID card."))
    assert flow.card_read(applicant)
    ui.settle()
    check("load_size", Msg("Medium (M)"))
    tap(ui, ctx, Msg("Medium (M)"))
    pump(ui, worker)
    assert flow.state is S.LOAD_OPEN
    bay = flow.view.open_bay
    assert bay is not None
    check("load_open", Msg("Door closed: confirm"))
    open_door(locker, bay.bay_id)
    locker.sim.control.put_item(locker.board, locker.channel(bay.bay_id))
    close_door(locker, bay.bay_id)
    feed.deliver_until(
        flow, lambda: flow.view.open_bay is not None and flow.view.open_bay.door == "closed"
    )
    ui.settle()
    tap(ui, ctx, Msg("Door closed: confirm"))
    pump(ui, worker)
    assert flow.state is S.LOAD_SCAN, (flow.notice, flow.busy, ui.texts())
    dismiss_notice(ui, ctx, shell)
    check(
        "load_scan-stored",
        Msg.of("Stored in bay {bay}. Scan the next certificate.", bay=bay.bay_id),
    )
    tap(ui, ctx, Msg("Back to menu"))

    tap_tile(ui, ctx, Msg("Overdue items"))
    pump(ui, worker)
    assert flow.state is S.OVERDUE_LIST
    check("overdue_list", Msg.of("Take out of bay {bay}", bay="A01"))
    tap_tile(ui, ctx, Msg.of("Take out of bay {bay}", bay="A01"))
    pump(ui, worker)
    assert flow.state is S.RETRIEVE_OPEN
    check("retrieve_open", Msg("Take the item out, close the door, then press Confirm."))
    open_door(locker, "A01")
    locker.sim.control.take_item(locker.board, 1)
    close_door(locker, "A01")
    tap(ui, ctx, Msg("Door closed: confirm"))
    pump(ui, worker)
    assert flow.state is S.OVERDUE_LIST
    dismiss_notice(ui, ctx, shell)
    check("overdue_list-empty", Msg("No item is overdue."), shots=False)
    tap(ui, ctx, Msg("Back to menu"))

    # self-test with the printer out of paper: a fail row, with the printer's own words
    inner = printer._inner
    assert isinstance(inner, EscposTicketPrinter) and inner.sim is not None
    inner.sim.pull_paper()
    tap_tile(ui, ctx, Msg("Device self-test"))
    pump(ui, worker)
    assert flow.state is S.SELF_TEST
    screen = shell.current
    assert isinstance(screen, StaffScreen)
    rows = screen.result_rows
    assert set(rows) == {"printer", "card_reader", "scanner", "camera", "locker", "voice"}
    printer_row = rows["printer"]
    assert printer_row.name.text == "打印机" and printer_row.badge.text == "失败"
    assert isinstance(printer_row.result.text, Bilingual)
    assert (
        printer_row.message.text == printer_row.result.text.zh and "纸" in printer_row.message.text
    )
    assert all(rows[c].badge.text == "通过" for c in rows if c != "printer")
    assert "6台设备中有1台未通过。" in ui.texts()
    check("self_test", Msg("Fail"))
    badge = screen.result_rows["printer"].badge  # the page as it was in that shot
    with Image.open(check.shots["self_test", "zh"]) as image:  # the badge is red on screen
        red = pixel_in(image, badge, (*badge.pos, *badge.size))
    assert red == tuple(round(c * 255) for c in ctx.theme.palette.danger[:3])
    inner.sim.load_paper()
    tap(ui, ctx, Msg("Test again"))
    pump(ui, worker)
    assert screen.result_rows["printer"].badge.text == "通过"
    assert "全部设备正常。" in ui.texts()
    voice.close()
    tap(ui, ctx, Msg("Back to menu"))
    tap(ui, ctx, Msg("Log out"))
    assert flow.ended == Finished("staff", evaluate=False)

    # three wrong PINs lock staff login at this kiosk for a while, whatever card comes next
    flow = StaffFlow(worker, locker.clock, gateway, reader, guard)
    shell.show("staff", flow)
    assert flow.card_read(reader.read(timeout_s=2.0))
    for _ in range(3):
        for digit in "1111":
            flow.press(digit)
        flow.confirm()
        worker.pump()
    ui.settle()
    assert flow.state is S.PIN_LOCKED
    dismiss_notice(ui, ctx, shell)
    check("pin_locked", Msg("Staff login is locked"))
    assert check.pages == 14
    check.assert_clean()


# -- the clerk's evening: load after load ------------------------------------------------------


def test_a_clerk_loads_a_certificate_by_touch_and_is_back_at_the_scanner(
    *,
    ui: KivyHarness,
    ctx: UiContext,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
    scanner: SimScanner,
    guard: StaffPinGuard,
    feed: DoorFeed,
) -> None:
    applicant = citizen(card_reader(), 13, "李小明")
    assert applicant.id_hash and applicant.name_masked
    first, second = (make_case_barcode("GA", 2026, n) for n in (31, 32))
    cases = MappingCaseDirectory(
        {c: Recipient(applicant.id_hash, applicant.name_masked) for c in (first, second)}
    )
    load(locker, citizen(card_reader(), 14), size="M", case="ZJ2026-1401")  # A03 taken
    feed.drain()
    flow = StaffFlow(worker, locker.clock, gateway, reader, guard, cases=cases)
    shell = show(ui, ctx, SCREENS, "staff", flow)
    screen = shell.current
    assert isinstance(screen, StaffScreen)
    assert "请将工作证放在读卡区。" in ui.texts()
    log_in_by_touch(ui, ctx, flow, worker, reader)
    assert "工作人员：王*作" in ui.texts()
    tap_tile(ui, ctx, Msg("Load certificates"))
    pump(ui, worker)
    assert "请扫描证件袋上的办件条码。" in ui.texts()

    scan(flow, scanner, first)
    pump(ui, worker)  # the case directory knows the recipient
    assert flow.state is S.LOAD_SIZE
    assert "收件人：李*明" in ui.texts()
    tap(ui, ctx, Msg("Medium (M)"))
    pump(ui, worker)
    assert flow.state is S.LOAD_OPEN
    assert "A04号柜门已打开" in ui.texts()  # the next free M
    cabinet = screen.cabinet
    assert cabinet is not None and cabinet.highlighted == "A04"
    assert [c.bay_id for c in cabinet.cells.values() if c.fill.rgba == list(HIGHLIGHT)] == ["A04"]
    assert "柜门已解锁。" in ui.texts()

    # the clerk opens the door, puts the certificate in and shuts it
    open_door(locker, "A04")
    locker.sim.control.put_item(locker.board, 4)
    feed.deliver_until(
        flow, lambda: flow.view.open_bay is not None and flow.view.open_bay.door == "open"
    )
    ui.settle()
    assert "柜门已打开。" in ui.texts()
    close_door(locker, "A04")
    feed.deliver_until(
        flow, lambda: flow.view.open_bay is not None and flow.view.open_bay.door == "closed"
    )
    ui.settle()
    assert "柜门已关闭。" in ui.texts()
    tap(ui, ctx, Msg("Door closed: confirm"))
    pump(ui, worker)
    assert flow.state is S.LOAD_SCAN  # straight back to the scanner for the next envelope
    assert "已存入A04号柜格。请扫描下一份证件。" in ui.texts()
    assert "下一件的柜格：中格（M）" in ui.texts()
    assert f"办件号{first}：A04号柜格" in ui.texts()
    [stored] = gateway.deposits_for(applicant.id_hash)
    assert (stored.case_number, stored.bay_id) == (first, "A04")

    # the size is kept: the next envelope opens a bay at once (the notice need not be closed)
    scan(flow, scanner, second)
    pump(ui, worker)
    assert flow.state is S.LOAD_OPEN and "A09号柜门已打开" in ui.texts()
    tap(ui, ctx, Msg("Cancel this load"))
    pump(ui, worker)
    assert flow.state is S.LOAD_SCAN
    assert "已取消存件，A09号柜格已空出。" in ui.texts()
