"""Every journey end to end through the whole kiosk, by synthetic touch (issue 6, point 7).

The assembled kiosk (kiosk/assembly.py: the embedded hall, the simulated card reader, scanner,
printer and document camera from the packaged defaults; lockerd in process with the lock-board
simulator on a pty where a locker is needed), the session router and every screen of the app in
the real window. Each journey starts on the home page with a tap on its tile (staff mode with
the staff card, as on the kiosk); every step after that is a tap on the window, a card on the
simulated reader, a code at the simulated scanner, a document under the simulated camera or a
door pulled at the simulated cabinet. Cards, scans and lockerd's door events reach the session
only through ``post_to_ui``, and jobs finish on ``KivyWorker``: the test only steps the Kivy
loop and waits for what the applicant would see.

Each test checks what the applicant sees (texts in the window) and what the hardware, the hall
or lockerd did. Screenshots of the key pages go to the test artefacts.
"""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.camera.sim import SimCamera
from drivers.identity import SimSettings
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import SYNTHETIC_STAFF_ID, SYNTHETIC_STAFF_PIN, CitizenCard
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter
from drivers.printer.sim.model import SimPrinter
from drivers.scanner.formats import make_booking_code, make_case_barcode, make_receipt_payload
from drivers.scanner.sim import SimScanner
from drivers.voice.sim import SimVoice
from hall.service import Hall
from hallkiosk.clock import ManualClock
from hallkiosk.privacy import IdentityHasher
from kiosk.assembly import Kiosk
from kiosk.flows.base import Bilingual, Msg, Text
from kiosk.flows.checkin import CheckinState
from kiosk.flows.evaluation import EvaluationState
from kiosk.flows.home import JourneyKind, TileId
from kiosk.flows.pickup import PickupState
from kiosk.flows.prereview import PreReviewState
from kiosk.flows.staff import StaffState
from kiosk.flows.status import STATE_TEXT, StatusState
from kiosk.flows.ticket import TicketState
from kiosk.i18n import Language
from kiosk.ui.context import UiContext
from kiosk.ui.screens.cabinet import HIGHLIGHT, CabinetPicture
from kiosk.ui.shell import KioskShell
from kiosk.ui.widgets import NoticeBox
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.conftest import (
    YOUNG,
    Booked,
    appointments_csv,
    import_appointments,
)
from tests.kiosk.flows.locker_fixtures import (
    close_door,
    load,
    open_door,
    running_lockerd,
    wrong_password,
)
from tests.kiosk.ui.app_fixtures import (  # noqa: F401  (fixtures are found by name)
    assembled,
    clock,
    kiosk,
    mount_app,
    write_site,
)
from tests.kiosk.ui.harness import KivyHarness
from tests.locker.harness import InProcessLockerd

BOOKING = make_booking_code("20261123002")  # YOUNG, 09:30: in the check-in window at 09:00


# -- what the applicant sees and touches -------------------------------------------------------


def flat(text: str) -> str:
    """Text without whitespace: the pages break their lines themselves."""
    return "".join(text.split())


def shown(ui: KivyHarness, ctx: UiContext, text: Text | str) -> bool:
    """``text`` (translated to the window's language) is part of a label on screen."""
    wanted = flat(text if isinstance(text, str) else ctx.text(text))
    return any(wanted in flat(t) for t in ui.texts())


def see(ui: KivyHarness, ctx: UiContext, text: Text | str) -> None:
    assert shown(ui, ctx, text), f"{text!r} is not on screen: {ui.texts()}"


def tap(ui: KivyHarness, ctx: UiContext, text: Text) -> None:
    """Tap the button (or tile) showing ``text`` in the window's language."""
    ui.tap_text(ctx.text(text))


def tap_containing(ui: KivyHarness, part: str) -> None:
    """Tap the frontmost label whose text contains ``part`` (a tile with a note under it)."""
    labels = [w for w in ui.visible_labels() if part in w.text]
    assert labels, f"nothing on screen contains {part!r}: {ui.texts()}"
    ui.tap(labels[-1])


def tap_digits(ui: KivyHarness, digits: str) -> None:
    for digit in digits:
        ui.tap_text(digit)


def notice_box(shell: KioskShell) -> NoticeBox | None:
    screen = shell.current
    box = screen.notice_box if screen is not None else None
    return box if box is not None and box.parent is not None else None


