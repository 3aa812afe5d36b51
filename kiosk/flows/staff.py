"""Staff mode: staff card + PIN, then loading certificates, taking back overdue items, reprint,
locking the kiosk and the hardware self-test.

    LOGIN ─card_read(staff card)─> PIN ─confirm─> [checking] ─> MENU | PIN (wrong) | PIN_LOCKED
    MENU ─start_loading─> LOAD_SCAN ─code_scanned─> [case] ─> LOAD_RECIPIENT | LOAD_SIZE
         LOAD_RECIPIENT ─card_read(applicant)─> LOAD_SIZE ─choose_size─> [opening] ─> LOAD_OPEN
         LOAD_OPEN ─confirm_loaded─> [storing] ─> LOAD_SCAN (next)   ─cancel_load─> LOAD_SCAN
         (once a size is chosen, the next scan opens a bay of that size at once: change_size())
    MENU ─show_overdue─> OVERDUE_LIST ─retrieve─> RETRIEVE_OPEN ─confirm_retrieved─> OVERDUE_LIST
    MENU ─self_test─> SELF_TEST;  MENU ─reprint─> MENU;  MENU ─lock_kiosk/unlock_kiosk─> ended
    any idle state ─back_to_menu─> MENU;  ─logout─> ended;  wipe() ─> CLOSED

Who a certificate is for: lockerd's ``deposit.start`` needs the recipient's keyed identity hash
and masked name. The case barcode carries only the case number, so a ``CaseDirectory`` is asked
first (in the app ``HallCaseDirectory``: the hall's ``case.lookup`` over its case table, which
``hall case import`` fills from the case system; kiosk/services/hall_service.py). A known case
goes straight to the size; when the hall knows no recipient for the case, or could not be asked
(unreachable, a refusal: the prompt says which), the clerk reads the applicant's ID card. The
pickup password lockerd generates is never shown: the hall sends it by SMS.

Wrong PINs are limited by ``StaffPinGuard`` (one per kiosk, kept by the app across sessions) as
well as by the card's own retry counter.

Locking the kiosk: with ``kiosk_locks`` (the kiosk's ``StaffLock``, kiosk/services/staff_lock.py)
the lock, with the clerk's staff id, is written to ``kiosk.db`` on the worker before the journey
hands over to the out-of-service page, so a restart finds it; an unlock is written the same way
before the journey hands back to home. If the write fails the clerk stays in the menu and is told.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from drivers.identity import (
    IdentityReader,
    IdentityReaderError,
    StaffPinBlocked,
    StaffPinFormat,
    StaffPinWrong,
)
from drivers.identity.types import Identity, IdentitySource
from drivers.printer import Cut, Layout, PaperStatus, PrintReport, Text, TicketPrinter
from drivers.printer.layout import Align
from drivers.scanner import FormatSettings, ScanKind, ScanRejected, classify
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
from kiosk.flows.home import Finished, HandOver, JourneyEnd, JourneyKind
from kiosk.flows.keypad import Keypad
from kiosk.flows.pickup import OpenBay
from kiosk.flows.printing import print_slip, printer_notice
from kiosk.flows.selftest import CheckResult, SelfTest
from kiosk.services.locker_gateway import (
    SIZES,
    Bay,
    Deposit,
    DoorNotClosed,
    LoadStarted,
    LockerGateway,
    LockerGatewayError,
    LockerStatus,
    NoFreeBay,
    Opened,
    Recipient,
    Size,
    Stored,
)
from kiosk.services.staff_lock import StaffLock

log = logging.getLogger(__name__)


class StaffState(StrEnum):
    LOGIN = "login"
    PIN = "pin"
    PIN_LOCKED = "pin_locked"
    MENU = "menu"
    LOAD_SCAN = "load_scan"
    LOAD_RECIPIENT = "load_recipient"
    LOAD_SIZE = "load_size"
    LOAD_OPEN = "load_open"
    OVERDUE_LIST = "overdue_list"
    RETRIEVE_OPEN = "retrieve_open"
    SELF_TEST = "self_test"
    CLOSED = "closed"


S = StaffState


# -- what the app keeps across staff sessions --------------------------------------------------


class StaffPinGuard:
    """Wrong staff PINs at this kiosk: ``max_wrong`` in a row lock staff login for
    ``lockout_s``, whatever card is used. Thread-safe; one per kiosk."""

    def __init__(self, clock: Clock, *, max_wrong: int = 3, lockout_s: float = 300.0) -> None:
        self._clock = clock
        self.max_wrong = max_wrong
        self.lockout_s = lockout_s
        self._wrong = 0
        self._until: datetime | None = None
        self._lock = threading.Lock()

    def locked_until(self) -> datetime | None:
        with self._lock:
            if self._until is not None and self._clock.now() >= self._until:
                self._until = None
                self._wrong = 0
            return self._until

    def tries_left(self) -> int:
        with self._lock:
            return self.max_wrong - self._wrong

    def wrong(self) -> datetime | None:
        """Count one wrong PIN; the lock's end when this one locked the login."""
        with self._lock:
            self._wrong += 1
            if self._wrong >= self.max_wrong:
                self._until = self._clock.now() + timedelta(seconds=self.lockout_s)
            return self._until

    def passed(self) -> None:
        with self._lock:
            self._wrong = 0
            self._until = None


