"""Appointment check-in (预约签到) by ID card, booking code on the keypad, or booking QR.

    CHECKING ─> IDENTIFY ─ card_read / code_scanned / enter_code()+submit_code() ─> [look up]
        └─> UNAVAILABLE     [look up] ─> CHOOSE_BOOKING (several today) ─ choose() ─┐
                                     └─> NOT_FOUND                                   │
                            [check in + print] <─────────── one booking ────────────┘
                              ├─> DONE | PRINT_FAILED | REPRINT_OFFER (checked in before)
                              ├─> TOO_EARLY (hall: appointment_too_early)
                              ├─> FORFEITED (hall: appointment_forfeited: over an hour late)
                              └─> NOT_FOUND / REFUSED
    FORFEITED, NOT_FOUND ─ take_normal_ticket() ─> ended = HandOver(TICKET, area, identity)

The windows are the hall's: the flow never judges "early" or "late" itself, it shows the hall's
answer. The printer is asked before anything, and again right before the check-in (which is
when the hall issues the priority ticket), with the ticket journey's print-failure rules.

QR payloads accepted (``parse_booking_code``): ``HK1:B:<code>`` (the scanner's booking QR),
``hallkiosk:booking:<code>``, or the bare booking code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from drivers.identity.types import Identity, IdentitySource
from drivers.printer import QueueTicket, TicketPrinter
from hallkiosk.clock import Clock
from kiosk.flows.base import (
    Bilingual,
    FlowStateError,
    Msg,
    Notice,
    Outcome,
    PagedFlow,
    Pager,
    Worker,
)
from kiosk.flows.home import (
    NO_ID_NUMBER,
    Cancelled,
    Finished,
    HandOver,
    JourneyEnd,
    JourneyKind,
    problem_notice,
)
from kiosk.flows.keypad import Keypad
from kiosk.flows.printing import (
    PrinterNotReady,
    TicketPrint,
    UnprintedTicket,
    print_ticket,
    printer_notice,
    queue_ticket_slip,
    require_printer,
    unprinted,
)
from kiosk.flows.ticket import PrintFailedCallback, TicketSettings, TicketShown, shown
from kiosk.services.hall_gateway import (
    Booking,
    Catalog,
    Category,
    CheckedIn,
    HallRefusal,
    HallService,
)

BOOKING_QR_PREFIXES = ("HK1:B:", "HALLKIOSK:BOOKING:")
_CODE = re.compile(r"^[A-Z0-9-]{4,32}$")
_RECEIPT = re.compile(r"^YS[0-9]{13}$")  # a pre-review receipt, not a booking
ACTIVE = ("booked", "checked_in")


def parse_booking_code(text: str) -> str | None:
    """The booking code in a scanned text, or None when it is not a booking."""
    value = text.strip().upper()
    for prefix in BOOKING_QR_PREFIXES:
        if value.startswith(prefix):
            value = value.removeprefix(prefix)
            return value if _CODE.match(value) else None
    if ":" in value or _RECEIPT.match(value):
        return None  # another kind of payload (a ticket, a receipt, a URL)
    return value if _CODE.match(value) else None


@dataclass(frozen=True)
class CheckinSettings:
    booking_prefix: str = "YY"  # the keypad enters the digits; the code is prefix + digits
    code_digits: int = 12

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z]{0,4}", self.booking_prefix):
            raise ValueError("booking_prefix: 0-4 capital letters")
        if not 4 <= self.code_digits <= 28:
            raise ValueError("code_digits: 4-28")


class CheckinState(StrEnum):
    CHECKING = "checking"
    UNAVAILABLE = "unavailable"
    IDENTIFY = "identify"
    ENTER_CODE = "enter_code"
    CHOOSE_BOOKING = "choose_booking"
    REPRINT_OFFER = "reprint_offer"
    DONE = "done"
    PRINT_FAILED = "print_failed"
    TOO_EARLY = "too_early"
    FORFEITED = "forfeited"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    CLOSED = "closed"


S = CheckinState


@dataclass(frozen=True)
class CheckinView:
    bookings: tuple[Booking, ...] = ()  # CHOOSE_BOOKING: this page
    page: int = 0
    page_count: int = 1
    code_entry: str = ""  # ENTER_CODE: the digits typed so far
    code_prefix: str = ""
    code_complete: bool = False
    booking: Booking | None = None  # the booking this is about (after a look-up)
    ticket: TicketShown | None = None  # DONE / REPRINT_OFFER
    unprinted: UnprintedTicket | None = None  # PRINT_FAILED
    card_name: str | None = None


_PROMPTS: dict[CheckinState, Msg] = {
    S.IDENTIFY: Msg.of(
        "Please place your ID card on the reader, scan your booking QR code, "
        "or enter your booking number."
    ),
    S.ENTER_CODE: Msg.of("Please enter your booking number."),
    S.CHOOSE_BOOKING: Msg.of("You have several bookings today. Please choose one."),
    S.TOO_EARLY: Msg.of("It is too early to check in for this booking."),
    S.FORFEITED: Msg.of("This booking has lapsed. You can take a normal ticket instead."),
    S.NOT_FOUND: Msg.of("No booking was found for today."),
    S.PRINT_FAILED: Msg.of("Your ticket could not be printed. Please contact staff."),
}
_NOT_FOUND = Msg.of("No booking for today was found. Please check, or take a normal ticket.")
_NOT_ISSUED = Msg.of(
    "You are checked in, but your ticket could not be printed, so it is not valid. "
    "Please contact staff."
)


class CheckinFlow(PagedFlow[CheckinState, Booking]):
    name = "checkin"

    def __init__(
        self,
        worker: Worker,
        clock: Clock,
        hall: HallService,
        printer: TicketPrinter,
        *,
        settings: CheckinSettings | None = None,
        ticket_settings: TicketSettings | None = None,
        page_size: int = 6,
        identity: Identity | None = None,
        code: str | None = None,
        on_print_failed: PrintFailedCallback | None = None,
    ) -> None:
        super().__init__(worker, CheckinState.CHECKING)
        self._clock = clock
        self._hall = hall
        self._printer = printer
        self._settings = settings or CheckinSettings()
        self._ticket_settings = ticket_settings or TicketSettings()
        self._on_print_failed = on_print_failed
        self.keypad = Keypad(self._settings.code_digits, secret=False)
        self._pager = Pager(size=page_size)
        self._ended: JourneyEnd | None = None
        self._clear()
        self._job(
            Msg.of("Checking the printer…"),
            self._prepare,
            lambda outcome: self._prepared(outcome, identity, code),
        )

    def _clear(self) -> None:
        self._catalog: Catalog | None = None
        self._identity: Identity | None = None
        self._booking: Booking | None = None
        self._checked: CheckedIn | None = None
        self._unprinted: UnprintedTicket | None = None
        self._pager.show(())
        self.keypad.clear()

    # -- what the screen reads ---------------------------------------------------------------

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def prompt(self) -> Msg | None:
        if self._state is S.DONE and self._checked is not None:
            return Msg.of(
                "You are checked in. Your number is {ticket}. Please take your ticket.",
                ticket=self._checked.ticket.label,
            )
        if self._state is S.REPRINT_OFFER and self._checked is not None:
            return Msg.of(
                "You are already checked in with ticket {ticket}. Print it again?",
                ticket=self._checked.ticket.label,
            )
        return _PROMPTS.get(self._state)

    @property
    def view(self) -> CheckinView:
        checked = self._checked
        return CheckinView(
            bookings=self._pager.page,
            page=self._pager.index,
            page_count=self._pager.count,
            code_entry=self.keypad.display,
            code_prefix=self._settings.booking_prefix,
            code_complete=self.keypad.complete,
            booking=self._booking,
            ticket=shown(checked.ticket, self._category(checked.ticket.category))
            if checked is not None and self._state in (S.DONE, S.REPRINT_OFFER)
            else None,
            unprinted=self._unprinted,
            card_name=self._identity.name_masked if self._identity else None,
        )

    # -- touches and devices -----------------------------------------------------------------

    def card_read(self, identity: Identity) -> bool:
        if self.busy is not None or self._state not in (S.IDENTIFY, S.ENTER_CODE, S.NOT_FOUND):
            return False
        if identity.source is IdentitySource.STAFF_CARD:
            return False
        if identity.id_hash is None:
            self._notify(NO_ID_NUMBER)
            return True
        self._identity = identity
        self._look_up(identity_hash=identity.id_hash)
        return True

    def code_scanned(self, text: str) -> bool:
        if self.busy is not None or self._state not in (S.IDENTIFY, S.ENTER_CODE, S.NOT_FOUND):
            return False
        code = parse_booking_code(text)
        if code is None:
            self._notify(Notice(Msg.of("This code is not a booking code."), "not_a_booking"))
            return True
        self._look_up(booking_code=code)
        return True

    def enter_code(self) -> None:
        self._idle(S.IDENTIFY, S.NOT_FOUND)
        self.keypad.clear()
        self._go(S.ENTER_CODE)

    def press(self, digit: str) -> None:
        self._idle(S.ENTER_CODE)
        if self.keypad.press(digit):
            self._changed()

    def delete(self) -> None:
        self._idle(S.ENTER_CODE)
        self.keypad.delete()
        self._changed()

    def submit_code(self) -> None:
        self._idle(S.ENTER_CODE)
        if not self.keypad.complete:
            self._notify(
                Notice(
                    Msg.of("Please enter all {digits} digits.", digits=self._settings.code_digits),
                    "code_incomplete",
                )
            )
            return
        self._look_up(booking_code=self._settings.booking_prefix + self.keypad.take())

    def choose(self, booking_code: str) -> None:
        self._idle(S.CHOOSE_BOOKING)
        booking = next((b for b in self._pager.items if b.booking_code == booking_code), None)
        if booking is None:
            raise FlowStateError(f"{self.name}: no booking {booking_code!r} to choose")
        self._check_in(booking)

    def reprint(self) -> None:
        self._idle(S.REPRINT_OFFER)
        checked = self._checked
        assert checked is not None
        slip = self._slip(checked)
        self._job(
            Msg.of("Printing your ticket…"),
            lambda: self._print(checked, slip, reprint=True),
            self._printed,
        )

    def take_normal_ticket(self) -> None:
        """A lapsed or unknown booking: continue in the ticket journey (same area, same card)."""
        self._idle(S.FORFEITED, S.NOT_FOUND)
        area = self._booking.area if self._booking and self._state is S.FORFEITED else None
        self._end(HandOver(JourneyKind.TICKET, area=area, identity=self._identity))

    def back(self) -> None:
        self._idle(S.ENTER_CODE, S.CHOOSE_BOOKING, S.TOO_EARLY, S.NOT_FOUND, S.REFUSED)
        self.keypad.clear()
        self._identity = self._booking = None
        self._pager.show(())
        self._go(S.IDENTIFY)

    def finish(self) -> None:
        self._idle(S.DONE, S.PRINT_FAILED)
        checked = self._checked
        done = self._state is S.DONE and checked is not None
        self._end(Finished("checkin", checked.ticket.ticket_id if checked else "", evaluate=done))

    def cancel(self) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: cancel while busy")
        if self._state is not S.CLOSED:
            self._end(Cancelled())

    def wipe(self) -> None:
        self._clear()
        self._state = S.CLOSED
        super().wipe()

    # -- jobs --------------------------------------------------------------------------------

    def _prepare(self) -> Catalog:
        require_printer(self._printer)
        return self._hall.catalog()

    def _prepared(
        self, outcome: Outcome[Catalog], identity: Identity | None, code: str | None
    ) -> None:
        if not outcome.ok:
            self._go(S.UNAVAILABLE, problem_notice(outcome.error))
            return
        self._catalog = outcome.get()
        self._go(S.IDENTIFY)
        if identity is not None:
            self.card_read(identity)
        elif code is not None:
            self.code_scanned(code)

    def _look_up(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> None:
        def job() -> list[Booking]:
            return self._hall.find_bookings(identity_hash=identity_hash, booking_code=booking_code)

        self._job(Msg.of("Looking up your booking…"), job, self._found)

    def _found(self, outcome: Outcome[list[Booking]]) -> None:
        if not outcome.ok:
            self._refused(outcome.error)
            return
        found = outcome.get()
        active = [b for b in found if b.status in ACTIVE]
        if not found:
            self._go(S.NOT_FOUND, Notice(_NOT_FOUND, "appointment_not_found"))
        elif len(active) > 1:
            self._pager.show(tuple(sorted(active, key=lambda b: b.slot_start)))
            self._go(S.CHOOSE_BOOKING)
        else:
            # one booking to act on; a lapsed or cancelled one goes to the hall all the same,
            # so the applicant hears the hall's own words for it
            now = self._clock.now()
            pick = active or found
            self._check_in(min(pick, key=lambda b: abs((b.slot_start - now).total_seconds())))

    def _check_in(self, booking: Booking) -> None:
        self._booking = booking
        code = booking.booking_code

        def job() -> TicketPrint | CheckedIn:
            require_printer(self._printer)  # the hall issues the ticket at check-in
            checked = self._hall.check_in(booking_code=code)
            if checked.ticket.reprint:
                return checked
            return self._print(checked, self._slip(checked), reprint=False)

        self._job(Msg.of("Checking you in…"), job, self._checked_in)

    def _print(self, checked: CheckedIn, slip: QueueTicket, *, reprint: bool) -> TicketPrint:
        return print_ticket(
            self._printer,
            checked.ticket,
            slip,
            reprint=reprint,
            on_print_failed=self._on_print_failed,
        )

    def _checked_in(self, outcome: Outcome[TicketPrint | CheckedIn]) -> None:
        if not outcome.ok:
            self._refused(outcome.error)
            return
        result = outcome.get()
        if isinstance(result, CheckedIn):
            self._checked = result
            self._booking = result.booking
            self._go(S.REPRINT_OFFER)
            return
        self._printed(outcome)

    def _printed(self, outcome: Outcome[TicketPrint | CheckedIn]) -> None:
        if not outcome.ok:
            self._refused(outcome.error)
            return
        result = outcome.get()
        assert isinstance(result, TicketPrint)
        reprint = self._state is S.REPRINT_OFFER
        if not reprint:
            assert self._booking is not None
            self._checked = CheckedIn(self._booking, result.ticket)
        if result.failure is not None:
            self._unprinted = unprinted(result.ticket, result.failure, reprint=reprint)
            self._go(S.PRINT_FAILED, Notice(_NOT_ISSUED, "ticket_not_printed", call_staff=True))
            return
        self._go(S.DONE)

    def _refused(self, error: BaseException | None) -> None:
        if isinstance(error, HallRefusal):
            state = {
                "appointment_too_early": S.TOO_EARLY,
                "appointment_forfeited": S.FORFEITED,
                "appointment_not_found": S.NOT_FOUND,
            }.get(error.code, S.REFUSED)
            self._go(state, Notice(Bilingual.from_error(error), error.code))
        elif isinstance(error, PrinterNotReady):
            self._go(S.UNAVAILABLE, printer_notice(error))
        else:
            self._go(S.REFUSED, problem_notice(error))

    # -- helpers -----------------------------------------------------------------------------

    def _slip(self, checked: CheckedIn) -> QueueTicket:
        catalog = self._catalog
        hall_name = self._ticket_settings.hall_name or (catalog.hall_name_zh if catalog else "")
        return queue_ticket_slip(
            checked.ticket,
            self._category(checked.ticket.category),
            hall_name=hall_name,
            qr_template=self._ticket_settings.qr_template,
            appointment=True,
        )

    def _category(self, category_id: str) -> Category | None:
        if self._catalog is None:
            return None
        return next((c for c in self._catalog.categories if c.id == category_id), None)

    def _idle(self, *states: CheckinState) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()


__all__ = ["CheckinFlow", "CheckinSettings", "CheckinState", "CheckinView", "parse_booking_code"]