def dismiss_notice(ui: KivyHarness, shell: KioskShell) -> None:
    box = notice_box(shell)
    assert box is not None, "no notice on screen"
    ui.tap(box.ok)
    ui.wait_for(lambda: notice_box(shell) is None, "the notice box to go")


def journey(kiosk: Kiosk) -> Any:
    """The flow on screen (the tests read its state and view, as the screen does)."""
    return kiosk.session.journey


def wait_state(ui: KivyHarness, kiosk: Kiosk, state: object, what: str = "") -> Any:
    """Step the app until the journey on screen is in ``state`` and idle, and its page drawn."""

    def there() -> bool:
        flow = journey(kiosk)
        return flow is not None and flow.state is state and flow.busy is None

    ui.wait_for(there, lambda: f"{what or state} (now {getattr(journey(kiosk), 'state', None)})")
    ui.settle()
    return journey(kiosk)


def wait_home(ui: KivyHarness, kiosk: Kiosk, shell: KioskShell) -> None:
    ui.wait_for(
        lambda: kiosk.session.active is JourneyKind.HOME and shell.manager.current == "home",
        "the home page",
    )
    ui.settle()


def start_tile(ui: KivyHarness, ctx: UiContext, kiosk: Kiosk, tile: TileId) -> None:
    """On the home page, tap the tile of ``tile`` (enabled: its parts are up)."""
    session = kiosk.session
    ui.wait_for(
        lambda: any(t.id is tile and t.enabled for t in session.tiles),
        lambda: f"the {tile} tile to be enabled: {session.tiles}",
    )
    ui.settle()
    title = next(t.title for t in session.tiles if t.id is tile)
    tap(ui, ctx, title)
    ui.wait_for(lambda: session.active.value == tile.value, f"the {tile} journey")


# -- the simulated devices of the assembled kiosk ----------------------------------------------


def reader_of(kiosk: Kiosk) -> SimIdentityReader:
    reader = kiosk.devices.identity
    assert isinstance(reader, SimIdentityReader)
    return reader


def printer_of(kiosk: Kiosk) -> SimPrinter:
    printer = kiosk.devices.printer
    assert isinstance(printer, EscposTicketPrinter) and printer.sim is not None
    return printer.sim


def scanner_of(kiosk: Kiosk) -> SimScanner:
    scanner = kiosk.devices.scanner
    assert isinstance(scanner, SimScanner)
    return scanner


def camera_of(kiosk: Kiosk) -> SimCamera:
    camera = kiosk.devices.camera
    assert isinstance(camera, SimCamera)
    return camera


def voice_of(kiosk: Kiosk) -> SimVoice:
    voice = kiosk.devices.voice
    assert isinstance(voice, SimVoice)
    return voice


def hall_of(kiosk: Kiosk) -> Hall:
    hall = kiosk.runtime.embedded_hall
    assert hall is not None
    return hall


def citizen_card(number: str, name: str = "张小三") -> CitizenCard:
    return CitizenCard(PcscSettings().citizen, id_number=number, name=name)


def printed_texts(printer: SimPrinter) -> list[str]:
    return [str(i["text"]) for i in printer.items if i["kind"] == "text"]


def printed_qr(printer: SimPrinter) -> list[str]:
    return [str(i["data"]) for i in printer.items if i["kind"] == "qr"]


# -- 1. appointment check-in ---------------------------------------------------------------------


def book(kiosk: Kiosk, tmp_path: Path) -> Hall:
    """The booking platform's export for today, imported into the kiosk's embedded hall."""
    hall = hall_of(kiosk)
    import_appointments(
        hall, appointments_csv(tmp_path / "appointments.csv", (Booked(BOOKING, YOUNG, "09:30"),))
    )
    return hall


def assert_checked_in(ui: KivyHarness, ctx: UiContext, kiosk: Kiosk, hall: Hall) -> str:
    """The priority ticket the hall issued is on screen and came out of the printer."""
    flow = journey(kiosk)
    shown_ticket = flow.view.ticket
    assert shown_ticket is not None
    label: str = shown_ticket.label
    ticket = hall.queue.get(shown_ticket.ticket_id)
    assert (ticket.label, ticket.priority) == (label, "appointment")
    assert hall.appointments.get(BOOKING).status == "checked_in"
    see(ui, ctx, label)
    see(ui, ctx, Msg.of("Place: {place}", place="一楼3号窗口"))
    see(
        ui,
        ctx,
        Msg.of(
            "You are checked in. Your number is {ticket}. Please take your ticket.", ticket=label
        ),
    )
    printer = printer_of(kiosk)
    texts = printed_texts(printer)
    assert label in texts and "预约收件号" in texts, texts
    assert printed_qr(printer) == [f"hallkiosk:ticket:{shown_ticket.ticket_id}"]
    assert label.encode() in printer.received  # the ESC/POS bytes sent to the printer
    return label


