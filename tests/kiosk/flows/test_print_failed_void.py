"""A check-in ticket whose print failed is voided like any new ticket (kiosk/assembly.py
``report_unprinted`` over the gateway the runtime builds: kiosk.db, outbox, offline desk, and
the real hall in process behind a network the test can cut), and the booking can be checked in
again for a new number, online or offline."""

from __future__ import annotations

from functools import partial

from drivers.printer import EscposTicketPrinter
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.assembly import report_unprinted
from kiosk.flows.base import InlineWorker
from kiosk.flows.checkin import CheckinFlow, CheckinState
from kiosk.services.hall_service import HallGateway
from tests.kiosk.flows.conftest import BOOK_0930, OfflineKiosk, Rig, printed_texts

S = CheckinState


def check_in(
    inline: InlineWorker, clock: ManualClock, gateway: HallGateway, printer: EscposTicketPrinter
) -> CheckinFlow:
    flow = CheckinFlow(
        inline, clock, gateway, printer, on_print_failed=partial(report_unprinted, gateway)
    )
    flow.code_scanned(BOOK_0930)
    return flow


def alarm_codes(hall: Hall) -> list[str]:
    return [a["code"] for a in hall.registry.alarms()]


def test_a_check_in_ticket_whose_print_failed_is_voided_and_checked_in_again(
    rig: Rig, offline_kiosk: OfflineKiosk
) -> None:
    inline, clock, hall, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.printer,
        rig.printer_sim,
    )
    gateway = offline_kiosk.gateway
    printer_sim.control.run_out_after(4)
    failed = check_in(inline, clock, gateway, printer)
    assert failed.state is S.PRINT_FAILED
    unprinted = failed.view.unprinted
    assert unprinted is not None and not unprinted.reprint
    assert hall.queue.get(unprinted.ticket_id).state == "voided"
    assert hall.appointments.get(BOOK_0930).status == "checked_in"  # the applicant was on time

    printer_sim.control.load_paper()
    again = check_in(inline, clock, gateway, printer)
    assert again.state is S.DONE  # a new priority ticket, not the offer to reprint the void one
    shown = again.view.ticket
    assert shown is not None and shown.ticket_id != unprinted.ticket_id
    assert shown.label in printed_texts(printer_sim)
    [waiting] = hall.queue.waiting()
    assert (waiting.id, waiting.priority) == (shown.ticket_id, "appointment")
    assert alarm_codes(hall) == ["ticket_not_printed"]


def test_offline_the_kiosk_forgets_the_voided_check_in(
    rig: Rig, offline_kiosk: OfflineKiosk
) -> None:
    inline, clock, hall, printer, printer_sim = (
        rig.inline,
        rig.clock,
        rig.hall,
        rig.printer,
        rig.printer_sim,
    )
    gateway = offline_kiosk.gateway
    gateway.catalog()
    assert gateway.sync_appointments()
    offline_kiosk.transport.down = True
    printer_sim.control.run_out_after(4)
    failed = check_in(inline, clock, gateway, printer)
    assert failed.state is S.PRINT_FAILED
    unprinted = failed.view.unprinted
    assert unprinted is not None and unprinted.label == "A1001"
    # the outbox reached the hall (the embedded pump): merged, then voided
    assert hall.queue.get(unprinted.ticket_id).state == "voided"

    printer_sim.control.load_paper()
    clock.advance(60)
    again = check_in(inline, clock, gateway, printer)
    assert again.state is S.DONE
    shown = again.view.ticket
    assert shown is not None and shown.label == "A1002" and shown.offline
    assert [t.id for t in hall.queue.waiting()] == [shown.ticket_id]
    assert gateway.ticket_status(unprinted.ticket_id).state == "voided"
    # the booking's ticket is the new one; checking in again was not "twice"
    assert hall.appointments.get(BOOK_0930).ticket_id == shown.ticket_id
    assert alarm_codes(hall) == ["ticket_not_printed"]
