"""Case status (办件查询): scan the pre-review receipt's QR, or read the ID card.

    IDENTIFY ─ code_scanned / card_read ─> [look up] ─> LIST ─ select() ─> DETAIL
                                                   ├─> NONE_FOUND        (back() ─> LIST)
                                                   └─> REFUSED
    NONE_FOUND, REFUSED, LIST ─ back() ─> IDENTIFY;  LIST, DETAIL ─ finish() ─> ended

A returned submission lists every missing or faulty item the department named, all at once
(一次性告知), in the department's own words.

Receipt payloads accepted (``parse_receipt_no``): ``hallkiosk:receipt:YS…`` or the bare
receipt number ``YSyyyymmddNNNNN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
    Worker,
)
from kiosk.flows.home import NO_ID_NUMBER, Cancelled, Finished, JourneyEnd, problem_notice
from kiosk.services.hall_gateway import (
    Catalog,
    HallRefusal,
    HallService,
    HallUnreachable,
    SubmissionStatus,
)

RECEIPT_QR_PREFIX = "HALLKIOSK:RECEIPT:"
_RECEIPT = re.compile(r"^YS[0-9]{13}$")


def parse_receipt_no(text: str) -> str | None:
    value = text.strip().upper().removeprefix(RECEIPT_QR_PREFIX)
    return value if _RECEIPT.match(value) else None


STATE_TEXT: dict[str, Msg] = {
    "pending": Msg.of("Being reviewed. The department answers within one working day."),
    "accepted": Msg.of("Passed pre-review. Please bring the original documents to the hall."),
    "returned": Msg.of("Returned. Please supply every item listed below, all at once."),
}


@dataclass(frozen=True)
class SubmissionShown:
    receipt_no: str
    matter_code: str
    matter: Bilingual | None  # from the hall catalog; None when it is not known
    state: str  # pending / accepted / returned
    state_text: Msg
    submitted_at: datetime
    decided_at: datetime | None
    return_items: tuple[str, ...]  # the department's own words, shown as they are


@dataclass(frozen=True)
class StatusView:
    submissions: tuple[SubmissionShown, ...] = ()  # LIST: this page
    page: int = 0
    page_count: int = 1
    selected: SubmissionShown | None = None  # DETAIL


class StatusState(StrEnum):
    IDENTIFY = "identify"
    LIST = "list"
    DETAIL = "detail"
    NONE_FOUND = "none_found"
    REFUSED = "refused"
    CLOSED = "closed"


S = StatusState
_PROMPTS: dict[StatusState, Msg] = {
    S.IDENTIFY: Msg.of("Please scan the QR code on your receipt, or place your ID card."),
    S.LIST: Msg.of("Here are your applications. Choose one to see the details."),
    S.NONE_FOUND: Msg.of("No application was found."),
}
_NONE = Msg.of("No application was found. Please check your receipt, or ask staff.")


class StatusFlow(PagedFlow[StatusState, SubmissionShown]):
    name = "status"

    def __init__(
        self,
        worker: Worker,
        hall: HallService,
        *,
        page_size: int = 6,
        identity: Identity | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(worker, StatusState.IDENTIFY)
        self._hall = hall
        self._pager = Pager(size=page_size)
        self._selected: SubmissionShown | None = None
        self._ended: JourneyEnd | None = None
        if identity is not None:
            self.card_read(identity)
        elif code is not None:
            self.code_scanned(code)

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def prompt(self) -> Msg | None:
        if self._state is S.DETAIL and self._selected is not None:
            return self._selected.state_text
        return _PROMPTS.get(self._state)

    @property
    def view(self) -> StatusView:
        return StatusView(
            submissions=self._pager.page,
            page=self._pager.index,
            page_count=self._pager.count,
            selected=self._selected,
        )

    # -- devices and touches -----------------------------------------------------------------

    def code_scanned(self, text: str) -> bool:
        if self.busy is not None or self._state is not S.IDENTIFY:
            return False
        receipt_no = parse_receipt_no(text)
        if receipt_no is None:
            self._notify(Notice(Msg.of("This code is not a receipt code."), "not_a_receipt"))
            return True
        self._look_up(receipt_no=receipt_no)
        return True

    def card_read(self, identity: Identity) -> bool:
        if self.busy is not None or self._state is not S.IDENTIFY:
            return False
        if identity.source is IdentitySource.STAFF_CARD:
            return False
        if identity.id_hash is None:
            self._notify(NO_ID_NUMBER)
            return True
        self._look_up(identity_hash=identity.id_hash)
        return True

    def select(self, receipt_no: str) -> None:
        self._idle(S.LIST)
        chosen = next((s for s in self._pager.items if s.receipt_no == receipt_no), None)
        if chosen is None:
            raise FlowStateError(f"{self.name}: no submission {receipt_no!r}")
        self._selected = chosen
        self._go(S.DETAIL)

    def back(self) -> None:
        self._idle(S.LIST, S.DETAIL, S.NONE_FOUND, S.REFUSED)
        if self._state is S.DETAIL:
            self._selected = None
            self._go(S.LIST)
            return
        self._pager.show(())
        self._go(S.IDENTIFY)

    def finish(self) -> None:
        self._idle(S.LIST, S.DETAIL)
        self._end(Finished("status", evaluate=False))

    def cancel(self) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: cancel while busy")
        if self._state is not S.CLOSED:
            self._end(Cancelled())

    def wipe(self) -> None:
        self._pager.show(())
        self._selected = None
        self._state = S.CLOSED
        super().wipe()

    # -- the look-up -------------------------------------------------------------------------

    def _look_up(self, *, receipt_no: str | None = None, identity_hash: str | None = None) -> None:
        def job() -> tuple[SubmissionShown, ...]:
            found = self._hall.prereview_status(receipt_no=receipt_no, identity_hash=identity_hash)
            try:
                catalog: Catalog | None = self._hall.catalog()
            except (HallRefusal, HallUnreachable):
                catalog = None  # names are a nicety: the codes are shown instead
            return tuple(_shown(s, catalog) for s in found)

        self._job(Msg.of("Looking up your applications…"), job, self._found)

    def _found(self, outcome: Outcome[tuple[SubmissionShown, ...]]) -> None:
        if not outcome.ok:
            self._go(S.REFUSED, problem_notice(outcome.error))
            return
        found = outcome.get()
        if not found:
            self._go(S.NONE_FOUND, Notice(_NONE, "submission_not_found"))
            return
        self._pager.show(found)
        if len(found) == 1:
            self._selected = found[0]
            self._go(S.DETAIL)
        else:
            self._go(S.LIST)

    def _idle(self, *states: StatusState) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()


def _shown(status: SubmissionStatus, catalog: Catalog | None) -> SubmissionShown:
    matter = (
        next((m for m in catalog.matters if m.code == status.matter_code), None)
        if catalog
        else None
    )
    return SubmissionShown(
        receipt_no=status.receipt_no,
        matter_code=status.matter_code,
        matter=Bilingual(matter.name_zh, matter.name_en) if matter else None,
        state=status.state,
        state_text=STATE_TEXT.get(status.state, Msg.of("Status: {state}", state=status.state)),
        submitted_at=status.submitted_at,
        decided_at=status.decided_at,
        return_items=status.return_items if status.state == "returned" else (),
    )