def test_check_in_with_the_id_card_prints_a_priority_ticket(
    ui: KivyHarness, ctx: UiContext, kiosk: Kiosk, tmp_path: Path
) -> None:
    hall = book(kiosk, tmp_path)
    shell = mount_app(ui, ctx, kiosk)
    start_tile(ui, ctx, kiosk, TileId.CHECKIN)
    wait_state(ui, kiosk, CheckinState.IDENTIFY)
    see(ui, ctx, Msg("① ID card: place it on the card reader."))
    ui.screenshot("identify")

    reader = reader_of(kiosk)
    reader.present_card(citizen_card(YOUNG))
    wait_state(ui, kiosk, CheckinState.DONE, "checked in")
    reader.remove_card()
    label = assert_checked_in(ui, ctx, kiosk, hall)
    ui.screenshot("checked-in")

    # Done: the session offers the evaluation; skipping it goes home, the number gone
    tap(ui, ctx, Msg("Done"))
    wait_state(ui, kiosk, EvaluationState.CHOOSE_LEVEL)
    assert shell.manager.current == "evaluation"
    tap(ui, ctx, Msg("Skip"))
    wait_home(ui, kiosk, shell)
    assert not shown(ui, ctx, label)
    see(ui, ctx, Msg("Please choose a service"))


def test_check_in_with_the_booking_number_on_the_keypad(
    ui: KivyHarness, ctx: UiContext, kiosk: Kiosk, tmp_path: Path
) -> None:
    hall = book(kiosk, tmp_path)
    shell = mount_app(ui, ctx, kiosk)
    start_tile(ui, ctx, kiosk, TileId.CHECKIN)
    wait_state(ui, kiosk, CheckinState.IDENTIFY)
    tap(ui, ctx, Msg("Enter the booking number"))
    wait_state(ui, kiosk, CheckinState.ENTER_CODE)
    assert BOOKING.startswith("YY")
    digits = BOOKING.removeprefix("YY")
    tap_digits(ui, digits[:-1])
    see(ui, ctx, "YY" + digits[:-1])  # the entry box follows the keys
    tap(ui, ctx, Msg("OK"))  # one digit short: the flow says so, nothing is looked up
    ui.wait_for(lambda: notice_box(shell) is not None, "the incomplete code's notice")
    see(ui, ctx, Msg.of("Please enter all {digits} digits.", digits=12))
    dismiss_notice(ui, shell)
    tap_digits(ui, digits[-1])
    ui.screenshot("code-typed")
    tap(ui, ctx, Msg("OK"))
    wait_state(ui, kiosk, CheckinState.DONE, "checked in")
    assert_checked_in(ui, ctx, kiosk, hall)
    tap(ui, ctx, Msg("Done"))
    wait_state(ui, kiosk, EvaluationState.CHOOSE_LEVEL)


# -- 2. pre-review -------------------------------------------------------------------------------


