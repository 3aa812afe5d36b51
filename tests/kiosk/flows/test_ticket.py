"""Taking a ticket against the real hall in process and the ESC/POS printer simulator on a pty:
what the applicant sees, what the hall issued, and what came out of the printer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drivers.identity.types import Identity
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter
from hall.errors import QuotaExhausted
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.flows.base import Bilingual, FlowStateError, InlineWorker, Msg, QueueWorker
from kiosk.flows.home import Cancelled, Finished
from kiosk.flows.printing import UnprintedTicket
from kiosk.flows.ticket import TicketFlow, TicketSettings, TicketState
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from tests.drivers.printer.conftest import PrinterSimHandle
from tests.kiosk.flows.conftest import (
    BORN_60_TOMORROW,
    DEVICE,
    ELDER,
    YOUNG,
    OfflineKiosk,
    Rig,
    SwitchableTransport,
    cuts,
    open_hall,
    printed_qr,
    printed_texts,
    read_card,
    read_citizen_card,
)

S = TicketState


def flow_for(
    worker: InlineWorker | QueueWorker,
    clock: ManualClock,
    hall: HallGateway,
    printer: EscposTicketPrinter,
    **kwargs: object,
) -> TicketFlow:
    return TicketFlow(worker, clock, hall, printer, **kwargs)  # type: ignore[arg-type]


def waiting_labels(hall: Hall) -> list[str]:
    return sorted(t.label for t in hall.queue.waiting())


# -- the printer before anything -----------------------------------------------------------------


def test_paper_out_before_start_stops_the_journey_before_any_choice(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    printer_sim.control.pull_paper()
    flow = flow_for(inline, clock, hall_service, printer)
    assert flow.state is S.UNAVAILABLE
    assert flow.notice is not None and flow.notice.code == "printer_paper_out"
    assert flow.notice.call_staff
    assert isinstance(flow.notice.text, Bilingual) and "打印纸已用完" in flow.notice.text.zh
    assert flow.view.areas == ()  # no business offered at all
    with pytest.raises(FlowStateError):
        flow.choose_area("social-security")
    assert waiting_labels(hall) == [] and printed_texts(printer_sim) == []
    flow.cancel()
    assert flow.ended == Cancelled() and flow.state is S.CLOSED


def test_printer_offline_before_start(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
) -> None:
    printer_sim.control.go_offline()
    flow = flow_for(inline, clock, hall_service, printer)
    assert flow.state is S.UNAVAILABLE
    assert flow.notice is not None and flow.notice.code == "printer_offline"


def test_paper_gone_after_start_no_number_is_asked_for(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    flow = flow_for(inline, clock, hall_service, printer)
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    printer_sim.control.pull_paper()  # while the applicant was choosing
    flow.skip_card()
    assert flow.state is S.UNAVAILABLE
    assert flow.notice is not None and flow.notice.code == "printer_paper_out"
    assert waiting_labels(hall) == []  # the hall was never asked
    assert printed_texts(printer_sim) == []


# -- the whole journey ----------------------------------------------------------------------------


def test_take_a_ticket_without_a_card(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    flow = flow_for(inline, clock, hall_service, printer, page_size=2)
    assert flow.state is S.CHOOSE_AREA
    assert flow.prompt == Msg.of("Please choose the business you came for.")
    view = flow.view
    assert [a.area for a in view.areas] == ["social-security", "real-estate"]
    assert view.areas[0].name == Bilingual("社保医保", "Social security")
    assert (view.page, view.page_count) == (0, 2)
    flow.next_page()
    assert [a.area for a in flow.view.areas] == ["business"]
    flow.prev_page()
    flow.choose_area("real-estate")
    assert flow.state is S.CHOOSE_TYPE
    assert [(t.category_id, t.text) for t in flow.view.types] == [
        ("re-submit", Msg.of("Submit documents")),
        ("re-collect", Msg.of("Collect results")),
        ("re-consult", Msg.of("Consultation")),
    ]
    flow.back()
    assert flow.state is S.CHOOSE_AREA and flow.view.area is None
    flow.choose_area("real-estate")
    flow.choose_type("re-collect")
    assert flow.state is S.IDENTIFY
    flow.back()
    assert flow.state is S.CHOOSE_TYPE
    flow.choose_type("re-submit")
    flow.skip_card()

    assert flow.state is S.DONE and flow.notice is None
    shown = flow.view.ticket
    assert shown is not None and shown.label == "D001"
    ticket = hall.queue.get(shown.ticket_id)
    assert (ticket.label, ticket.category, ticket.priority) == (shown.label, "re-submit", "normal")
    assert ticket.identity_hash is None
    assert shown.people_ahead == 0 and shown.queue_text == Msg.of(
        "You are next. Please watch the calling screen."
    )
    texts = printed_texts(printer_sim)
    assert shown.label in texts and "收件号" in texts and "业务：不动产登记" in texts
    assert "示范政务服务中心" in texts  # the hall catalog's name
    assert printed_qr(printer_sim) == [f"hallkiosk:ticket:{shown.ticket_id}"]
    assert cuts(printer_sim) == 1
    assert flow.prompt == Msg.of(
        "Your number is {ticket}. Please take your ticket.", ticket=shown.label
    )
    flow.finish()
    assert flow.ended == Finished("ticket", shown.ticket_id, evaluate=True)
    assert flow.state is S.CLOSED and flow.view.ticket is None


def test_people_ahead_and_the_wait_rounded_up(
    tmp_path: Path,
    inline: InlineWorker,
    clock: ManualClock,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
) -> None:
    hall = open_hall(tmp_path / "slow", clock, "[hall.queue]\nservice_time_default_s = 130\n")
    try:
        for _ in range(2):
            hall.handle_request(DEVICE, "ticket.issue", {"category": "ss-submit"})
        flow = flow_for(inline, clock, HallGateway(EmbeddedTransport(hall, DEVICE)), printer)
        flow.choose_area("social-security")
        flow.choose_type("ss-submit")
        flow.skip_card()
        shown = flow.view.ticket
        assert shown is not None and shown.label == "A003"
        assert (shown.people_ahead, shown.wait_min) == (2, 5)  # 260 s is 4⅓ min: 5
        assert shown.queue_text == Msg.of(
            "{people} people are ahead of you; the wait is about {minutes} min.",
            people=2,
            minutes=5,
        )
        texts = printed_texts(printer_sim)
        assert "您前面还有 2 人等候" in texts and "预计等候约 5 分钟" in texts
    finally:
        hall.close()


def test_quota_used_up_is_said_in_the_halls_words(
    tmp_path: Path,
    inline: InlineWorker,
    clock: ManualClock,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
) -> None:
    extra = """
