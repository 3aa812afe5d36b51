"""Appointment check-in against the real hall (bookings imported from a CSV file, windows on a
ManualClock) and the printer simulator: by card, keypad code and QR."""

from __future__ import annotations

import pytest

from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter
from drivers.scanner.formats import make_booking_code
from hall.errors import AppointmentForfeited, AppointmentNotFound, AppointmentTooEarly
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.flows.base import Bilingual, FlowStateError, InlineWorker, Msg, QueueWorker
from kiosk.flows.checkin import CheckinFlow, CheckinState, parse_booking_code
from kiosk.flows.home import Cancelled, Finished, HandOver, JourneyKind
from kiosk.flows.printing import UnprintedTicket
from kiosk.services.hall_service import HallGateway
from tests.hall.helpers import local
from tests.kiosk.flows.conftest import (
    BOOK_0930,
    BOOK_10,
    BOOK_EARLY,
    BOOK_ELDER,
    BORN_60_TOMORROW,
    ELDER,
    YOUNG,
    Rig,
    id_number,
    on_day,
    printed_qr,
    printed_texts,
    read_card,
    read_citizen_card,
)

S = CheckinState


def flow_for(
    worker: InlineWorker | QueueWorker,
    clock: ManualClock,
    hall: HallGateway,
    printer: EscposTicketPrinter,
    **kwargs: object,
) -> CheckinFlow:
    return CheckinFlow(worker, clock, hall, printer, **kwargs)  # type: ignore[arg-type]


def status_of(hall: Hall, code: str) -> str:
    return hall.appointments.get(code).status


def test_booking_payloads() -> None:
    code = make_booking_code("20261123001")
    assert parse_booking_code(f"HK1:B:{code}") == code
    assert parse_booking_code(f"hallkiosk:booking:{code.lower()}\r\n") == code
    assert parse_booking_code(f"  {code} ") == code
    assert parse_booking_code("YS2026112300001") is None  # a pre-review receipt
    assert parse_booking_code("hallkiosk:ticket:abc123") is None
    assert parse_booking_code("https://example.org/?yyh=" + code) is None
    assert parse_booking_code("HK1:B:") is None and parse_booking_code("ab") is None