def test_pre_review_captures_every_item_and_the_hall_has_the_submission(
    ui: KivyHarness, ctx: UiContext, kiosk: Kiosk
) -> None:
    hall = hall_of(kiosk)
    camera = camera_of(kiosk)
    shell = mount_app(ui, ctx, kiosk)
    start_tile(ui, ctx, kiosk, TileId.PREREVIEW)
    flow = wait_state(ui, kiosk, PreReviewState.CHOOSE_MATTER)
    see(ui, ctx, Msg("Please choose the matter you want to apply for."))
    tap_containing(ui, "城乡居民养老保险参保登记")
    wait_state(ui, kiosk, PreReviewState.GUIDE)
    see(ui, ctx, Msg("Materials to submit (收件清单)"))
    for item in ("居民身份证", "户口簿", "银行卡"):
        see(ui, ctx, item)
    tap(ui, ctx, Msg("Start taking pictures"))

    kept: dict[str, bytes] = {}  # item -> the picture the applicant chose
    for number, (item_id, name) in enumerate(
        (("id_card", "居民身份证"), ("hukou", "户口簿"), ("bank_card", "银行卡")), start=1
    ):
        wait_state(ui, kiosk, PreReviewState.CAPTURE)
        see(ui, ctx, Msg.of("Item {number} of {total}", number=number, total=3))
        see(ui, ctx, name)
        if number == 1:  # the first picture comes out blurred and crooked: taken again
            camera.set_document(name, noise=48.0, skew_deg=20.0)
            tap(ui, ctx, Msg("Take picture"))
            blurred = wait_state(ui, kiosk, PreReviewState.PREVIEW).view.preview
            assert blurred is not None
            ui.screenshot("preview-blurred")
            tap(ui, ctx, Msg("Take again"))
            wait_state(ui, kiosk, PreReviewState.CAPTURE)
        camera.set_document(name)
        tap(ui, ctx, Msg("Take picture"))
        photo = wait_state(ui, kiosk, PreReviewState.PREVIEW).view.preview
        assert photo is not None
        see(ui, ctx, Msg("Is the picture clear? Use it, or take it again."))
        kept[item_id] = photo.jpeg
        tap(ui, ctx, Msg("Use this picture"))
    assert kept["id_card"] != blurred.jpeg
    assert camera.frame_number == 4

    wait_state(ui, kiosk, PreReviewState.PHONE)
    tap_digits(ui, "13912345678")
    see(ui, ctx, "13912345678")
    tap(ui, ctx, Msg("OK"))
    wait_state(ui, kiosk, PreReviewState.IDENTIFY)
    see(ui, ctx, Msg("Please place your ID card on the reader."))
    reader = reader_of(kiosk)
    reader.present_card(citizen_card(YOUNG, "欧阳小红"))
    wait_state(ui, kiosk, PreReviewState.CONFIRM)
    reader.remove_card()
    see(ui, ctx, "139****5678")
    see(ui, ctx, "欧**红")
    ui.screenshot("confirm")
    printer = printer_of(kiosk)
    printer.clear()
    tap(ui, ctx, Msg("Submit"))
    flow = wait_state(ui, kiosk, PreReviewState.DONE, "the receipt")
    receipt = flow.view.receipt
    assert receipt is not None and receipt.receipt_no is not None
    receipt_no = receipt.receipt_no
    see(ui, ctx, receipt_no)
    see(ui, ctx, Msg("Submitted. Please take your receipt."))
    ui.screenshot("receipt")
    # the receipt came out of the printer with its QR, which the scanner reads back
    assert printed_qr(printer) == [make_receipt_payload(receipt_no)]
    assert any(receipt_no in t for t in printed_texts(printer))

    # the hall has the submission: the department's look-up finds it, with every picture
    [found] = hall.handle_request("kiosk-01", "prereview.status", {"receipt_no": receipt_no})[
        "submissions"
    ]
    assert found["matter_code"] == "SS-0101" and found["state"] == "pending"
    submission = hall.prereview.get(receipt_no)
    assert (submission.phone_masked, submission.name_masked) == ("139****5678", "欧**红")
    stored = {
        f["item_id"]: hall.intake.file_path(f["upload_id"]).read_bytes() for f in submission.files
    }
    assert stored == kept  # the retaken picture, not the blurred one
    spooled = [f for f in kiosk.settings.spool_dir.rglob("*") if f.is_file()]
    assert spooled == []  # the kiosk keeps no copy once the hall has them

    tap(ui, ctx, Msg("Finish"))
    wait_state(ui, kiosk, EvaluationState.CHOOSE_LEVEL)
    tap(ui, ctx, Msg("Skip"))
    wait_home(ui, kiosk, shell)
    assert not shown(ui, ctx, receipt_no)

    # the receipt's QR under the scanner on the home page: the case status shows it pending
    [qr] = printed_qr(printer)
    assert scanner_of(kiosk).scan(qr)
    ui.wait_for(
        lambda: (
            kiosk.session.active is JourneyKind.STATUS
            and journey(kiosk).state in (StatusState.LIST, StatusState.DETAIL)
            and journey(kiosk).busy is None
        ),
        "the case status",
    )
    ui.settle()
    see(ui, ctx, receipt_no)
    see(ui, ctx, STATE_TEXT["pending"])
    ui.screenshot("status")
    tap(ui, ctx, Msg("Done"))
    wait_home(ui, kiosk, shell)


# -- 5. evaluation after a service ---------------------------------------------------------------


