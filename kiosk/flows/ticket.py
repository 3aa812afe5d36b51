"""Take a queue ticket (取号): business area, then 收件/取件/咨询, an optional card, print.

    CHECKING ─> CHOOSE_AREA ─> CHOOSE_TYPE ─> IDENTIFY ─(card / skip)─> [job] ─> DONE
        │            └──── ask_green_channel() ─> GREEN_CONFIRM ─┘          ├─> REPRINT_OFFER
        └─> UNAVAILABLE (printer or hall)                                   ├─> PRINT_FAILED
                                                                            └─> REFUSED
    any idle state ─ cancel() ─> CLOSED (ended = Cancelled)

The printer is asked before the applicant starts and again right before a number is asked
for: a kiosk that cannot print never takes a number from the hall. A number the hall issued
but the printer did not finish is not handed out: the flow shows PRINT_FAILED and reports an
``UnprintedTicket`` through ``on_print_failed`` (called on the worker thread, right when the
failure happens, so it is never lost to a wipe) for the app to raise as an alarm.

Green channel (绿色通道): automatic for a card holder at or over ``elderly_age_years`` on the
hall's local date; on request (with a short "staff may check" confirmation) for the disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from drivers.identity.types import Identity, IdentitySource
from drivers.printer import TicketPrinter
from hallkiosk.clock import Clock
from kiosk.flows.base import (
    Bilingual,
    Flow,
    FlowStateError,
    Msg,
    Notice,
    Outcome,
    PagedFlow,
    Pager,
    Worker,
)
from kiosk.flows.home import NO_ID_NUMBER, Cancelled, Finished, JourneyEnd, problem_notice
from kiosk.flows.printing import (
    TICKET_QR_TEMPLATE,
    PrinterNotReady,
    TicketPrint,
    UnprintedTicket,
    print_ticket,
    printer_notice,
    queue_ticket_slip,
    require_printer,
    unprinted,
    wait_minutes,
)
from kiosk.services.hall_gateway import (
    Catalog,
    Category,
    HallService,
    Ticket,
)

PrintFailedCallback = Callable[[UnprintedTicket], None]
GreenReason = Literal["elderly", "disabled"]

TYPE_TEXT: dict[str, Msg] = {
    "submit": Msg.of("Submit documents"),
    "collect": Msg.of("Collect results"),
    "consult": Msg.of("Consultation"),
}


@dataclass(frozen=True)
class TicketSettings:
    elderly_age_years: int = 60  # 绿色通道 by age, from the card's birth date
    qr_template: str = TICKET_QR_TEMPLATE
    hall_name: str | None = None  # printed; None: the hall catalog's Chinese name

    def __post_init__(self) -> None:
        if not 50 <= self.elderly_age_years <= 100:
            raise ValueError("elderly_age_years: 50-100")
        if "{ticket_id}" not in self.qr_template:
            raise ValueError("qr_template needs {ticket_id}")


# -- what the screen shows -------------------------------------------------------------------


@dataclass(frozen=True)
class AreaOption:
    area: str
    name: Bilingual  # from the hall catalog


@dataclass(frozen=True)
class TypeOption:
    category_id: str
    ticket_type: str  # submit / collect / consult
    text: Msg


@dataclass(frozen=True)
class TicketShown:
    """A ticket as the screen shows it (the printed slip says the same)."""

    ticket_id: str
    label: str  # A023
    business: Bilingual | None
    kind: Msg  # Submit documents / ...
    people_ahead: int | None  # None: offline
    wait_min: int | None  # rounded up
    offline: bool
    green: bool
    queue_text: Msg


def shown(ticket: Ticket, category: Category | None) -> TicketShown:
    wait_min = None if ticket.offline else wait_minutes(ticket.wait_estimate_s)
    return TicketShown(
        ticket_id=ticket.ticket_id,
        label=ticket.label,
        business=Bilingual(category.area_zh, category.area_en) if category else None,
        kind=TYPE_TEXT.get(category.ticket_type, Msg.of("Queue ticket"))
        if category
        else Msg.of("Queue ticket"),
        people_ahead=None if ticket.offline else ticket.people_ahead,
        wait_min=wait_min,
        offline=ticket.offline,
        green=ticket.priority == "green",
        queue_text=queue_text(ticket, wait_min),
    )


def queue_text(ticket: Ticket, wait_min: int | None) -> Msg:
    if ticket.offline or ticket.people_ahead is None:
        return Msg.of("Issued offline: please watch the calling screen for your turn.")
    if ticket.people_ahead == 0:
        return Msg.of("You are next. Please watch the calling screen.")
    if wait_min is None:
        return Msg.of("{people} people are ahead of you.", people=ticket.people_ahead)
    return Msg.of(
        "{people} people are ahead of you; the wait is about {minutes} min.",
        people=ticket.people_ahead,
        minutes=wait_min,
    )


@dataclass(frozen=True)
class TicketView:
    areas: tuple[AreaOption, ...] = ()  # this page
    page: int = 0
    page_count: int = 1
    area: AreaOption | None = None
    types: tuple[TypeOption, ...] = ()
    category: TypeOption | None = None
    card_name: str | None = None  # masked (张*三), when a card was read
    green: GreenReason | None = None
    ticket: TicketShown | None = None  # DONE; REPRINT_OFFER: the ticket already held
    unprinted: UnprintedTicket | None = None  # PRINT_FAILED
    catalog_cached: bool = False  # the hall did not answer; its last catalog is shown


class TicketState(StrEnum):
    CHECKING = "checking"
    UNAVAILABLE = "unavailable"
    CHOOSE_AREA = "choose_area"
    CHOOSE_TYPE = "choose_type"
    IDENTIFY = "identify"
    GREEN_CONFIRM = "green_confirm"
    REPRINT_OFFER = "reprint_offer"
    DONE = "done"
    PRINT_FAILED = "print_failed"
    REFUSED = "refused"
    CLOSED = "closed"


S = TicketState
_PROMPTS: dict[TicketState, Msg] = {
    S.CHOOSE_AREA: Msg.of("Please choose the business you came for."),
    S.CHOOSE_TYPE: Msg.of("Please choose: submit documents, collect results, or consultation."),
    S.IDENTIFY: Msg.of("Please place your ID card on the reader, or continue without a card."),
    S.GREEN_CONFIRM: Msg.of(
        "The green channel is for people with disabilities. Staff may ask to see your certificate."
    ),
    S.PRINT_FAILED: Msg.of("Your ticket could not be printed. Please contact staff."),
}


@dataclass
class _Data:
    """Everything personal or chosen in this journey: dropped as a whole by wipe()."""

    catalog: Catalog | None = None
    area: AreaOption | None = None
    category: Category | None = None
    identity: Identity | None = None
    disabled_green: bool = False
    green_back: TicketState = TicketState.IDENTIFY
    ticket: Ticket | None = None
    unprinted: UnprintedTicket | None = None
    types: tuple[TypeOption, ...] = field(default_factory=tuple)


class TicketFlow(PagedFlow[TicketState, AreaOption]):
    name = "ticket"

    def __init__(
        self,
        worker: Worker,
        clock: Clock,
        hall: HallService,
        printer: TicketPrinter,
        *,
        settings: TicketSettings | None = None,
        page_size: int = 6,
        area: str | None = None,
        identity: Identity | None = None,
        on_print_failed: PrintFailedCallback | None = None,
    ) -> None:
        super().__init__(worker, TicketState.CHECKING)
        self._clock = clock
        self._hall = hall
        self._printer = printer
        self._settings = settings or TicketSettings()
        self._on_print_failed = on_print_failed
        self._pager = Pager(size=page_size)
        self._d = _Data(identity=_usable(identity))
        self._ended: JourneyEnd | None = None
        self._job(
            Msg.of("Checking the printer…"),
            self._prepare,
            lambda outcome: self._prepared(outcome, area),
        )

    # -- what the screen reads ---------------------------------------------------------------

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def prompt(self) -> Msg | None:
        if self._state is S.DONE and self._d.ticket is not None:
            return Msg.of(
                "Your number is {ticket}. Please take your ticket.", ticket=self._d.ticket.label
            )
        if self._state is S.REPRINT_OFFER and self._d.ticket is not None:
            return Msg.of(
                "You already have ticket {ticket}. Print it again?", ticket=self._d.ticket.label
            )
        return _PROMPTS.get(self._state)

    @property
    def view(self) -> TicketView:
        d = self._d
        # a ticket is shown only while it is valid: never the number of an unprinted one
        valid = d.ticket is not None and self._state in (S.DONE, S.REPRINT_OFFER)
        ticket = shown(d.ticket, d.category) if valid and d.ticket is not None else None
        return TicketView(
            areas=self._pager.page,
            page=self._pager.index,
            page_count=self._pager.count,
            area=d.area,
            types=d.types,
            category=next(
                (t for t in d.types if d.category and t.category_id == d.category.id), None
            ),
            card_name=d.identity.name_masked if d.identity else None,
            green=self._green(),
            ticket=ticket,
            unprinted=d.unprinted,
            catalog_cached=bool(d.catalog and d.catalog.cached),
        )

    # -- touches -----------------------------------------------------------------------------

    def choose_area(self, area: str) -> None:
        self._idle(S.CHOOSE_AREA)
        self._enter_area(area)

    def choose_type(self, category_id: str) -> None:
        self._idle(S.CHOOSE_TYPE)
        catalog = self._d.catalog
        category = (
            next((c for c in catalog.categories if c.id == category_id), None) if catalog else None
        )
        if category is None or self._d.area is None or category.area != self._d.area.area:
            raise _state_error(self, f"no category {category_id!r} in this area")
        self._d.category = category
        if self._d.identity is not None:  # a card read earlier: no need to ask again
            self._issue()
        else:
            self._go(S.IDENTIFY)

    def skip_card(self) -> None:
        self._idle(S.IDENTIFY)
        self._issue()

    def card_read(self, identity: Identity) -> bool:
        """A card on the reader. Kept in the choosing states, used at once in IDENTIFY."""
        if self.busy is not None or identity.source is IdentitySource.STAFF_CARD:
            return False
        if self._state not in (S.CHOOSE_AREA, S.CHOOSE_TYPE, S.IDENTIFY):
            return False
        usable = _usable(identity)
        if usable is None:
            self._notify(NO_ID_NUMBER)
            return True
        self._d.identity = usable
        if self._state is S.IDENTIFY:
            self._issue()
        else:
            self._changed()
        return True

    def ask_green_channel(self) -> None:
        """The applicant asks for the disabled green channel: confirm, then carry on."""
        self._idle(S.CHOOSE_AREA, S.CHOOSE_TYPE, S.IDENTIFY)
        self._d.green_back = self._state
        self._go(S.GREEN_CONFIRM)

    def confirm_green(self) -> None:
        self._idle(S.GREEN_CONFIRM)
        self._d.disabled_green = True
        self._go(self._d.green_back)

    def decline_green(self) -> None:
        self._idle(S.GREEN_CONFIRM)
        self._d.disabled_green = False
        self._go(self._d.green_back)

    def reprint(self) -> None:
        self._idle(S.REPRINT_OFFER)
        ticket, category, hall_name = self._d.ticket, self._d.category, self._hall_name()
        assert ticket is not None
        self._job(
            Msg.of("Printing your ticket…"),
            lambda: self._print(ticket, category, hall_name, reprint=True),
            self._printed,
        )

    def back(self) -> None:
        self._idle(S.CHOOSE_TYPE, S.IDENTIFY, S.REFUSED)
        if self._state is S.IDENTIFY:
            self._go(S.CHOOSE_TYPE)
        else:
            self._d.area = self._d.category = None
            self._d.types = ()
            self._go(S.CHOOSE_AREA)

    def finish(self) -> None:
        """Done with the DONE or PRINT_FAILED screen."""
        self._idle(S.DONE, S.PRINT_FAILED)
        ticket = self._d.ticket
        done = self._state is S.DONE and ticket is not None
        self._end(Finished("ticket", ticket.ticket_id if ticket else "", evaluate=done))

    def cancel(self) -> None:
        if self.busy is not None:
            raise _state_error(self, "cancel while busy")
        if self._state is not S.CLOSED:
            self._end(Cancelled())

    def wipe(self) -> None:
        self._d = _Data()
        self._pager.show(())
        self._state = S.CLOSED
        super().wipe()

    # -- jobs --------------------------------------------------------------------------------

    def _prepare(self) -> Catalog:
        require_printer(self._printer)  # before the applicant chooses anything
        return self._hall.catalog()

    def _prepared(self, outcome: Outcome[Catalog], area: str | None) -> None:
        if not outcome.ok:
            self._go(S.UNAVAILABLE, problem_notice(outcome.error))
            return
        catalog = outcome.get()
        self._d.catalog = catalog
        areas: dict[str, AreaOption] = {}
        for c in catalog.categories:
            areas.setdefault(c.area, AreaOption(c.area, Bilingual(c.area_zh, c.area_en)))
        self._pager.show(tuple(areas.values()))
        if area is not None and area in areas:
            self._enter_area(area)
        else:
            self._go(S.CHOOSE_AREA)

    def _issue(self) -> None:
        category = self._d.category
        assert category is not None
        identity_hash = self._d.identity.id_hash if self._d.identity else None
        priority: Literal["normal", "green"] = "green" if self._green() else "normal"
        hall_name = self._hall_name()

        def job() -> TicketPrint:
            # asked again right before the number: paper may have run out since the start
            require_printer(self._printer)
            ticket = self._hall.issue_ticket(
                category.id, identity_hash=identity_hash, priority=priority
            )
            if ticket.reprint:
                return TicketPrint(ticket)  # the applicant decides first
            return self._print(ticket, category, hall_name, reprint=False)

        self._job(Msg.of("Getting your ticket…"), job, self._issued)

    def _print(
        self, ticket: Ticket, category: Category | None, hall_name: str, *, reprint: bool
    ) -> TicketPrint:
        slip = queue_ticket_slip(
            ticket, category, hall_name=hall_name, qr_template=self._settings.qr_template
        )
        return print_ticket(
            self._printer, ticket, slip, reprint=reprint, on_print_failed=self._on_print_failed
        )

    def _issued(self, outcome: Outcome[TicketPrint]) -> None:
        if not outcome.ok:
            self._refused(outcome.error)
            return
        result = outcome.get()
        self._d.ticket = result.ticket
        if result.ticket.reprint:
            self._go(S.REPRINT_OFFER)
            return
        self._printed(outcome)

    def _printed(self, outcome: Outcome[TicketPrint]) -> None:
        if not outcome.ok:
            self._refused(outcome.error)
            return
        result = outcome.get()
        if result.failure is not None:
            self._d.unprinted = unprinted(
                result.ticket, result.failure, reprint=self._state is S.REPRINT_OFFER
            )
            self._go(S.PRINT_FAILED, Notice(_NOT_ISSUED, "ticket_not_printed", call_staff=True))
            return
        self._go(S.DONE)

    def _refused(self, error: BaseException | None) -> None:
        if isinstance(error, PrinterNotReady):
            self._go(S.UNAVAILABLE, printer_notice(error))
        else:
            self._go(S.REFUSED, problem_notice(error))

    # -- helpers -----------------------------------------------------------------------------

    def _enter_area(self, area: str) -> None:
        catalog = self._d.catalog
        option = next((a for a in self._pager.items if a.area == area), None)
        if catalog is None or option is None:
            raise _state_error(self, f"no business area {area!r}")
        self._d.area = option
        self._d.types = tuple(
            TypeOption(c.id, c.ticket_type, TYPE_TEXT.get(c.ticket_type, Msg.of("Queue ticket")))
            for c in catalog.categories
            if c.area == area
        )
        self._go(S.CHOOSE_TYPE)

    def _green(self) -> GreenReason | None:
        identity = self._d.identity
        if identity is not None:
            age = identity.age_years(self._clock.now().date())
            if age is not None and age >= self._settings.elderly_age_years:
                return "elderly"
        return "disabled" if self._d.disabled_green else None

    def _hall_name(self) -> str:
        if self._settings.hall_name:
            return self._settings.hall_name
        return self._d.catalog.hall_name_zh if self._d.catalog else ""

    def _idle(self, *states: TicketState) -> None:
        if self.busy is not None:
            raise _state_error(self, "busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()


_NOT_ISSUED = Msg.of(
    "Your ticket could not be printed, so it is not valid. Please contact staff; "
    "they can see what happened."
)


def _usable(identity: Identity | None) -> Identity | None:
    """Only a card that gives an identity hash identifies the applicant to the hall."""
    if identity is None or identity.id_hash is None:
        return None
    if identity.source is IdentitySource.STAFF_CARD:
        return None
    return identity


def _state_error(flow: Flow[TicketState], what: str) -> FlowStateError:
    return FlowStateError(f"{flow.name}: {what} (state {flow.state.value})")