class CaseDirectory(Protocol):
    def recipient_for(self, case_number: str, *, staff_id: str) -> Recipient | None:
        """Who may collect this case's certificate; None when the case is not known. May
        block (the flow calls it on its worker) and raise when it could not be asked."""
        ...


class MappingCaseDirectory:
    """Cases held in memory (case number -> hashed, masked recipient), e.g. for tests."""

    def __init__(self, cases: Mapping[str, Recipient]) -> None:
        self._cases = dict(cases)

    def recipient_for(self, case_number: str, *, staff_id: str = "") -> Recipient | None:
        return self._cases.get(case_number)


class RememberingPrinter(TicketPrinter):
    """Wraps the kiosk's printer and keeps the last slip printed in full, for staff reprint.
    In memory only; slips hold masked personal data at most."""

    def __init__(self, inner: TicketPrinter) -> None:
        self._inner = inner
        self.profile = inner.profile
        self._last: Layout | None = None
        self._lock = threading.Lock()

    @property
    def last(self) -> Layout | None:
        with self._lock:
            return self._last

    def status(self) -> PaperStatus:
        return self._inner.status()

    def print_layout(self, layout: Layout) -> PrintReport:
        report = self._inner.print_layout(layout)
        with self._lock:
            self._last = layout
        return report

    def close(self) -> None:
        self._inner.close()


def reprint_layout(layout: Layout) -> Layout:
    """The same slip marked as a reprint (补打) above the cut."""
    kept = tuple(e for e in layout.elements if not isinstance(e, Cut))
    return Layout(
        layout.kind, (*kept, Text("【补打】 REPRINT", bold=True, align=Align.CENTER), Cut())
    )


# -- the view -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    case_number: str
    bay_id: str
    deposit_id: int


@dataclass(frozen=True)
class StaffView:
    staff_id: str | None = None
    staff_name: str | None = None  # masked
    entry: str = ""  # PIN box: dots
    can_confirm: bool = False
    tries_left: int | None = None  # the kiosk's count, after a wrong PIN
    locked_until: datetime | None = None  # PIN_LOCKED
    case_number: str | None = None  # the load under way
    recipient_name: str | None = None  # masked
    size: Size | None = None  # the size the next scan opens at once
    open_bay: OpenBay | None = None  # LOAD_OPEN, RETRIEVE_OPEN
    loaded: tuple[Loaded, ...] = ()  # this session's loads, newest last
    pending_loads: tuple[Bay, ...] = ()  # bays left in "loading" (a fault, a lost session)
    overdue: tuple[Deposit, ...] = ()  # OVERDUE_LIST: this page
    page: int = 0
    page_count: int = 1
    results: tuple[CheckResult, ...] = ()  # SELF_TEST
    can_reprint: bool = False