def take_ticket(ui: KivyHarness, ctx: UiContext, kiosk: Kiosk) -> str:
    """From home: the first area, its first ticket type, no card; the label on screen."""
    start_tile(ui, ctx, kiosk, TileId.TICKET)
    flow = wait_state(ui, kiosk, TicketState.CHOOSE_AREA)
    tap(ui, ctx, flow.view.areas[0].name)
    flow = wait_state(ui, kiosk, TicketState.CHOOSE_TYPE)
    tap(ui, ctx, flow.view.types[0].text)
    wait_state(ui, kiosk, TicketState.IDENTIFY)
    tap(ui, ctx, Msg("Continue without a card"))
    flow = wait_state(ui, kiosk, TicketState.DONE, "the ticket")
    label: str = flow.view.ticket.label
    see(ui, ctx, label)
    assert label in printed_texts(printer_of(kiosk))
    return label


def evaluations(hall: Hall) -> list[tuple[str, str, int, list[str]]]:
    rows = hall.store.all("SELECT service, reference, level, reasons FROM evaluations")
    return [(r["service"], r["reference"], r["level"], json.loads(r["reasons"])) for r in rows]


def test_a_bad_rating_after_a_ticket_needs_a_reason_and_the_hall_stores_it(
    ui: KivyHarness, ctx: UiContext, kiosk: Kiosk
) -> None:
    hall = hall_of(kiosk)
    shell = mount_app(ui, ctx, kiosk)
    label = take_ticket(ui, ctx, kiosk)
    ticket_id = journey(kiosk).view.ticket.ticket_id
    tap(ui, ctx, Msg("Done"))

    # the session offers 好差评 about that ticket
    flow = wait_state(ui, kiosk, EvaluationState.CHOOSE_LEVEL)
    assert (flow.service, flow.reference) == ("ticket", ticket_id)
    assert shell.manager.current == "evaluation"
    see(ui, ctx, Msg("How satisfied are you with this service?"))
    assert not shown(ui, ctx, label)
    tap(ui, ctx, Msg("Very dissatisfied"))
    wait_state(ui, kiosk, EvaluationState.CHOOSE_REASONS)
    see(ui, ctx, Msg("Please tell us what went wrong."))
    see(ui, ctx, Msg("Choose at least one."))
    # submitted without a reason: refused, nothing recorded
    tap(ui, ctx, Msg("Submit"))
    ui.wait_for(lambda: notice_box(shell) is not None, "the missing reason's notice")
    see(ui, ctx, Msg("Please choose at least one reason."))
    ui.screenshot("reason-needed")
    dismiss_notice(ui, shell)
    assert evaluations(hall) == []
    tap(ui, ctx, Msg("I waited too long"))
    ui.wait_for(lambda: "long_wait" in journey(kiosk).view.chosen, "the reason ticked")
    ui.settle()
    see(ui, ctx, Msg.of("✓ {reason}", reason=Msg("I waited too long")))
    ui.screenshot("reason-chosen")
    tap(ui, ctx, Msg("Submit"))
    wait_state(ui, kiosk, EvaluationState.THANKS)
    see(ui, ctx, Msg("Thank you for your evaluation."))
    ui.wait_for(lambda: evaluations(hall), "the rating at the hall")
    assert evaluations(hall) == [("ticket", ticket_id, 1, ["long_wait"])]
    tap(ui, ctx, Msg("Done"))
    wait_home(ui, kiosk, shell)


def tile_columns(ui: KivyHarness, ctx: UiContext, areas: Any) -> list[int]:
    """Where each area's tile sits across the window (its label's centre, in pixels)."""
    columns = []
    for area in areas:
        label = ui.find_text(ctx.text(area.name))
        columns.append(round(label.to_window(*label.center)[0]))
    return columns


# -- 6. English and 大字版 mid-journey -------------------------------------------------------------