[[hall.queue.categories]]
id = "q"
area = "a"
area_zh = "甲业务"
area_en = "Business A"
ticket_type = "submit"
prefix = "Q"
quotas = [{ start = "08:00", end = "12:00", max_tickets = 1 }]
"""
    hall = open_hall(tmp_path / "quota", clock, extra)
    try:
        service = HallGateway(EmbeddedTransport(hall, DEVICE))
        first = flow_for(inline, clock, service, printer)
        first.choose_area("a")
        first.choose_type("q")
        first.skip_card()
        assert first.state is S.DONE
        printer_sim.control.clear()

        flow = flow_for(inline, clock, service, printer)
        flow.choose_area("a")
        flow.choose_type("q")
        flow.skip_card()
        assert flow.state is S.REFUSED
        assert flow.notice is not None and flow.notice.code == "quota_exhausted"
        assert flow.notice.text == Bilingual(QuotaExhausted.message_zh, QuotaExhausted.message_en)
        assert flow.view.ticket is None and printed_texts(printer_sim) == []
        flow.back()
        assert flow.state is S.CHOOSE_AREA and flow.notice is None
    finally:
        hall.close()


# -- one ticket per identity: the reprint offer ---------------------------------------------------


def test_second_ticket_for_the_same_card_offers_a_reprint(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    card = read_citizen_card(id_reader, YOUNG)
    flow = flow_for(inline, clock, hall_service, printer)
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    assert flow.card_read(card) is True  # in IDENTIFY the card issues at once
    assert flow.state is S.DONE
    first = flow.view.ticket
    assert first is not None and first.label == "A001"
    assert hall.queue.get(first.ticket_id).identity_hash == card.id_hash
    printer_sim.control.clear()

    again = flow_for(inline, clock, hall_service, printer)
    again.card_read(card)  # read while choosing: kept, used after the choice
    assert again.state is S.CHOOSE_AREA and again.view.card_name == "张*三"
    again.choose_area("social-security")
    again.choose_type("ss-submit")
    assert again.state is S.REPRINT_OFFER
    offered = again.view.ticket
    assert offered is not None and offered.label == "A001"
    assert again.prompt == Msg.of(
        "You already have ticket {ticket}. Print it again?", ticket="A001"
    )
    assert printed_texts(printer_sim) == []  # nothing printed before the applicant says so
    again.reprint()
    assert again.state is S.DONE
    assert "A001" in printed_texts(printer_sim)
    assert waiting_labels(hall) == ["A001"]  # still one ticket

    third = flow_for(inline, clock, hall_service, printer)
    third.card_read(card)
    third.choose_area("social-security")
    third.choose_type("ss-submit")
    printer_sim.control.clear()
    third.cancel()
    assert third.ended == Cancelled() and printed_texts(printer_sim) == []


# -- green channel --------------------------------------------------------------------------------


def issue_with_card(flow: TicketFlow, card: Identity) -> None:
    flow.choose_area("social-security")
    flow.choose_type("ss-consult")
    flow.card_read(card)


def test_green_channel_by_age_from_the_card(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    elder = flow_for(inline, clock, hall_service, printer)
    issue_with_card(elder, read_citizen_card(id_reader, ELDER))
    shown = elder.view.ticket
    assert shown is not None and shown.green
    assert hall.queue.get(shown.ticket_id).priority == "green"
    assert "绿色通道 优先办理" in printed_texts(printer_sim)
    printer_sim.control.clear()

    # 59 today: a normal ticket; 60 tomorrow (the hall's local date): green
    almost = read_citizen_card(id_reader, BORN_60_TOMORROW)
    today = flow_for(inline, clock, hall_service, printer)
    today.choose_area("social-security")
    today.choose_type("ss-consult")
    today.card_read(almost)
    assert today.view.green is None  # shown before the card is used
    assert today.view.ticket is not None and not today.view.ticket.green
    assert "绿色通道 优先办理" not in printed_texts(printer_sim)

    clock.advance(timedelta(days=1).total_seconds())
    tomorrow = flow_for(inline, clock, hall_service, printer)
    tomorrow.card_read(almost)
    assert tomorrow.view.green == "elderly"
    tomorrow.choose_area("social-security")
    tomorrow.choose_type("ss-consult")
    ticket = tomorrow.view.ticket
    assert ticket is not None and hall.queue.get(ticket.ticket_id).priority == "green"


def test_elderly_age_is_a_setting(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.id_reader,
    )
    flow = flow_for(
        inline, clock, hall_service, printer, settings=TicketSettings(elderly_age_years=80)
    )
    issue_with_card(flow, read_citizen_card(id_reader, ELDER))  # 76
    shown = flow.view.ticket
    assert shown is not None and hall.queue.get(shown.ticket_id).priority == "normal"


def test_green_channel_for_the_disabled_is_confirmed_first(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
    )
    flow = flow_for(inline, clock, hall_service, printer)
    flow.choose_area("business")
    flow.ask_green_channel()
    assert flow.state is S.GREEN_CONFIRM
    assert flow.prompt is not None and "Staff may ask" in flow.prompt.msgid
    flow.decline_green()
    assert flow.state is S.CHOOSE_TYPE and flow.view.green is None
    flow.choose_type("biz-submit")
    flow.ask_green_channel()
    flow.confirm_green()
    assert flow.state is S.IDENTIFY and flow.view.green == "disabled"
    flow.skip_card()
    shown = flow.view.ticket
    assert shown is not None and shown.green
    assert hall.queue.get(shown.ticket_id).priority == "green"
    assert "绿色通道 优先办理" in printed_texts(printer_sim)


# -- printing fails: the number is not handed out ---------------------------------------------


def test_paper_running_out_mid_print_voids_the_ticket(rig: Rig) -> None:
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
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    printer_sim.control.run_out_after(5)
    flow.skip_card()

    assert flow.state is S.PRINT_FAILED
    assert flow.view.ticket is None  # the number is not shown as if it were valid
    unprinted = flow.view.unprinted
    assert unprinted is not None and unprinted.label == "A001"
    assert unprinted.partly_printed and not unprinted.reprint
    assert unprinted.error_code == "printer_print_failed"
    assert reported == [unprinted]  # for the app's alarm: staff skip A001 at the window
    assert flow.notice is not None and flow.notice.call_staff
    assert flow.notice.code == "ticket_not_printed"
    assert flow.prompt == Msg.of("Your ticket could not be printed. Please contact staff.")
    # this rig records only; the app voids it (tests/kiosk/test_voided_ticket.py)
    assert waiting_labels(hall) == ["A001"]
    assert printer_sim.control.snapshot()["paper"] == "out"
    flow.finish()
    assert flow.ended == Finished("ticket", unprinted.ticket_id, evaluate=False)


def test_a_failed_reprint_says_so_and_keeps_the_ticket(rig: Rig) -> None:
    inline, clock, hall_service, printer, printer_sim, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    card = read_citizen_card(id_reader, YOUNG)
    flow = flow_for(inline, clock, hall_service, printer)
    issue_with_card(flow, card)
    reported: list[UnprintedTicket] = []
    again = flow_for(inline, clock, hall_service, printer, on_print_failed=reported.append)
    issue_with_card(again, card)
    assert again.state is S.REPRINT_OFFER
    printer_sim.control.open_cover()
    again.reprint()
    assert again.state is S.PRINT_FAILED
    assert [(r.reprint, r.partly_printed, r.error_code) for r in reported] == [
        (True, False, "printer_cover_open")
    ]


# -- cards that do not identify -------------------------------------------------------------------


def test_cards_without_an_id_number_and_clerk_cards(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer)
    assert flow.card_read(read_card(id_reader, "idcard")) is True
    assert flow.notice is not None and flow.notice.code == "card_without_number"
    assert flow.view.card_name is None
    assert flow.card_read(read_card(id_reader, "staff")) is False
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    flow.skip_card()
    assert flow.card_read(read_card(id_reader, "citizen")) is False  # DONE takes no card


# -- offline and unreachable -----------------------------------------------------------------------


def test_offline_ticket_is_marked_on_screen_and_paper(
    rig: Rig, offline_kiosk: OfflineKiosk
) -> None:
    inline, clock, hall, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.printer,
        rig.printer_sim,
    )
    online = flow_for(inline, clock, offline_kiosk.gateway, printer)  # caches the catalog
    online.cancel()
    offline_kiosk.transport.down = True
    flow = flow_for(inline, clock, offline_kiosk.gateway, printer)
    assert flow.state is S.CHOOSE_AREA and flow.view.catalog_cached
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    flow.skip_card()
    shown = flow.view.ticket
    assert shown is not None and shown.offline and shown.label == "A1001"
    assert (shown.people_ahead, shown.wait_min) == (None, None)
    assert shown.queue_text == Msg.of(
        "Issued offline: please watch the calling screen for your turn."
    )
    texts = printed_texts(printer_sim)
    assert "【离线取号】" in texts and "等候人数请以叫号屏为准" in texts and "A1001" in texts
    # the outbox handed the offline ticket to the hall, which merged it by issue time
    assert hall.queue.get(shown.ticket_id).offline


def test_hall_unreachable_without_a_fallback(
    inline: InlineWorker,
    clock: ManualClock,
    hall: Hall,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
) -> None:
    transport = SwitchableTransport(EmbeddedTransport(hall, DEVICE))
    service = HallGateway(transport)
    transport.down = True
    flow = flow_for(inline, clock, service, printer)
    assert flow.state is S.UNAVAILABLE
    assert flow.notice is not None and flow.notice.code == "hall_unreachable"
    assert flow.notice.call_staff

    transport.down = False
    flow = flow_for(inline, clock, service, printer)
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    transport.down = True
    flow.skip_card()
    assert flow.state is S.REFUSED
    assert flow.notice is not None and flow.notice.code == "hall_unreachable"
    assert printed_texts(printer_sim) == []
    flow.back()
    assert flow.state is S.CHOOSE_AREA


# -- busy, wipe, hand-over -------------------------------------------------------------------------


def test_busy_texts_show_until_the_ui_thread_runs_the_result(
    queued: QueueWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    flow = flow_for(queued, clock, hall_service, printer)
    assert flow.state is S.CHECKING and flow.busy == Msg.of("Checking the printer…")
    queued.pump()
    assert flow.state is S.CHOOSE_AREA and flow.busy is None
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    flow.skip_card()
    assert flow.busy == Msg.of("Getting your ticket…") and flow.state is S.IDENTIFY
    with pytest.raises(FlowStateError):
        flow.cancel()  # the job runs to its end: a number may be on its way
    with pytest.raises(FlowStateError):
        flow.back()
    queued.pump()
    assert flow.state is S.DONE and flow.busy is None


def test_a_wiped_flow_ignores_the_late_result_and_holds_no_personal_data(
    rig: Rig, queued: QueueWorker
) -> None:
    clock, hall, hall_service, printer, printer_sim, id_reader = (
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.printer_sim,
        rig.id_reader,
    )
    flow = flow_for(queued, clock, hall_service, printer)
    queued.pump()
    card = read_citizen_card(id_reader, ELDER)
    flow.card_read(card)
    flow.choose_area("social-security")
    flow.ask_green_channel()
    flow.confirm_green()
    flow.choose_type("ss-submit")  # the card was read: issues at once
    assert flow.busy is not None
    flow.wipe()
    queued.pump()
    assert flow.state is S.CLOSED and flow.busy is None and flow.notice is None
    view = flow.view
    assert view.ticket is None and view.card_name is None and view.green is None
    assert view.area is None and view.areas == ()
    assert flow._d.identity is None and flow._d.ticket is None and flow._d.catalog is None
    assert card.id_hash not in repr(vars(flow))
    assert waiting_labels(hall) == ["A001"]  # the job itself ran: the applicant got the slip
    assert "A001" in printed_texts(printer_sim)


def test_a_hand_over_starts_at_the_area_with_the_card_already_read(rig: Rig) -> None:
    inline, clock, hall, hall_service, printer, id_reader = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.hall_service,
        rig.printer,
        rig.id_reader,
    )
    card = read_citizen_card(id_reader, YOUNG)
    flow = flow_for(inline, clock, hall_service, printer, area="real-estate", identity=card)
    assert flow.state is S.CHOOSE_TYPE and flow.view.card_name == "张*三"
    flow.choose_type("re-submit")
    shown = flow.view.ticket
    assert flow.state is S.DONE and shown is not None
    assert hall.queue.get(shown.ticket_id).identity_hash == card.id_hash


def test_page_size_follows_elderly_mode(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer, page_size=6)
    assert flow.view.page_count == 1 and len(flow.view.areas) == 3
    flow.set_page_size(1)
    assert flow.view.page_count == 3 and len(flow.view.areas) == 1


def test_calls_in_the_wrong_state_are_screen_bugs(
    inline: InlineWorker,
    clock: ManualClock,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
) -> None:
    flow = flow_for(inline, clock, hall_service, printer)
    for call in (flow.skip_card, flow.reprint, flow.finish, flow.confirm_green, flow.back):
        with pytest.raises(FlowStateError):
            call()
    with pytest.raises(FlowStateError):
        flow.choose_area("nowhere")
    flow.choose_area("social-security")
    with pytest.raises(FlowStateError):
        flow.choose_type("re-submit")  # another area's category
