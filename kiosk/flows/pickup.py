"""Certificate pickup from the locker (自助取件): ID card, choose the item, 6-digit password,
the bay opens, the applicant takes the item and shuts the door.

    IDENTIFY ─card_read─> [looking] ─> NO_ITEMS | CHOOSE | PASSWORD | OVERDUE | HELP
    CHOOSE ─choose─> PASSWORD | OVERDUE            (PASSWORD, OVERDUE ─back─> CHOOSE)
    PASSWORD ─confirm─> [opening] ─> OPEN | PASSWORD (wrong: tries left) | LOCKED | OVERDUE
                                      | HELP (door jammed, bay fault, lockerd down)
    OPEN ─door_closed─> DONE ─finish─> ended Finished("pickup", deposit id)
    PASSWORD, LOCKED ─new_code─> NEW_CODE;   any idle state ─contact_staff─> HELP
    any idle state ─cancel─> CLOSED (ended Cancelled);   wipe() ─> CLOSED

A new code is never issued from here: lockerd's ``deposit.reissue_password`` is a staff call,
and it clears the item's lockout, so an applicant-side button would undo the limit on guessing.
The flow explains that staff issue the new code (sent by SMS to the phone of the case) and
raises a ``HelpRequest`` for the app to pass on.

The password digits live only in the keypad until ``confirm`` takes them into the job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from drivers.identity.types import Identity, IdentitySource
from kiosk.flows.base import (
    Bilingual,
    FlowStateError,
    Msg,
    Notice,
    Outcome,
    PagedFlow,
    Pager,
    Text,
    Worker,
)
from kiosk.flows.home import NO_ID_NUMBER, Cancelled, Finished, JourneyEnd
from kiosk.flows.keypad import Keypad
from kiosk.services.locker_gateway import (
    CabinetGrid,
    ChooseDeposit,
    Deposit,
    GridPosition,
    LockedOut,
    LockerGateway,
    LockerGatewayError,
    LockerStatus,
    NotFound,
    Opened,
    Overdue,
    WrongPassword,
)

PASSWORD_DIGITS = 6


class PickupState(StrEnum):
    IDENTIFY = "identify"
    NO_ITEMS = "no_items"
    CHOOSE = "choose"
    PASSWORD = "password"  # noqa: S105 - the state's name, not a secret
    OPEN = "open"
    DONE = "done"
    OVERDUE = "overdue"
    LOCKED = "locked"
    NEW_CODE = "new_code"
    HELP = "help"
    CLOSED = "closed"


S = PickupState


@dataclass(frozen=True)
class HelpRequest:
    """Fetch staff to this kiosk. No personal data: the reason and the locker references."""

    reason: str  # new_code / applicant_asked / door_jammed / bay_fault / lockerd_unavailable ...
    deposit_id: int | None = None
    bay_id: str | None = None


@dataclass(frozen=True)
class OpenBay:
    """The bay to point at: its id, size, and where it sits in the cabinet picture."""

    bay_id: str
    size: str | None
    position: GridPosition | None  # None when lockerd's layout could not be read
    grid: CabinetGrid | None
    door: str = "unlocked"  # unlocked -> open (pulled) -> closed


@dataclass(frozen=True)
class PickupView:
    deposits: tuple[Deposit, ...] = ()  # CHOOSE: this page
    page: int = 0
    page_count: int = 1
    selected: Deposit | None = None
    entry: str = ""  # the password box: a dot per digit
    can_confirm: bool = False
    attempts_left: int | None = None  # after a wrong password
    locked_until: datetime | None = None  # LOCKED
    open_bay: OpenBay | None = None  # OPEN, DONE


HelpCallback = Callable[[HelpRequest], None]

_PROMPTS: dict[PickupState, Msg] = {
    S.IDENTIFY: Msg.of("Please place your ID card on the reader."),
    S.CHOOSE: Msg.of("You have several items waiting. Please choose one."),
    S.PASSWORD: Msg.of("Please enter your 6-digit pickup password."),
    S.DONE: Msg.of("Thank you. Please take your ID card with you."),
}
_NO_ITEMS = Msg.of(
    "No item is waiting for you. If you received a pickup message, please ask staff for help."
)
_OVERDUE = Msg.of(
    "The pickup deadline for this item has passed. Please collect it at the pickup window "
    "during office hours."
)
_NEW_CODE = Msg.of(
    "A new pickup password can only be issued by staff. We have asked staff to help you. "
    "The new password will be sent by SMS to the phone number registered with your case."
)
_STAFF_COMING = Msg.of("Staff have been asked to come and help you. Please wait here.")


class PickupFlow(PagedFlow[PickupState, Deposit]):
    name = "pickup"

    def __init__(
        self,
        worker: Worker,
        locker: LockerGateway,
        *,
        page_size: int = 6,
        identity: Identity | None = None,
        on_help: HelpCallback | None = None,
        grid_rows: int = 6,
    ) -> None:
        super().__init__(worker, S.IDENTIFY)
        self._locker = locker
        self._on_help = on_help
        self._grid_rows = grid_rows
        self.keypad = Keypad(PASSWORD_DIGITS, secret=True)
        self._pager = Pager(size=page_size)
        self._ended: JourneyEnd | None = None
        self._clear()
        if identity is not None:
            self.card_read(identity)

    def _clear(self) -> None:
        self._identity: Identity | None = None
        self.keypad.clear()
        self._pager.show(())
        self._selected: Deposit | None = None
        self._layout: LockerStatus | None = None
        self._open_bay: OpenBay | None = None
        self._attempts_left: int | None = None
        self._locked_until: datetime | None = None
        self.help_request: HelpRequest | None = None
        self._doors_seen: list[tuple[str, str]] = []  # door events while the bay is opening

    # -- what the screen reads ---------------------------------------------------------------

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def identity(self) -> Identity | None:
        return self._identity

    @property
    def prompt(self) -> Msg | None:
        """What to speak in this state (the app speaks it in the UI language)."""
        if self._state is S.OPEN and self._open_bay is not None:
            return Msg.of(
                "Bay {bay} is open. Please take your item and close the door.",
                bay=self._open_bay.bay_id,
            )
        return _PROMPTS.get(self._state)

    @property
    def view(self) -> PickupView:
        return PickupView(
            deposits=self._pager.page,
            page=self._pager.index,
            page_count=self._pager.count,
            selected=self._selected,
            entry=self.keypad.display,
            can_confirm=self._state is S.PASSWORD and self.keypad.complete and self.busy is None,
            attempts_left=self._attempts_left,
            locked_until=self._locked_until,
            open_bay=self._open_bay,
        )

    # -- card and choice ---------------------------------------------------------------------

    def card_read(self, identity: Identity) -> bool:
        """The applicant's card: look up what waits for it. False when not taken here."""
        if self.busy is not None or identity.source is IdentitySource.STAFF_CARD:
            return False
        if self._state not in (S.IDENTIFY, S.NO_ITEMS):
            return False
        if identity.id_hash is None:
            self._notify(NO_ID_NUMBER)
            return True
        self._clear()
        self._identity = identity
        id_hash = identity.id_hash

        def look() -> tuple[list[Deposit], LockerStatus | None]:
            deposits = self._locker.deposits_for(id_hash)
            try:
                layout = self._locker.status()
            except LockerGatewayError:
                layout = None  # the picture helps but is not needed: the bay id is shown
            return deposits, layout

        self._job(Msg.of("Looking for your items…"), look, self._found)
        return True

    def _found(self, outcome: Outcome[tuple[list[Deposit], LockerStatus | None]]) -> None:
        if not outcome.ok:
            self._fail(outcome.error)
            return
        deposits, layout = outcome.get()
        self._pager.show(tuple(deposits))
        self._layout = layout
        if not deposits:
            self._go(S.NO_ITEMS, Notice(_NO_ITEMS, code="no_items"))
        elif len(deposits) == 1:
            self._select(deposits[0])
        else:
            self._go(S.CHOOSE)

    def choose(self, deposit_id: int) -> None:
        self._idle(S.CHOOSE)
        chosen = next((d for d in self._pager.items if d.deposit_id == deposit_id), None)
        if chosen is None:
            raise FlowStateError(f"{self.name}: deposit {deposit_id} is not on the list")
        self._select(chosen)

    def back(self) -> None:
        """From the keypad or the overdue note back to the list (several items only)."""
        self._idle(S.PASSWORD, S.OVERDUE)
        if len(self._pager.items) < 2:
            raise FlowStateError(f"{self.name}: nothing to go back to")
        self.keypad.clear()
        self._selected = None
        self._attempts_left = None
        self._go(S.CHOOSE)

    def _select(self, deposit: Deposit) -> None:
        self._selected = deposit
        self.keypad.clear()
        if deposit.overdue:
            self._go(S.OVERDUE, Notice(_OVERDUE, code="overdue"))
        else:
            self._go(S.PASSWORD)

    # -- the keypad --------------------------------------------------------------------------

    def press(self, digit: str) -> None:
        self._idle(S.PASSWORD)
        if self.keypad.press(digit):
            self._changed()

    def delete(self) -> None:
        self._idle(S.PASSWORD)
        self.keypad.delete()
        self._changed()

    def confirm(self) -> None:
        """Send the password; the bay opens when it matches."""
        self._idle(S.PASSWORD)
        if not self.keypad.complete:
            self._notify(Notice(_PROMPTS[S.PASSWORD], code="password_incomplete"))
            return
        assert self._identity is not None and self._identity.id_hash is not None
        assert self._selected is not None
        id_hash = self._identity.id_hash
        deposit_id = self._selected.deposit_id
        password = self.keypad.take()
        request_id = uuid.uuid4().hex  # a retry after a broken connection never opens twice
        self._doors_seen = []

        def open_bay() -> Opened:
            return self._locker.pickup(id_hash, password, deposit_id, request_id)

        self._job(Msg.of("Opening bay…"), open_bay, self._opened)

    def _opened(self, outcome: Outcome[Opened]) -> None:
        error = outcome.error
        if error is None:
            self._show_open(outcome.get())
        elif isinstance(error, WrongPassword):
            self._attempts_left = error.attempts_left
            self._notify(Notice(Bilingual.from_error(error), code=error.code))
        elif isinstance(error, LockedOut):
            self._locked_until = error.until
            self._go(S.LOCKED, Notice(Bilingual.from_error(error), code=error.code))
        elif isinstance(error, Overdue):
            self._go(S.OVERDUE, Notice(Bilingual.from_error(error), code=error.code))
        elif isinstance(error, NotFound):
            self._go(S.NO_ITEMS, Notice(Bilingual.from_error(error), code=error.code))
        elif isinstance(error, ChooseDeposit):
            self._go(S.CHOOSE, Notice(Bilingual.from_error(error), code=error.code))
        else:
            self._fail(error)

    def _show_open(self, opened: Opened) -> None:
        self._attempts_left = None
        layout = self._layout
        bay = layout.bay(opened.bay_id) if layout is not None else None
        grid = layout.grid(self._grid_rows) if layout is not None else None
        self._open_bay = OpenBay(
            bay_id=opened.bay_id,
            size=bay.size if bay is not None else None,
            position=grid.position(opened.bay_id) if grid is not None else None,
            grid=grid,
        )
        self._go(S.OPEN)
        seen, self._doors_seen = self._doors_seen, []
        for bay_id, door in seen:  # a quick hand beat the reply to the screen
            self._door(bay_id, door)

    # -- the open door -----------------------------------------------------------------------

    def door_opened(self, bay_id: str) -> None:
        """lockerd saw the door open (the app calls this on the UI thread)."""
        self._door(bay_id, "open")

    def door_closed(self, bay_id: str) -> None:
        """lockerd saw the door shut: the item has been taken."""
        self._door(bay_id, "closed")

    def _door(self, bay_id: str, door: str) -> None:
        if self._state is S.PASSWORD and self.busy is not None:
            self._doors_seen.append((bay_id, door))
            return
        bay = self._open_bay
        if self._state is not S.OPEN or bay is None or bay.bay_id != bay_id:
            return  # another bay, or no opening of ours
        if door in ("open", "closed"):
            self._open_bay = replace(bay, door=door)
            if door == "closed":
                self._go(S.DONE)
            else:
                self._changed()

    # -- fallbacks and the end ---------------------------------------------------------------

    def new_code(self) -> None:
        """The SMS is lost or the card is locked out: staff issue a new code by SMS."""
        self._idle(S.PASSWORD, S.LOCKED)
        self.keypad.clear()
        self._ask_help("new_code")
        self._go(S.NEW_CODE, Notice(_NEW_CODE, code="new_code", call_staff=True))

    def contact_staff(self) -> None:
        if self.busy is not None or self._state is S.CLOSED:
            raise FlowStateError(f"{self.name}: cannot call staff now")
        self.keypad.clear()
        self._ask_help("applicant_asked")
        self._go(S.HELP, Notice(_STAFF_COMING, code="applicant_asked", call_staff=True))

    def finish(self) -> None:
        """Done with the last screen. Only a collected item is offered for evaluation."""
        self._idle(S.DONE, S.NO_ITEMS, S.OVERDUE, S.LOCKED, S.NEW_CODE, S.HELP)
        reference = str(self._selected.deposit_id) if self._selected is not None else ""
        self._end(Finished("pickup", reference, evaluate=self._state is S.DONE))

    def cancel(self) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: cancel while busy")
        if self._state is not S.CLOSED:
            self._end(Cancelled())

    def _fail(self, error: BaseException | None) -> None:
        """Faults the applicant cannot fix (jam, board fault, lockerd down): lockerd's own
        words when it gave any, and a staff call."""
        self.keypad.clear()
        text: Text
        if isinstance(error, LockerGatewayError):
            reason, text = error.code, Bilingual.from_error(error)
        else:
            reason = "kiosk_error"
            text = Msg.of("Something went wrong. Please try again or contact staff.")
        self._ask_help(reason)
        self._go(S.HELP, Notice(text, code=reason, call_staff=True))

    def _ask_help(self, reason: str) -> None:
        selected = self._selected
        bay = self._open_bay.bay_id if self._open_bay is not None else None
        if bay is None and selected is not None:
            bay = selected.bay_id
        self.help_request = HelpRequest(
            reason, selected.deposit_id if selected is not None else None, bay
        )
        if self._on_help is not None:
            self._on_help(self.help_request)

    def _idle(self, *states: PickupState) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()

    # -- privacy -----------------------------------------------------------------------------

    def wipe(self) -> None:
        """Timeout or the end: the identity, the digits and the item list go."""
        self._clear()
        self._state = S.CLOSED
        super().wipe()