def test_english_and_large_text_switched_by_touch_in_the_middle_of_a_ticket(
    ui: KivyHarness, ctx: UiContext, kiosk: Kiosk
) -> None:
    session = kiosk.session
    shell = mount_app(ui, ctx, kiosk)
    start_tile(ui, ctx, kiosk, TileId.TICKET)
    flow = wait_state(ui, kiosk, TicketState.CHOOSE_AREA)
    prompt = flow.prompt
    assert prompt is not None
    zh_prompt, en_prompt = ctx.text(prompt), ctx.translations[Language.EN].text(prompt)
    see(ui, ctx, zh_prompt)
    area = flow.view.areas[0].name
    assert isinstance(area, Bilingual)
    see(ui, ctx, area.zh)
    standard_font = shell.title.font_size
    assert len(set(tile_columns(ui, ctx, flow.view.areas))) > 1  # tiles side by side

    ui.tap_text("English")
    ui.wait_for(lambda: session.language == "en" and ctx.lang is Language.EN, "English")
    ui.settle()
    see(ui, ctx, en_prompt)
    see(ui, ctx, area.en)
    see(ui, ctx, "24-hour self-service")
    assert not shown(ui, ctx, zh_prompt) and not shown(ui, ctx, area.zh)
    assert "中文" in ui.texts()  # the switch back is labelled in its language
    ui.screenshot("areas-en")

    ui.tap_text("Large text")
    ui.wait_for(lambda: session.elderly and ctx.elderly, "large text")
    ui.settle()
    assert "Standard text" in ui.texts() and "Large text" not in ui.texts()
    assert shell.title.font_size > standard_font
    assert len(set(tile_columns(ui, ctx, journey(kiosk).view.areas))) == 1  # one column
    see(ui, ctx, en_prompt)
    # 大字版 also speaks the page's prompt, in the language on screen
    said = [(u.text, u.lang) for u in voice_of(kiosk).history]
    assert said == [(en_prompt, "en")], said
    ui.screenshot("areas-en-large")

    # the journey goes on in English and in large text
    tap(ui, ctx, area)
    flow = wait_state(ui, kiosk, TicketState.CHOOSE_TYPE)
    tap(ui, ctx, flow.view.types[0].text)
    wait_state(ui, kiosk, TicketState.IDENTIFY)
    ui.tap_text("Continue without a card")
    flow = wait_state(ui, kiosk, TicketState.DONE, "the ticket")
    label = flow.view.ticket.label
    see(ui, ctx, label)
    see(ui, ctx, ctx.translations[Language.EN].text(flow.prompt))
    ui.screenshot("ticket-en-large")

    # the next person starts in Chinese and standard text
    ui.tap_text("Done")
    wait_state(ui, kiosk, EvaluationState.CHOOSE_LEVEL)
    ui.tap_text("Skip")
    wait_home(ui, kiosk, shell)
    assert (session.language, session.elderly) == ("zh", False)
    assert (ctx.lang, ctx.elderly) == (Language.ZH_CN, False)
    see(ui, ctx, Msg("Please choose a service"))
    assert shown(ui, ctx, "取号")
    assert "English" in ui.texts() and "大字版" in ui.texts()


# -- 3 and 4. the locker: pickup and staff load --------------------------------------------------


@dataclass
class Cabinet:
    """A cabinet with a screen: lockerd with its lock board (simulated, on a pty) and the kiosk
    assembled to reach it through ``[kiosk.locker]``."""

    locker: InProcessLockerd
    kiosk: Kiosk
    hasher: IdentityHasher  # the kiosk's (and its hall's) identity key

    def identity(self, number: str, name: str) -> Identity:
        """The card as the kiosk reads it, read on a reader of the clerk's desk."""
        desk = SimIdentityReader(SimSettings(), PcscSettings(), self.hasher)
        try:
            desk.present_card(citizen_card(number, name))
            return desk.read(timeout_s=2.0)
        finally:
            desk.close()

    def bay(self, bay_id: str) -> dict[str, Any]:
        bays = self.locker.client.call("status")["bays"]
        found: dict[str, Any] = next(b for b in bays if b["bay_id"] == bay_id)
        return found


@pytest.fixture
def cabinet(
    tmp_path: Path, clock: ManualClock, lockboard_sim: LockboardSimFactory
) -> Iterator[Cabinet]:
    (tmp_path / "locker").mkdir()
    with running_lockerd(tmp_path / "locker", lockboard_sim) as locker:
        socket_path = json.dumps(str(locker.settings.socket_path))
        extra = f"[kiosk.locker]\nenabled = true\nsocket_path = {socket_path}\n"
        with assembled(write_site(tmp_path / "kiosk", extra), clock) as made:
            yield Cabinet(locker, made, IdentityHasher.from_file(made.settings.identity_key_path))


def cabinet_on_screen(shell: KioskShell) -> CabinetPicture:
    screen = shell.current
    picture = getattr(screen, "cabinet", None)
    assert isinstance(picture, CabinetPicture), f"no cabinet picture on {screen}"
    return picture


