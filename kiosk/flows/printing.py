"""Printing a slip from a flow: ask the printer first, then print, and say plainly what failed.

Every function here blocks (a status query or a whole print job): call it inside a flow's job.

    check = check_printer(printer)          # PrinterCheck; never raises for printer faults
    require_printer(printer)                 # PrinterNotReady (a KioskError) unless it can print
    report = print_slip(printer, layout)     # PrintReport, or a PrinterError (slip not valid)
    notice = printer_notice(error)           # the driver's own zh/en text, staff called

The hall issues a queue number before the kiosk prints it, so a flow checks the paper right
before asking for a number (``require_printer``) and treats any error from ``print_slip`` as
"number issued, not handed out" (``UnprintedTicket``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drivers.printer import (
    PaperOut,
    PaperStatus,
    PrinterError,
    PrintFailed,
    PrintReport,
    QueueTicket,
    TicketPrinter,
    queue_ticket_layout,
)
from drivers.printer.layout import Layout
from kiosk.flows.base import Bilingual, KioskError, Notice
from kiosk.services.hall_gateway import Category, Ticket

TICKET_QR_TEMPLATE = "hallkiosk:ticket:{ticket_id}"
SELF_SERVICE_AREA = "24小时自助服务区"
TICKET_TYPE_ZH = {"submit": "收件号", "collect": "取件号", "consult": "咨询号"}


@dataclass(frozen=True)
class PrinterCheck:
    """The printer's answer to a status query. ``paper`` is None when it gave none."""

    paper: PaperStatus | None
    error: PrinterError | None = None

    @property
    def ready(self) -> bool:
        return self.error is None and self.paper is not None and self.paper is not PaperStatus.OUT

    @property
    def code(self) -> str:
        if self.error is not None:
            return self.error.code
        return "printer_paper_out" if self.paper is PaperStatus.OUT else ""

    def notice(self) -> Notice | None:
        """What to tell the applicant when the printer cannot print; None when it can."""
        if self.ready:
            return None
        if self.error is not None:
            return printer_notice(self.error)
        return Notice(Bilingual.from_error(PaperOut), PaperOut.code, call_staff=True)


class PrinterNotReady(KioskError):
    """The printer cannot print now, so nothing was asked of the hall."""

    def __init__(self, check: PrinterCheck) -> None:
        super().__init__(f"printer not ready: {check.code}")
        self.check = check
        self.code = check.code or "printer_fault"


def check_printer(printer: TicketPrinter) -> PrinterCheck:
    try:
        return PrinterCheck(printer.status())
    except PrinterError as exc:  # offline, cover open, a fault, a garbled reply
        return PrinterCheck(None, exc)


def require_printer(printer: TicketPrinter) -> PrinterCheck:
    check = check_printer(printer)
    if not check.ready:
        raise PrinterNotReady(check)
    return check


def print_slip(printer: TicketPrinter, layout: Layout) -> PrintReport:
    """The printer driver's own checks apply (paper before, status after): any PrinterError
    means the slip is not valid."""
    return printer.print_layout(layout)


def printer_notice(error: BaseException) -> Notice:
    if isinstance(error, PrinterNotReady):
        notice = error.check.notice()
        if notice is not None:
            return notice
    code = str(getattr(error, "code", "printer_fault"))
    return Notice(Bilingual.from_error(error), code, call_staff=True)


# -- queue tickets --------------------------------------------------------------------------


@dataclass(frozen=True)
class UnprintedTicket:
    """A number the hall issued that the applicant did not get on paper: the app voids it at
    the hall (a ``ticket_voided`` event, kiosk/assembly.py ``report_unprinted``) and alarms."""

    ticket_id: str
    label: str
    category: str
    error_code: str  # the printer error, e.g. printer_print_failed
    partly_printed: bool  # the job broke off: a torn slip showing the number may be out
    reprint: bool  # a reprint of a ticket handed out before: that one stays valid


def unprinted(ticket: Ticket, error: BaseException, *, reprint: bool) -> UnprintedTicket:
    return UnprintedTicket(
        ticket_id=ticket.ticket_id,
        label=ticket.label,
        category=ticket.category,
        error_code=str(getattr(error, "code", "printer_fault")),
        partly_printed=isinstance(error, PrintFailed),
        reprint=reprint,
    )


def wait_minutes(wait_estimate_s: int | None) -> int | None:
    """Whole minutes, rounded up: a wait is never promised shorter than estimated."""
    if wait_estimate_s is None:
        return None
    return -(-max(0, wait_estimate_s) // 60)


def ticket_qr_payload(ticket_id: str, template: str = TICKET_QR_TEMPLATE) -> str:
    return template.format(ticket_id=ticket_id)


def queue_ticket_slip(
    ticket: Ticket,
    category: Category | None,
    *,
    hall_name: str,
    qr_template: str = TICKET_QR_TEMPLATE,
    appointment: bool = False,
    area: str = SELF_SERVICE_AREA,
) -> QueueTicket:
    """The printed ticket (Chinese, as every slip): number, business, people ahead, wait."""
    kind = TICKET_TYPE_ZH.get(category.ticket_type, "排队号") if category else "排队号"
    return QueueTicket(
        hall_name=hall_name,
        ticket_number=ticket.label,
        category=f"预约{kind}" if appointment else kind,
        business=category.area_zh if category else ticket.category,
        people_ahead=None if ticket.offline else ticket.people_ahead,
        estimated_wait_min=None if ticket.offline else wait_minutes(ticket.wait_estimate_s),
        issued_at=ticket.issued_at,
        qr_payload=ticket_qr_payload(ticket.ticket_id, qr_template),
        offline=ticket.offline,
        green_channel=ticket.priority == "green",
        area=area,
    )


@dataclass(frozen=True)
class TicketPrint:
    """A ticket and how its printing went (``failure`` None: the applicant holds it)."""

    ticket: Ticket
    failure: BaseException | None = None


def print_ticket(
    printer: TicketPrinter,
    ticket: Ticket,
    slip: QueueTicket,
    *,
    reprint: bool,
    on_print_failed: Callable[[UnprintedTicket], None] | None,
) -> TicketPrint:
    """Print ``slip``; on any failure report the ticket through ``on_print_failed`` here, on
    the worker thread, so a wipe of the flow meanwhile cannot lose the fact."""
    try:
        print_slip(printer, queue_ticket_layout(slip))
    except Exception as exc:  # any failure: the slip is not valid
        if on_print_failed is not None:
            on_print_failed(unprinted(ticket, exc, reprint=reprint))
        return TicketPrint(ticket, exc)
    return TicketPrint(ticket)