_FORMATS = FormatSettings()


class StaffFlow(PagedFlow[StaffState, Deposit]):
    name = "staff"

    def __init__(
        self,
        worker: Worker,
        clock: Clock,
        locker: LockerGateway,
        reader: IdentityReader,
        guard: StaffPinGuard,
        *,
        cases: CaseDirectory | None = None,
        printer: RememberingPrinter | None = None,
        self_test: SelfTest | None = None,
        kiosk_locks: StaffLock | None = None,
        identity: Identity | None = None,
        page_size: int = 6,
        grid_rows: int = 6,
        pin_digits: tuple[int, int] = (4, 8),
    ) -> None:
        super().__init__(worker, S.LOGIN)
        self._clock = clock
        self._locker = locker
        self._reader = reader
        self._guard = guard
        self._cases = cases
        self._printer = printer
        self._self_test = self_test
        self._kiosk_locks = kiosk_locks
        self._grid_rows = grid_rows
        self.keypad = Keypad(pin_digits[0], pin_digits[1], secret=True)
        self._pager = Pager(size=page_size)
        self._ended: JourneyEnd | None = None
        self.kiosk_lock: bool | None = None  # the lock/unlock asked for (also in ``ended``)
        self._clear()
        if identity is not None:
            self.card_read(identity)

    def _clear(self) -> None:
        self.keypad.clear()
        self._card: Identity | None = None  # the staff card read, before the PIN
        self._staff: Identity | None = None  # after the PIN
        self._tries_left: int | None = None
        self._locked_until: datetime | None = None
        self._case: str | None = None
        self._recipient: Recipient | None = None
        self._case_lookup_failed = False  # LOAD_RECIPIENT: the directory could not be asked
        self._size: Size | None = None
        self._load: LoadStarted | None = None
        self._open_bay: OpenBay | None = None
        self._retrieving: Opened | None = None
        self._loaded: list[Loaded] = []
        self._pending: tuple[Bay, ...] = ()
        self._layout: LockerStatus | None = None
        self._results: tuple[CheckResult, ...] = ()
        self._pager.show(())

    # -- what the screen reads ---------------------------------------------------------------

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def prompt(self) -> Msg | None:
        if self._state is S.LOAD_RECIPIENT and self._case_lookup_failed:
            return CASE_LOOKUP_FAILED
        return _PROMPTS.get(self._state)

    @property
    def staff_id(self) -> str | None:
        return self._staff.staff_id if self._staff is not None else None

    @property
    def view(self) -> StaffView:
        person = self._staff or self._card
        return StaffView(
            staff_id=person.staff_id if person is not None else None,
            staff_name=person.name_masked if person is not None else None,
            entry=self.keypad.display,
            can_confirm=self._state is S.PIN and self.keypad.complete and self.busy is None,
            tries_left=self._tries_left,
            locked_until=self._locked_until,
            case_number=self._case,
            recipient_name=self._recipient.masked_name if self._recipient else None,
            size=self._size,
            open_bay=self._open_bay,
            loaded=tuple(self._loaded),
            pending_loads=self._pending,
            overdue=self._pager.page,
            page=self._pager.index,
            page_count=self._pager.count,
            results=self._results,
            can_reprint=self._printer is not None and self._printer.last is not None,
        )

    # -- login -------------------------------------------------------------------------------

    def card_read(self, identity: Identity) -> bool:
        """A staff card at login, or the applicant's card for a load. False: not taken."""
        if self.busy is not None:
            return False
        if self._state is S.LOAD_RECIPIENT:
            return self._recipient_card(identity)
        if self._state not in (S.LOGIN, S.PIN, S.PIN_LOCKED):
            return False
        if identity.source is not IdentitySource.STAFF_CARD or not identity.staff_id:
            self._notify(Notice(Msg.of("Please use a staff card."), "staff_card_required"))
            return True
        self.keypad.clear()
        self._card = identity
        if self._check_locked():
            return True
        self._go(S.PIN)
        return True

    def press(self, digit: str) -> None:
        self._idle(S.PIN)
        if self.keypad.press(digit):
            self._changed()

    def delete(self) -> None:
        self._idle(S.PIN)
        self.keypad.delete()
        self._changed()

    def confirm(self) -> None:
        """Check the PIN on the staff card in the reader."""
        self._idle(S.PIN)
        if self._check_locked():
            return
        if not self.keypad.complete:
            self._notify(Notice(_PROMPTS[S.PIN], "pin_incomplete"))
            return
        pin = self.keypad.take()
        self._job(
            Msg.of("Checking the PIN…"), lambda: self._reader.verify_staff_pin(pin), self._checked
        )

    def _checked(self, outcome: Outcome[Identity]) -> None:
        error = outcome.error
        if error is None:
            staff = outcome.get()
            card = self._card
            if card is not None and card.staff_id != staff.staff_id:
                # another card was put down between reading and the PIN
                self._card = None
                self._go(S.LOGIN, Notice(Msg.of("Please use a staff card."), "card_swapped"))
                return
            self._guard.passed()
            self._staff = staff
            self._tries_left = None
            self._go(S.MENU)
            return
        if isinstance(error, StaffPinWrong | StaffPinBlocked):
            until = self._guard.wrong()
            if until is not None:
                self._lock_login(until)
                return
            self._tries_left = self._guard.tries_left()
            if isinstance(error, StaffPinBlocked):
                self._card = None
                self._go(S.LOGIN, Notice(Bilingual.from_error(error), error.code, True))
                return
            self._notify(
                Notice(
                    Msg.of(
                        "Wrong PIN. {tries} more tries before staff login is locked.",
                        tries=self._tries_left,
                    ),
                    error.code,
                )
            )
        elif isinstance(error, StaffPinFormat):
            self._notify(Notice(Bilingual.from_error(error), error.code))
        elif isinstance(error, IdentityReaderError):
            # the card left the reader, or is no staff card: start again with the card
            self._card = None
            self._go(S.LOGIN, Notice(Bilingual.from_error(error), error.code))
        else:
            self._go(S.LOGIN, _fault(error))

    def _check_locked(self) -> bool:
        until = self._guard.locked_until()
        if until is None:
            if self._state is S.PIN_LOCKED:
                self._locked_until = None
                self._go(S.PIN if self._card is not None else S.LOGIN)
            return False
        self._lock_login(until)
        return True

    def _lock_login(self, until: datetime) -> None:
        self.keypad.clear()
        self._locked_until = until
        self._go(
            S.PIN_LOCKED,
            Notice(
                Msg.of(
                    "Too many wrong PINs. Staff login is locked until {time}.",
                    time=until.strftime("%H:%M"),
                ),
                "staff_pin_locked",
                call_staff=True,
            ),
        )

    # -- loading certificates ------------------------------------------------------------------

    def start_loading(self) -> None:
        self._idle(S.MENU)
        self._refresh_pending(S.LOAD_SCAN)

    def _refresh_pending(self, then: StaffState, notice: Notice | None = None) -> None:
        def read() -> LockerStatus:
            return self._locker.status()

        def done(outcome: Outcome[LockerStatus]) -> None:
            if outcome.ok:
                self._layout = outcome.get()
                self._pending = tuple(b for b in self._layout.bays if b.deposit_state == "loading")
                self._go(then, notice)
            else:
                self._go(S.MENU, _fault(outcome.error))

        self._job(Msg.of("Reading the locker…"), read, done)

    def code_scanned(self, text: str) -> bool:
        """The case barcode on the certificate's envelope."""
        if self.busy is not None or self._state is not S.LOAD_SCAN:
            return False
        try:
            scan = classify(text, _FORMATS)
        except ScanRejected as exc:
            self._notify(Notice(Bilingual.from_error(exc), exc.code))
            return True
        if scan.kind is not ScanKind.CASE_BARCODE:
            self._notify(
                Notice(Msg.of("This is not a case barcode. Please scan the envelope."), "not_case")
            )
            return True
        done = next((item for item in self._loaded if item.case_number == scan.value), None)
        if done is not None:
            self._notify(
                Notice(
                    Msg.of(
                        "Case {case} is already in bay {bay}.",
                        case=done.case_number,
                        bay=done.bay_id,
                    ),
                    "already_loaded",
                )
            )
            return True
        self._case = scan.value
        self._recipient = None
        self._case_lookup_failed = False
        cases = self._cases
        if cases is None:
            self._go(S.LOAD_RECIPIENT)
            return True
        case_number = scan.value
        staff_id = self._staff_id()
        self._job(
            Msg.of("Looking up the case…"),
            lambda: cases.recipient_for(case_number, staff_id=staff_id),
            self._case_found,
        )
        return True

    def _case_found(self, outcome: Outcome[Recipient | None]) -> None:
        if outcome.error is not None:
            # hall unreachable or refusing: the applicant's card, exactly as for an unknown case
            log.warning("case %s not looked up: %s", self._case, outcome.error)
            self._case_lookup_failed = True
            self._go(S.LOAD_RECIPIENT)
            return
        recipient = outcome.value
        if recipient is None:
            self._go(S.LOAD_RECIPIENT)
            return
        self._recipient = recipient
        self._to_size()

    def _recipient_card(self, identity: Identity) -> bool:
        if identity.source is IdentitySource.STAFF_CARD:
            return False
        name = identity.name_masked or ""
        if identity.id_hash is None or "*" not in name:
            self._notify(
                Notice(
                    Msg.of("This card gives no ID number and name. Please use the ID card."),
                    "card_without_number",
                )
            )
            return True
        self._recipient = Recipient(identity.id_hash, name, identity.id_masked or "")
        self._to_size()
        return True

    def _to_size(self) -> None:
        if self._size is None:
            self._go(S.LOAD_SIZE)
        else:
            self._open_for_load(self._size)

    def choose_size(self, size: Size) -> None:
        self._idle(S.LOAD_SIZE)
        if size not in SIZES:
            raise FlowStateError(f"{self.name}: no size {size!r}")
        self._size = size
        self._open_for_load(size)

    def change_size(self) -> None:
        """Ask for the size again at the next certificate."""
        self._idle(S.LOAD_SCAN, S.LOAD_SIZE)
        self._size = None
        self._changed()

    def _open_for_load(self, size: Size) -> None:
        staff_id = self._staff_id()
        case, recipient = self._case, self._recipient
        assert case is not None and recipient is not None
        request_id = uuid.uuid4().hex

        def start() -> LoadStarted:
            return self._locker.deposit_start(staff_id, case, size, recipient, request_id)

        self._job(Msg.of("Opening a bay…"), start, self._load_opened)

    def _load_opened(self, outcome: Outcome[LoadStarted]) -> None:
        error = outcome.error
        if error is None:
            self._load = outcome.get()
            self._open_bay = self._bay_view(self._load.bay_id)
            self._go(S.LOAD_OPEN)
            return
        if isinstance(error, NoFreeBay):
            self._size = None  # let the clerk pick another size
            self._go(S.LOAD_SIZE, Notice(Bilingual.from_error(error), error.code))
            return
        self._case = None
        self._recipient = None
        self._refresh_pending(S.LOAD_SCAN, _fault(error))

    def resume_load(self, deposit_id: int) -> None:
        """A bay left in "loading" (a board fault, a lost session): confirm or cancel it."""
        self._idle(S.LOAD_SCAN)
        bay = next((b for b in self._pending if b.deposit_id == deposit_id), None)
        if bay is None:
            raise FlowStateError(f"{self.name}: deposit {deposit_id} is not waiting")
        self._case = None
        self._load = LoadStarted(deposit_id, bay.bay_id, _size_of(bay.size))
        self._open_bay = self._bay_view(bay.bay_id, door=bay.door)
        self._go(S.LOAD_OPEN)

    def confirm_loaded(self) -> None:
        """The certificate is in and the door is shut: store it (the SMS goes out)."""
        self._idle(S.LOAD_OPEN)
        load = self._load
        assert load is not None
        staff_id = self._staff_id()
        self._job(
            Msg.of("Storing…"),
            lambda: self._locker.deposit_confirm(staff_id, load.deposit_id),
            self._stored,
        )

    def _stored(self, outcome: Outcome[Stored]) -> None:
        error = outcome.error
        if isinstance(error, DoorNotClosed):
            self._notify(Notice(Bilingual.from_error(error), error.code))
            return
        if error is not None:
            self._notify(_fault(error))
            return
        stored = outcome.get()
        # a resumed load's case number is not in lockerd's status: shown as unknown ("")
        self._loaded.append(Loaded(self._case or "", stored.bay_id, stored.deposit_id))
        self._pending = tuple(b for b in self._pending if b.deposit_id != stored.deposit_id)
        self._end_load()
        # straight back to the scanner: a clerk loads dozens before closing time
        self._go(
            S.LOAD_SCAN,
            Notice(
                Msg.of("Stored in bay {bay}. Scan the next certificate.", bay=stored.bay_id),
                "stored",
            ),
        )

    def cancel_load(self) -> None:
        """Give up this load (the certificate was taken back out); the bay is free again."""
        self._idle(S.LOAD_OPEN)
        load = self._load
        assert load is not None
        staff_id = self._staff_id()

        def done(outcome: Outcome[None]) -> None:
            if not outcome.ok:
                self._notify(_fault(outcome.error))
                return
            self._pending = tuple(b for b in self._pending if b.deposit_id != load.deposit_id)
            self._end_load()
            self._go(
                S.LOAD_SCAN,
                Notice(
                    Msg.of("The load was cancelled. Bay {bay} is free again.", bay=load.bay_id),
                    "load_cancelled",
                ),
            )

        self._job(
            Msg.of("Cancelling…"),
            lambda: self._locker.deposit_cancel(staff_id, load.deposit_id),
            done,
        )

    def _end_load(self) -> None:
        self._load = None
        self._case = None
        self._recipient = None
        self._open_bay = None

    # -- overdue items -------------------------------------------------------------------------

    def show_overdue(self) -> None:
        self._idle(S.MENU, S.OVERDUE_LIST)
        self._load_overdue()

    def _load_overdue(self, notice: Notice | None = None) -> None:
        def read() -> tuple[list[Deposit], LockerStatus]:
            return self._locker.overdue(), self._locker.status()

        def done(outcome: Outcome[tuple[list[Deposit], LockerStatus]]) -> None:
            if not outcome.ok:
                self._go(S.MENU, _fault(outcome.error))
                return
            deposits, layout = outcome.get()
            self._layout = layout
            self._pager.show(tuple(deposits))
            self._go(S.OVERDUE_LIST, notice)

        self._job(Msg.of("Reading the locker…"), read, done)

    def retrieve(self, deposit_id: int) -> None:
        self._idle(S.OVERDUE_LIST)
        if all(d.deposit_id != deposit_id for d in self._pager.items):
            raise FlowStateError(f"{self.name}: deposit {deposit_id} is not on the list")
        staff_id = self._staff_id()

        def done(outcome: Outcome[Opened]) -> None:
            if not outcome.ok:
                self._load_overdue(_fault(outcome.error))
                return
            self._retrieving = outcome.get()
            self._open_bay = self._bay_view(self._retrieving.bay_id)
            self._go(S.RETRIEVE_OPEN)

        self._job(
            Msg.of("Opening bay…"),
            lambda: self._locker.retrieve(staff_id, deposit_id),
            done,
        )

    def confirm_retrieved(self) -> None:
        """The item is out and the door shut (checked with a fresh lockerd reading)."""
        self._idle(S.RETRIEVE_OPEN)
        opened = self._retrieving
        assert opened is not None

        def done(outcome: Outcome[LockerStatus]) -> None:
            if not outcome.ok:
                self._notify(_fault(outcome.error))
                return
            bay = outcome.get().bay(opened.bay_id)
            if bay is None or bay.door != "closed":
                self._notify(Notice(Msg.of("Please close the door first."), "door_not_closed"))
                return
            self._retrieving = None
            self._open_bay = None
            self._load_overdue(
                Notice(Msg.of("Bay {bay} has been emptied.", bay=opened.bay_id), "retrieved")
            )

        self._job(Msg.of("Checking the door…"), self._locker.status, done)

    # -- doors (the app calls these on the UI thread) -------------------------------------------

    def door_opened(self, bay_id: str) -> None:
        self._door(bay_id, "open")

    def door_closed(self, bay_id: str) -> None:
        self._door(bay_id, "closed")

    def _door(self, bay_id: str, door: str) -> None:
        bay = self._open_bay
        if bay is not None and bay.bay_id == bay_id and door in ("open", "closed"):
            self._open_bay = replace(bay, door=door)
            self._changed()

    # -- reprint, kiosk lock, self-test, leaving ----------------------------------------------

    def reprint(self) -> None:
        """Print again the last slip this kiosk printed, marked as a reprint."""
        self._idle(S.MENU)
        printer = self._printer
        last = printer.last if printer is not None else None
        if printer is None or last is None:
            self._notify(
                Notice(Msg.of("Nothing has been printed since the kiosk started."), "no_slip")
            )
            return

        def done(outcome: Outcome[PrintReport]) -> None:
            if outcome.ok:
                self._notify(Notice(Msg.of("The last slip was printed again."), "reprinted"))
            else:
                self._notify(printer_notice(outcome.error or RuntimeError()))

        self._job(Msg.of("Printing…"), lambda: print_slip(printer, reprint_layout(last)), done)

    def lock_kiosk(self) -> None:
        """Out of service: the session shows the out-of-service screen until a staff unlock,
        across restarts (the lock is on disk before the journey hands over)."""
        self._set_kiosk_lock(
            True,
            Msg.of("Locking the kiosk…"),
            Notice(LOCK_FAILED, "kiosk_lock_failed", call_staff=True),
        )

    def unlock_kiosk(self) -> None:
        """Lift the staff lock (an ops lock stays: the session tells the clerk)."""
        self._set_kiosk_lock(
            False,
            Msg.of("Unlocking the kiosk…"),
            Notice(UNLOCK_FAILED, "kiosk_unlock_failed", call_staff=True),
        )

    def _set_kiosk_lock(self, locked: bool, busy: Msg, failed: Notice) -> None:
        """Record the clerk's lock (``kiosk_locks``, on the worker) and only then hand over: to
        the out-of-service page when locked, home when not. A failed write: ``failed``."""
        self._idle(S.MENU)
        to = JourneyKind.OUT_OF_SERVICE if locked else JourneyKind.HOME

        def hand_over() -> None:
            self.kiosk_lock = locked
            self._end(HandOver(to))

        locks = self._kiosk_locks
        if locks is None:
            hand_over()
            return
        staff_id = self._staff_id()

        def done(outcome: Outcome[object]) -> None:
            if outcome.error is not None:
                what = "lock" if locked else "unlock"
                log.error("the kiosk %s was not recorded: %s", what, outcome.error)
                self._notify(failed)
                return
            hand_over()

        write = locks.lock if locked else locks.unlock
        self._job(busy, lambda: write(staff_id), done)

    def self_test(self) -> None:
        self._idle(S.MENU, S.SELF_TEST)
        test = self._self_test
        if test is None:
            self._results = ()
            self._go(S.SELF_TEST)
            return

        def done(outcome: Outcome[tuple[CheckResult, ...]]) -> None:
            if not outcome.ok:
                self._go(S.MENU, _fault(outcome.error))
                return
            self._results = outcome.get()
            self._go(S.SELF_TEST)

        self._job(Msg.of("Testing the devices…"), test.run, done)

    def back_to_menu(self) -> None:
        self._idle(S.LOAD_SCAN, S.LOAD_RECIPIENT, S.LOAD_SIZE, S.OVERDUE_LIST, S.SELF_TEST)
        self._case = None
        self._recipient = None
        self._results = ()
        self._go(S.MENU)

    def logout(self) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: logout while busy")
        self._end(Finished("staff", evaluate=False))

    def cancel(self) -> None:
        self.logout()

    # -- helpers -------------------------------------------------------------------------------

    def _staff_id(self) -> str:
        staff_id = self.staff_id
        if staff_id is None:
            raise FlowStateError(f"{self.name}: nobody is logged in")
        return staff_id

    def _bay_view(self, bay_id: str, door: str = "unlocked") -> OpenBay:
        layout = self._layout
        bay = layout.bay(bay_id) if layout is not None else None
        grid = layout.grid(self._grid_rows) if layout is not None else None
        return OpenBay(
            bay_id=bay_id,
            size=bay.size if bay is not None else None,
            position=grid.position(bay_id) if grid is not None else None,
            grid=grid,
            door=door,
        )

    def _idle(self, *states: StaffState) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()

    def wipe(self) -> None:
        """Timeout or logout: the staff identity, the PIN digits and any applicant data go.
        A load left open stays "loading" in lockerd; the next staff session lists it."""
        self._clear()
        self._state = S.CLOSED
        super().wipe()