def test_card_with_two_bookings_today_lets_the_applicant_choose(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    flow = flow_for(inline, clock, hall_service, printer, page_size=1)
    assert flow.state is S.IDENTIFY and flow.prompt is not None
    assert flow.card_read(read_citizen_card(id_reader, YOUNG)) is True
    assert flow.state is S.CHOOSE_BOOKING
    assert flow.view.page_count == 2
    assert [b.booking_code for b in flow.view.bookings] == [BOOK_0930]  # by slot time
    flow.next_page()
    assert [b.booking_code for b in flow.view.bookings] == [BOOK_10]
    flow.prev_page()
    flow.choose(BOOK_0930)

    assert flow.state is S.DONE
    shown = flow.view.ticket
    assert shown is not None and shown.label == "A001"
    ticket = hall.queue.get(shown.ticket_id)
    assert (ticket.category, ticket.priority) == ("ss-submit", "appointment")
    assert status_of(hall, BOOK_0930) == "checked_in" and status_of(hall, BOOK_10) == "booked"
    view = flow.view
    assert view.booking is not None and view.booking.booking_code == BOOK_0930
    texts = printed_texts(printer_sim)
    assert "A001" in texts and "预约收件号" in texts and "业务：社保医保" in texts
    assert printed_qr(printer_sim) == [f"hallkiosk:ticket:{shown.ticket_id}"]
    assert flow.prompt == Msg.of(
        "You are checked in. Your number is {ticket}. Please take your ticket.", ticket="A001"
    )
    flow.finish()
    assert flow.ended == Finished("checkin", shown.ticket_id, evaluate=True)


def test_too_early_then_in_the_window_after_the_clock_moves(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    flow = flow_for(inline, clock, hall_service, printer)
    assert flow.code_scanned(f"HK1:B:{BOOK_10}") is True
    assert flow.state is S.TOO_EARLY
    assert flow.notice is not None and flow.notice.code == "appointment_too_early"
    assert flow.notice.text == Bilingual(
        AppointmentTooEarly.message_zh, AppointmentTooEarly.message_en
    )
    assert flow.view.booking is not None and flow.view.booking.booking_code == BOOK_10
    assert printed_texts(printer_sim) == [] and status_of(hall, BOOK_10) == "booked"
    flow.back()
    assert flow.state is S.IDENTIFY and flow.view.booking is None

    on_day(clock, local(2026, 11, 23, 9, 30))  # 30 minutes before 10:00: the window opens
    flow.code_scanned(f"hallkiosk:booking:{BOOK_10}")
    assert flow.state is S.DONE and status_of(hall, BOOK_10) == "checked_in"


def test_late_inside_the_hour_checks_in(
    inline: InlineWorker,
    clock: ManualClock,
    hall: Hall,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    on_day(clock, local(2026, 11, 23, 10, 29))  # 59 minutes after 09:30
    flow = flow_for(inline, clock, hall_service, printer)
    flow.code_scanned(BOOK_0930)
    assert flow.state is S.DONE and status_of(hall, BOOK_0930) == "checked_in"


def test_over_an_hour_late_is_forfeited_and_offers_a_normal_ticket(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    card = read_citizen_card(id_reader, BORN_60_TOMORROW)  # booked 07:30; now 09:00
    flow = flow_for(inline, clock, hall_service, printer)
    flow.card_read(card)
    assert flow.state is S.FORFEITED
    assert flow.notice is not None and flow.notice.text == Bilingual(
        AppointmentForfeited.message_zh, AppointmentForfeited.message_en
    )
    assert status_of(hall, BOOK_EARLY) == "no_show"
    assert printed_texts(printer_sim) == []
    flow.take_normal_ticket()
    assert flow.ended == HandOver(JourneyKind.TICKET, area="social-security", identity=card)
    assert flow.state is S.CLOSED and flow.view.booking is None


def test_one_minute_past_the_hour_is_forfeited(
    inline: InlineWorker,
    clock: ManualClock,
    hall: Hall,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    on_day(clock, local(2026, 11, 23, 10, 31))
    flow = flow_for(inline, clock, hall_service, printer)
    flow.code_scanned(BOOK_0930)
    assert flow.state is S.FORFEITED and status_of(hall, BOOK_0930) == "no_show"


def test_booking_code_on_the_keypad(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    flow = flow_for(inline, clock, hall_service, printer)
    flow.enter_code()
    assert flow.state is S.ENTER_CODE and flow.view.code_prefix == "YY"
    digits = BOOK_ELDER.removeprefix("YY")
    for digit in digits[:5]:
        flow.press(digit)
    flow.press("x")  # not a digit: ignored
    assert flow.view.code_entry == digits[:5] and not flow.view.code_complete
    flow.submit_code()
    assert flow.state is S.ENTER_CODE
    assert flow.notice is not None and flow.notice.code == "code_incomplete"
    flow.delete()
    for digit in digits[4:]:
        flow.press(digit)
    assert flow.view.code_complete
    flow.submit_code()
    assert flow.state is S.DONE
    shown = flow.view.ticket
    assert shown is not None and shown.label == "D001"  # the booking's area: real estate
    assert hall.queue.get(shown.ticket_id).category == "re-submit"
    assert "业务：不动产登记" in printed_texts(printer_sim)
    assert flow.view.code_entry == ""  # the digits are not kept


def test_unknown_code_and_unknown_card(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer)
    flow.code_scanned(make_booking_code("99999999999"))
    assert flow.state is S.NOT_FOUND
    assert flow.notice is not None and flow.notice.text == Bilingual(
        AppointmentNotFound.message_zh, AppointmentNotFound.message_en
    )
    flow.back()
    flow.card_read(read_citizen_card(id_reader, id_number("19800101", 9)))  # no booking
    assert flow.state is S.NOT_FOUND and flow.notice is not None
    assert flow.notice.code == "appointment_not_found"
    flow.take_normal_ticket()
    assert isinstance(flow.ended, HandOver) and flow.ended.area is None


def test_not_a_booking_code_and_cards_that_do_not_identify(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer)
    assert flow.code_scanned("YS2026112300001") is True
    assert flow.notice is not None and flow.notice.code == "not_a_booking"
    assert flow.card_read(read_card(id_reader, "idcard")) is True
    assert flow.notice is not None and flow.notice.code == "card_without_number"
    assert flow.card_read(read_card(id_reader, "staff")) is False
    assert flow.state is S.IDENTIFY


def test_checking_in_again_offers_a_reprint(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    flow_for(inline, clock, hall_service, printer).code_scanned(BOOK_ELDER)
    printer_sim.control.clear()
    flow = flow_for(inline, clock, hall_service, printer)
    flow.code_scanned(BOOK_ELDER)
    assert flow.state is S.REPRINT_OFFER
    shown = flow.view.ticket
    assert shown is not None and shown.label == "D001"
    assert printed_texts(printer_sim) == []
    flow.reprint()
    assert flow.state is S.DONE and "D001" in printed_texts(printer_sim)
    assert [t.label for t in hall.queue.waiting(["re-submit"])] == ["D001"]


def test_print_failure_after_check_in_is_reported(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    reported: list[UnprintedTicket] = []
    flow = flow_for(inline, clock, hall_service, printer, on_print_failed=reported.append)
    printer_sim.control.run_out_after(4)
    flow.code_scanned(BOOK_0930)
    assert flow.state is S.PRINT_FAILED and flow.view.ticket is None
    assert flow.notice is not None and flow.notice.call_staff
    assert [r.label for r in reported] == ["A001"] and reported[0].partly_printed
    assert flow.view.unprinted == reported[0]
    assert status_of(hall, BOOK_0930) == "checked_in"  # staff see the alarm and reprint
    flow.finish()
    assert flow.ended == Finished("checkin", reported[0].ticket_id, evaluate=False)


def test_paper_out_before_start_and_before_the_check_in(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    printer_sim.control.pull_paper()
    flow = flow_for(inline, clock, hall_service, printer)
    assert flow.state is S.UNAVAILABLE
    assert flow.notice is not None and flow.notice.code == "printer_paper_out"
    printer_sim.control.load_paper()

    flow = flow_for(inline, clock, hall_service, printer)
    flow.card_read(read_citizen_card(id_reader, YOUNG))
    assert flow.state is S.CHOOSE_BOOKING
    printer_sim.control.pull_paper()
    flow.choose(BOOK_0930)
    assert flow.state is S.UNAVAILABLE
    assert status_of(hall, BOOK_0930) == "booked"  # not checked in: no ticket issued
    assert hall.queue.waiting() == []


def test_busy_then_wipe_drops_the_late_answer_and_the_identity(
    rig: Rig, queued: QueueWorker
) -> None:
    clock, hall, hall_service, printer, id_reader = (
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.id_reader,
    )
    flow = flow_for(queued, clock, hall_service, printer)
    assert flow.busy == Msg.of("Checking the printer…")
    queued.pump()
    card = read_citizen_card(id_reader, ELDER)
    flow.card_read(card)
    assert flow.busy == Msg.of("Looking up your booking…") and flow.state is S.IDENTIFY
    assert flow.view.card_name == "张*三"
    flow.wipe()
    queued.pump()
    assert flow.state is S.CLOSED and flow.busy is None
    assert flow._identity is None and flow._booking is None and flow._checked is None
    assert flow.view.card_name is None and flow.view.bookings == ()
    assert status_of(hall, BOOK_ELDER) == "booked"  # the look-up's answer went nowhere


def test_wipe_while_choosing_clears_bookings_and_the_keypad(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer)
    flow.card_read(read_citizen_card(id_reader, YOUNG))
    assert len(flow.view.bookings) == 2
    flow.wipe()
    assert flow.view.bookings == () and flow.view.card_name is None
    assert flow._pager.items == () and flow.keypad.count == 0
    with pytest.raises(FlowStateError):
        flow.choose(BOOK_0930)


def test_started_with_a_scanned_code(
    inline: InlineWorker,
    clock: ManualClock,
    hall: Hall,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer, code=f"HK1:B:{BOOK_0930}")
    assert flow.state is S.DONE and status_of(hall, BOOK_0930) == "checked_in"


def test_cancel_and_wrong_states(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer)
    for call in (flow.reprint, flow.finish, flow.take_normal_ticket, flow.submit_code):
        with pytest.raises(FlowStateError):
            call()
    flow.enter_code()
    flow.back()
    assert flow.state is S.IDENTIFY
    flow.cancel()
    assert flow.ended == Cancelled() and flow.state is S.CLOSED