def test_pickup_two_wrong_passwords_then_the_bay_opens_until_its_door_is_shut(
    ui: KivyHarness, ctx: UiContext, cabinet: Cabinet
) -> None:
    kiosk, locker = cabinet.kiosk, cabinet.locker
    person = cabinet.identity(YOUNG, "张小三")
    deposit_id, bay_id, password = load(locker, person, size="M", case="ZJ2026-0402")
    assert bay_id == "A03"
    fired = len(locker.sim.control.unlock_log())
    shell = mount_app(ui, ctx, kiosk)
    start_tile(ui, ctx, kiosk, TileId.PICKUP)
    wait_state(ui, kiosk, PickupState.IDENTIFY)
    see(ui, ctx, Msg("Please place your ID card on the reader."))

    reader = reader_of(kiosk)
    reader.present_card(citizen_card(YOUNG, "张小三"))
    wait_state(ui, kiosk, PickupState.PASSWORD)
    reader.remove_card()
    see(ui, ctx, Msg("Please enter your 6-digit pickup password."))
    for left in (4, 3):
        tap_digits(ui, wrong_password(password))
        assert "●●●●●●" in ui.texts() and wrong_password(password) not in "".join(ui.texts())
        tap(ui, ctx, Msg("OK"))
        ui.wait_for(lambda: notice_box(shell) is not None, "lockerd's answer")
        see(ui, ctx, f"取件密码错误，还可以尝试 {left} 次。")  # lockerd's words, in a box
        if left == 4:
            ui.screenshot("wrong-password")
        dismiss_notice(ui, shell)
        see(ui, ctx, Msg.of("Wrong password. {tries} tries left.", tries=left))  # and the page
        assert journey(kiosk).state is PickupState.PASSWORD
    assert len(locker.sim.control.unlock_log()) == fired  # no door opened for a guess

    tap_digits(ui, password)
    tap(ui, ctx, Msg("OK"))
    wait_state(ui, kiosk, PickupState.OPEN, "the bay open")
    see(ui, ctx, Msg.of("Bay {bay} is open", bay="A03"))
    fires = locker.sim.control.unlock_log()[fired:]
    assert [(f.board, f.channel) for f in fires] == [(locker.board, locker.channel("A03"))]
    picture = cabinet_on_screen(shell)
    assert picture.highlighted == "A03" and picture.blinking
    lit = [c.bay_id for c in picture.cells.values() if c.fill.rgba == list(HIGHLIGHT)]
    assert lit == ["A03"]
    ui.screenshot("bay-open")

    # the applicant pulls the door: lockerd's event reaches the screen, the bay stays lit
    open_door(locker, bay_id)
    ui.wait_for(lambda: journey(kiosk).view.open_bay.door == "open", "the door open on screen")
    ui.settle()
    see(ui, ctx, Msg("The door is open. Take your item, then close the door."))
    assert cabinet_on_screen(shell) is picture and picture.highlighted == "A03"
    assert picture.blinking
    locker.sim.control.take_item(locker.board, locker.channel(bay_id))
    close_door(locker, bay_id)
    wait_state(ui, kiosk, PickupState.DONE, "the door shut")
    assert not picture.blinking  # the open page went with its highlight
    see(ui, ctx, Msg("Thank you. Please take your ID card with you."))
    ui.screenshot("collected")
    assert person.id_hash is not None and kiosk.locker is not None
    assert kiosk.locker.deposits_for(person.id_hash) == []  # nothing waits any more
    bay = cabinet.bay(bay_id)
    assert (bay["door"], bay["occupied"], bay["deposit_id"]) == ("closed", False, None)
    # lockerd's audit: the two guesses refused, then one opening for this pickup
    refused = [e["detail"]["attempts_left"] for e in locker.audit("pickup_refused")]
    assert refused == [4, 3]
    [*_, opened] = locker.audit("open_intent")
    assert (opened["bay_id"], opened["deposit_id"], opened["detail"]["purpose"]) == (
        bay_id,
        deposit_id,
        "pickup",
    )

    tap(ui, ctx, Msg("Finish"))
    flow = wait_state(ui, kiosk, EvaluationState.CHOOSE_LEVEL)
    assert (flow.service, flow.reference) == ("pickup", str(deposit_id))
    tap(ui, ctx, Msg("Skip"))
    wait_home(ui, kiosk, shell)


