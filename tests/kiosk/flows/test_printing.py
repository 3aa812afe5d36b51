"""The print-with-checks helper against the printer simulator on a pty."""

from __future__ import annotations

from datetime import datetime

import pytest

from drivers.printer import EscposTicketPrinter, PaperStatus, open_printer
from kiosk.flows.base import Bilingual
from kiosk.flows.printing import (
    PrinterNotReady,
    UnprintedTicket,
    check_printer,
    print_ticket,
    printer_notice,
    queue_ticket_slip,
    require_printer,
    ticket_qr_payload,
    wait_minutes,
)
from kiosk.services.hall_gateway import Category, Ticket
from tests.drivers.printer.conftest import PrinterSimHandle
from tests.hall.helpers import local
from tests.kiosk.flows.conftest import printed_qr, printed_texts

CATEGORY = Category("re-collect", "real-estate", "不动产登记", "Real estate", "collect", "E")


def ticket(**changes: object) -> Ticket:
    values: dict[str, object] = {
        "ticket_id": "0" * 31 + "1",
        "label": "E007",
        "category": "re-collect",
        "priority": "normal",
        "issued_at": local(2026, 11, 23, 9, 5),
        "people_ahead": 3,
        "wait_estimate_s": 61,
        "offline": False,
    }
    values.update(changes)
    return Ticket(**values)  # type: ignore[arg-type]


def test_wait_minutes_round_up_and_the_qr_payload() -> None:
    assert [wait_minutes(s) for s in (None, 0, 1, 60, 61, 3599)] == [None, 0, 1, 1, 2, 60]
    assert ticket_qr_payload("abc") == "hallkiosk:ticket:abc"


def test_slip_fields_for_normal_green_offline_and_appointment_tickets() -> None:
    slip = queue_ticket_slip(ticket(), CATEGORY, hall_name="示范中心")
    assert (slip.category, slip.business, slip.people_ahead, slip.estimated_wait_min) == (
        "取件号",
        "不动产登记",
        3,
        2,
    )
    assert slip.qr_payload == "hallkiosk:ticket:" + "0" * 31 + "1"
    assert not slip.green_channel and not slip.offline
    assert queue_ticket_slip(ticket(priority="green"), CATEGORY, hall_name="x").green_channel
    offline = queue_ticket_slip(
        ticket(offline=True, people_ahead=None, wait_estimate_s=None), CATEGORY, hall_name="x"
    )
    assert offline.offline and offline.people_ahead is None and offline.estimated_wait_min is None
    booked = queue_ticket_slip(ticket(), CATEGORY, hall_name="x", appointment=True)
    assert booked.category == "预约取件号"
    unknown = queue_ticket_slip(ticket(), None, hall_name="x", qr_template="https://q/{ticket_id}")
    assert (unknown.category, unknown.business) == ("排队号", "re-collect")
    assert unknown.qr_payload.startswith("https://q/")


def test_check_printer_reports_each_state(printer_sim: PrinterSimHandle) -> None:
    with open_printer(printer_sim.settings("generic-80")) as printer:
        ok = check_printer(printer)
        assert ok.ready and ok.paper is PaperStatus.OK and ok.notice() is None
        printer_sim.control.near_end()
        near = check_printer(printer)
        assert near.ready and near.paper is PaperStatus.NEAR_END
        printer_sim.control.pull_paper()
        out = check_printer(printer)
        assert not out.ready and out.code == "printer_paper_out"
        notice = out.notice()
        assert notice is not None and notice.call_staff
        assert isinstance(notice.text, Bilingual) and "打印纸已用完" in notice.text.zh
        printer_sim.control.load_paper()
        printer_sim.control.open_cover()
        cover = check_printer(printer)
        assert not cover.ready and cover.code == "printer_cover_open"
        printer_sim.control.close_cover()
        printer_sim.control.go_offline()
        offline = check_printer(printer)
        assert not offline.ready and offline.paper is None and offline.code == "printer_offline"
        with pytest.raises(PrinterNotReady) as caught:
            require_printer(printer)
        assert printer_notice(caught.value).code == "printer_offline"
        printer_sim.control.come_online()
        assert require_printer(printer).ready


def test_print_ticket_prints_or_reports_the_unprinted_number(
    printer: EscposTicketPrinter, printer_sim: PrinterSimHandle
) -> None:
    reported: list[UnprintedTicket] = []
    slip = queue_ticket_slip(ticket(), CATEGORY, hall_name="示范中心")
    done = print_ticket(printer, ticket(), slip, reprint=False, on_print_failed=reported.append)
    assert done.failure is None and reported == []
    assert "E007" in printed_texts(printer_sim) and "您前面还有 3 人等候" in printed_texts(
        printer_sim
    )
    assert printed_qr(printer_sim) == [slip.qr_payload]

    printer_sim.control.clear()
    printer_sim.control.run_out_after(3)
    failed = print_ticket(printer, ticket(), slip, reprint=False, on_print_failed=reported.append)
    assert failed.failure is not None
    assert [(r.label, r.partly_printed, r.error_code) for r in reported] == [
        ("E007", True, "printer_print_failed")
    ]
    # paper out now: refused before one byte, reported as not partly printed
    refused = print_ticket(printer, ticket(), slip, reprint=True, on_print_failed=reported.append)
    assert refused.failure is not None
    assert (reported[-1].partly_printed, reported[-1].reprint) == (False, True)
    assert reported[-1].error_code == "printer_paper_out"


def test_slip_times_are_the_tickets_own(printer: EscposTicketPrinter) -> None:
    naive = ticket(issued_at=datetime(2026, 11, 23, 9, 5))  # noqa: DTZ001 - the point
    slip = queue_ticket_slip(naive, CATEGORY, hall_name="x")
    reported: list[UnprintedTicket] = []
    result = print_ticket(printer, naive, slip, reprint=False, on_print_failed=reported.append)
    assert result.failure is not None and reported[0].error_code == "printer_layout_invalid"