CASE_LOOKUP_FAILED = Msg.of(
    "The hall could not be asked about this case. Read the applicant's ID card."
)
LOCK_FAILED = Msg.of(
    "The kiosk could not record the lock, so it stays in service. Please try again or call "
    "operations."
)
UNLOCK_FAILED = Msg.of(
    "The kiosk could not record the unlock, so it stays out of service. Please try again or "
    "call operations."
)

_PROMPTS: dict[StaffState, Msg] = {
    S.LOGIN: Msg.of("Please place your staff card on the reader."),
    S.PIN: Msg.of("Please enter your staff PIN."),
    S.LOAD_SCAN: Msg.of("Scan the case barcode on the certificate envelope."),
    S.LOAD_RECIPIENT: Msg.of("This case is not known here. Read the applicant's ID card."),
    S.LOAD_SIZE: Msg.of("Choose the bay size for this certificate."),
    S.LOAD_OPEN: Msg.of("Put the certificate in, close the door, then press Confirm."),
    S.RETRIEVE_OPEN: Msg.of("Take the item out, close the door, then press Confirm."),
}


def _size_of(value: str) -> Size:
    for size in SIZES:
        if size == value:
            return size
    return "L"


def _fault(error: BaseException | None) -> Notice:
    if isinstance(error, LockerGatewayError):
        return Notice(Bilingual.from_error(error), error.code, call_staff=True)
    return Notice(
        Msg.of("Something went wrong. Please try again or contact staff."),
        "kiosk_error",
        call_staff=True,
    )


__all__ = [
    "CaseDirectory",
    "Loaded",
    "MappingCaseDirectory",
    "RememberingPrinter",
    "StaffFlow",
    "StaffPinGuard",
    "StaffState",
    "StaffView",
    "reprint_layout",
]