def test_staff_load_by_card_pin_scan_and_size_until_the_deposit_is_in_lockerd(
    ui: KivyHarness, ctx: UiContext, cabinet: Cabinet
) -> None:
    kiosk, locker = cabinet.kiosk, cabinet.locker
    case = make_case_barcode("GA", 2026, 31)
    shell = mount_app(ui, ctx, kiosk)
    ui.wait_for(lambda: all(t.enabled for t in kiosk.session.tiles), "every tile on (lockerd up)")
    # the clerk's staff card on the home page starts staff mode
    reader = reader_of(kiosk)
    reader.present_card("staff")
    wait_state(ui, kiosk, StaffState.PIN)
    assert shell.manager.current == "staff"
    see(ui, ctx, Msg("Please enter your staff PIN."))
    tap_digits(ui, SYNTHETIC_STAFF_PIN)
    assert "●●●●●●" in ui.texts()  # the PIN is never shown
    assert not any(SYNTHETIC_STAFF_PIN in t for t in ui.texts() if len(t) > 1)
    tap(ui, ctx, Msg("OK"))  # checked on the card in the reader
    wait_state(ui, kiosk, StaffState.MENU)
    see(ui, ctx, Msg("Staff menu"))
    tap(ui, ctx, Msg("Load certificates"))
    wait_state(ui, kiosk, StaffState.LOAD_SCAN)
    see(ui, ctx, Msg("Scan the case barcode on the certificate envelope."))

    # the envelope under the scanner; the case is unknown here, so the applicant's card
    assert scanner_of(kiosk).scan(case)
    wait_state(ui, kiosk, StaffState.LOAD_RECIPIENT)
    see(ui, ctx, Msg("This case is not known here. Read the applicant's ID card."))
    reader.present_card(citizen_card(YOUNG, "张小三"))
    wait_state(ui, kiosk, StaffState.LOAD_SIZE)
    reader.remove_card()
    see(ui, ctx, "张*三")
    ui.screenshot("size")
    fired = len(locker.sim.control.unlock_log())
    tap(ui, ctx, Msg("Medium (M)"))
    flow = wait_state(ui, kiosk, StaffState.LOAD_OPEN, "a bay open for the load")
    bay_id = flow.view.open_bay.bay_id
    assert bay_id == "A03"  # the first free M
    see(ui, ctx, Msg.of("Bay {bay} is open", bay=bay_id))
    fires = locker.sim.control.unlock_log()[fired:]
    assert [(f.board, f.channel) for f in fires] == [(locker.board, locker.channel(bay_id))]
    picture = cabinet_on_screen(shell)
    assert picture.highlighted == bay_id
    ui.screenshot("bay-open")

    # the clerk puts the certificate in and shuts the door, at the cabinet
    open_door(locker, bay_id)
    locker.sim.control.put_item(locker.board, locker.channel(bay_id))
    close_door(locker, bay_id)
    ui.wait_for(lambda: journey(kiosk).view.open_bay.door == "closed", "the door shut on screen")
    ui.settle()
    see(ui, ctx, Msg("Door closed."))
    tap(ui, ctx, Msg("Door closed: confirm"))
    wait_state(ui, kiosk, StaffState.LOAD_SCAN, "back at the scanner")
    see(ui, ctx, Msg.of("Stored in bay {bay}. Scan the next certificate.", bay=bay_id))
    ui.screenshot("stored")

    # lockerd holds the deposit for that applicant, in that bay, waiting to be collected
    applicant = cabinet.identity(YOUNG, "张小三")
    assert applicant.id_hash is not None and kiosk.locker is not None
    [deposit] = kiosk.locker.deposits_for(applicant.id_hash)
    assert (deposit.case_number, deposit.bay_id, deposit.masked_name) == (case, bay_id, "张*三")
    assert cabinet.bay(bay_id)["deposit_state"] == "stored"
    # recorded as the clerk's, whose card and PIN opened staff mode
    stored = [(e["bay_id"], e["actor"]) for e in locker.audit("deposit_stored")]
    assert stored == [(bay_id, SYNTHETIC_STAFF_ID)]

    dismiss_notice(ui, shell)
    tap(ui, ctx, Msg("Back to menu"))
    wait_state(ui, kiosk, StaffState.MENU)
    tap(ui, ctx, Msg("Log out"))
    wait_home(ui, kiosk, shell)
