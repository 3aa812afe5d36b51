"""Online pre-review (网上预审): pick a matter, read its 收件清单 and 办事指南, photograph each
item on the document camera, give a mobile number and the ID card, submit, take the receipt.

    [catalog] ─> CHOOSE_MATTER ─choose_matter─> GUIDE ─start_capture─> CAPTURE
    CAPTURE ─snap─> [camera] ─> PREVIEW ─accept─> CAPTURE (next item) | PHONE
            ─skip (optional items)─> next           PREVIEW ─retake─> CAPTURE
    PHONE ─confirm_phone─> IDENTIFY (no card yet) | CONFIRM;  IDENTIFY ─card_read─> CONFIRM
    CONFIRM ─submit─> [uploading] ─> [printing] ─> DONE | PRINT_FAILED ;  queued ─> QUEUED
    CONFIRM ─recapture(item)/edit_phone─> CAPTURE/PHONE ─> back to CONFIRM
    DONE, QUEUED, PRINT_FAILED ─finish─> ended Finished("prereview", receipt);  cancel, wipe

The ID card may be read at any time before the submit (the app may hand over a card read on
the home screen); it is required, so the flow asks for it after the phone number when none
came. The receipt's QR carries the receipt number (``YSyyyymmddNNNNN``) in the scanner's
receipt format; the scanner hands the bare number to the case status flow
(``kiosk.flows.status.parse_receipt_no``). A submission the hall cannot take now is kept on
the kiosk (``queued``): no receipt number exists yet, so none is printed, and the applicant
is told the number comes by SMS.

Captured pictures, the phone number and the identity are dropped by ``wipe``; after the hall
(or the kiosk's spool) took the submission the pictures are dropped at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from drivers.camera import Camera, CameraError, Photo
from drivers.identity.types import Identity, IdentitySource
from drivers.printer import PreReviewReceipt as ReceiptSlip
from drivers.printer import PrintReport, TicketPrinter, receipt_layout
from drivers.scanner.formats import make_receipt_payload
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
from kiosk.flows.keypad import Keypad
from kiosk.flows.printing import print_slip, printer_notice
from kiosk.services.hall_gateway import (
    Catalog,
    ChecklistItem,
    HallRefusal,
    HallService,
    MaterialFile,
    Matter,
    PreReviewReceipt,
    PreReviewSubmission,
)

PHONE_DIGITS = 11
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")  # mainland mobile numbers


class PreReviewState(StrEnum):
    LOADING = "loading"
    UNAVAILABLE = "unavailable"
    CHOOSE_MATTER = "choose_matter"
    GUIDE = "guide"
    CAPTURE = "capture"
    PREVIEW = "preview"
    PHONE = "phone"
    IDENTIFY = "identify"
    CONFIRM = "confirm"
    DONE = "done"
    PRINT_FAILED = "print_failed"
    QUEUED = "queued"
    CLOSED = "closed"


S = PreReviewState


@dataclass(frozen=True)
class ItemShown:
    item: ChecklistItem
    captured: bool
    skipped: bool


@dataclass(frozen=True)
class UploadShown:
    file_index: int  # 0-based
    files_total: int


@dataclass(frozen=True)
class PreReviewView:
    matters: tuple[Matter, ...] = ()  # CHOOSE_MATTER: this page
    page: int = 0
    page_count: int = 1
    matter: Matter | None = None  # GUIDE on: its guide and checklist
    items: tuple[ItemShown, ...] = ()  # the checklist with what is done
    current: ChecklistItem | None = None  # CAPTURE, PREVIEW
    can_skip: bool = False
    preview: Photo | None = None  # PREVIEW: the picture just taken (JPEG bytes for the screen)
    phone_entry: str = ""
    phone_masked: str | None = None  # 138****8000 once confirmed
    name_masked: str | None = None
    has_identity: bool = False
    upload: UploadShown | None = None  # while uploading
    receipt: PreReviewReceipt | None = None  # DONE, PRINT_FAILED, QUEUED


@dataclass
class _Data:
    catalog: Catalog | None = None
    matter: Matter | None = None
    index: int = 0  # the checklist item being captured
    photos: dict[str, Photo] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    preview: Photo | None = None
    returning: bool = False  # capture/phone changes from CONFIRM go back there
    phone: str | None = None
    identity: Identity | None = None
    key: str | None = None  # kept while a submit's fate is unknown: a retry is the same one
    upload: UploadShown | None = None
    receipt: PreReviewReceipt | None = None


_PROMPTS: dict[PreReviewState, Msg] = {
    S.CHOOSE_MATTER: Msg.of("Please choose the matter you want to apply for."),
    S.GUIDE: Msg.of("Here is what you need. Have the documents ready, then start."),
    S.CAPTURE: Msg.of("Put the document on the camera plate, then press Take picture."),
    S.PREVIEW: Msg.of("Is the picture clear? Use it, or take it again."),
    S.PHONE: Msg.of("Please enter your mobile phone number."),
    S.IDENTIFY: Msg.of("Please place your ID card on the reader."),
    S.CONFIRM: Msg.of("Please check and submit."),
    S.DONE: Msg.of("Submitted. Please take your receipt."),
}


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == PHONE_DIGITS else "*" * len(phone)


def receipt_qr_payload(receipt_no: str) -> str:
    """What the receipt's QR holds: the scanner's receipt format around the receipt number
    (``HK1:R:YS…:cc``, drivers/scanner/formats.py); the scanner hands the status flow the bare
    number."""
    return make_receipt_payload(receipt_no)


class PreReviewFlow(PagedFlow[PreReviewState, Matter]):
    name = "prereview"

    def __init__(
        self,
        worker: Worker,
        hall: HallService,
        camera: Camera,
        printer: TicketPrinter,
        *,
        page_size: int = 6,
        identity: Identity | None = None,
        hall_name: str = "",
    ) -> None:
        super().__init__(worker, S.LOADING)
        self._hall = hall
        self._camera = camera
        self._printer = printer
        self._hall_name = hall_name
        self._pager = Pager(size=page_size)
        self.keypad = Keypad(PHONE_DIGITS, secret=False)
        self._d = _Data()
        self._ended: JourneyEnd | None = None
        if identity is not None:
            self._take_identity(identity)
        self._job(Msg.of("Loading the matters…"), hall.catalog, self._catalog_loaded)

    # -- what the screen reads ---------------------------------------------------------------

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def prompt(self) -> Msg | None:
        return _PROMPTS.get(self._state)

    @property
    def view(self) -> PreReviewView:
        d = self._d
        current = self._current_item()
        return PreReviewView(
            matters=self._pager.page,
            page=self._pager.index,
            page_count=self._pager.count,
            matter=d.matter,
            items=tuple(
                ItemShown(i, i.id in d.photos, i.id in d.skipped)
                for i in (d.matter.items if d.matter else ())
            ),
            current=current if self._state in (S.CAPTURE, S.PREVIEW) else None,
            can_skip=self._state is S.CAPTURE and current is not None and not current.required,
            preview=d.preview,
            phone_entry=self.keypad.display,
            phone_masked=mask_phone(d.phone) if d.phone else None,
            name_masked=d.identity.name_masked if d.identity else None,
            has_identity=d.identity is not None,
            upload=d.upload,
            receipt=d.receipt,
        )

    def _current_item(self) -> ChecklistItem | None:
        matter = self._d.matter
        if matter is None or not 0 <= self._d.index < len(matter.items):
            return None
        return matter.items[self._d.index]

    # -- the matter --------------------------------------------------------------------------

    def _catalog_loaded(self, outcome: Outcome[Catalog]) -> None:
        if not outcome.ok:
            self._go(S.UNAVAILABLE, problem_notice(outcome.error))
            return
        catalog = outcome.get()
        self._d.catalog = catalog
        matters = tuple(m for m in catalog.matters if m.items)
        if not matters:
            notice = Notice(Msg.of("No matter can be pre-reviewed here yet."), "no_matters")
            self._go(S.UNAVAILABLE, notice)
            return
        self._pager.show(matters)
        self._go(S.CHOOSE_MATTER)

    def choose_matter(self, code: str) -> None:
        self._idle(S.CHOOSE_MATTER)
        matter = next((m for m in self._pager.items if m.code == code), None)
        if matter is None:
            raise FlowStateError(f"{self.name}: no matter {code!r}")
        self._d.matter = matter
        self._d.photos.clear()
        self._d.skipped.clear()
        self._d.index = 0
        self._go(S.GUIDE)

    def back(self) -> None:
        """One step back: guide -> matters, first capture -> guide; a picture being taken
        again from the summary -> the summary, that item's picture unchanged."""
        self._idle(S.GUIDE, S.CAPTURE)
        if self._state is S.GUIDE:
            self._d.matter = None
            self._go(S.CHOOSE_MATTER)
        elif self._d.returning:
            self._d.returning = False
            self._go(S.CONFIRM)
        elif self._d.index > 0:
            self._d.index -= 1
            self._changed()
        else:
            self._go(S.GUIDE)

    # -- capturing ---------------------------------------------------------------------------

    def start_capture(self) -> None:
        self._idle(S.GUIDE)
        self._d.index = 0
        self._go(S.CAPTURE)

    def snap(self) -> None:
        self._idle(S.CAPTURE)
        self._job(Msg.of("Taking the picture…"), self._camera.snap, self._snapped)

    def _snapped(self, outcome: Outcome[Photo]) -> None:
        error = outcome.error
        if error is None:
            self._d.preview = outcome.get()
            self._go(S.PREVIEW)
        elif isinstance(error, CameraError):
            self._notify(Notice(Bilingual.from_error(error), error.code, call_staff=True))
        else:
            self._notify(problem_notice(error))

    def retake(self) -> None:
        self._idle(S.PREVIEW)
        self._d.preview = None
        self._go(S.CAPTURE)

    def accept(self) -> None:
        self._idle(S.PREVIEW)
        item = self._current_item()
        assert item is not None and self._d.preview is not None
        self._d.photos[item.id] = self._d.preview
        self._d.skipped.discard(item.id)
        self._d.preview = None
        self._next_item()

    def skip(self) -> None:
        """Leave out an optional item (a required one cannot be skipped)."""
        self._idle(S.CAPTURE)
        item = self._current_item()
        if item is None or item.required:
            raise FlowStateError(f"{self.name}: a required item cannot be skipped")
        self._d.photos.pop(item.id, None)
        self._d.skipped.add(item.id)
        self._next_item()

    def _next_item(self) -> None:
        matter = self._d.matter
        assert matter is not None
        if self._d.returning:
            self._d.returning = False
            self._go(S.CONFIRM)
            return
        self._d.index += 1
        if self._d.index < len(matter.items):
            self._go(S.CAPTURE)
        else:
            self._go(S.PHONE)

    def recapture(self, item_id: str) -> None:
        """From the summary: take one item's picture again (or add a skipped one)."""
        self._idle(S.CONFIRM)
        matter = self._d.matter
        assert matter is not None
        index = next((n for n, i in enumerate(matter.items) if i.id == item_id), None)
        if index is None:
            raise FlowStateError(f"{self.name}: no item {item_id!r}")
        self._d.index = index
        self._d.returning = True
        self._go(S.CAPTURE)

    # -- phone and card ----------------------------------------------------------------------

    def press(self, digit: str) -> None:
        self._idle(S.PHONE)
        if self.keypad.press(digit):
            self._changed()

    def delete(self) -> None:
        self._idle(S.PHONE)
        self.keypad.delete()
        self._changed()

    def confirm_phone(self) -> None:
        self._idle(S.PHONE)
        phone = self.keypad.peek()
        if not _MOBILE.match(phone):
            self._notify(
                Notice(
                    Msg.of("Please enter an 11-digit mobile number starting with 1."),
                    "phone_invalid",
                )
            )
            return
        self._d.phone = phone
        self.keypad.clear()
        self._go(S.CONFIRM if self._d.identity is not None else S.IDENTIFY)

    def edit_phone(self) -> None:
        self._idle(S.CONFIRM)
        self.keypad.clear()
        self._go(S.PHONE)

    def card_read(self, identity: Identity) -> bool:
        """The applicant's card: kept for the submission (any time before it)."""
        if self.busy is not None or identity.source is IdentitySource.STAFF_CARD:
            return False
        if self._state in (S.CLOSED, S.UNAVAILABLE, S.DONE, S.QUEUED, S.PRINT_FAILED):
            return False
        if identity.id_hash is None:
            self._notify(NO_ID_NUMBER)
            return True
        self._take_identity(identity)
        if self._state is S.IDENTIFY:
            self._go(S.CONFIRM)
        else:
            self._changed()
        return True

    def _take_identity(self, identity: Identity) -> None:
        if identity.id_hash is not None:
            self._d.identity = identity

    # -- submit and receipt ------------------------------------------------------------------

    def submit(self) -> None:
        self._idle(S.CONFIRM)
        d = self._d
        matter, phone, identity = d.matter, d.phone, d.identity
        assert matter is not None and phone is not None
        if identity is None:
            self._go(S.IDENTIFY)
            return
        missing = [i for i in matter.items if i.required and i.id not in d.photos]
        if missing:
            raise FlowStateError(f"{self.name}: required items missing")
        if d.key is None:
            d.key = secrets.token_hex(16)
        submission = PreReviewSubmission(
            submission_key=d.key,
            matter_code=matter.code,
            phone=phone,
            identity_hash=identity.id_hash,
            id_masked=identity.id_masked,
            name_masked=identity.name_masked,
            files=tuple(
                MaterialFile(item.id, f"{item.id}.jpg", d.photos[item.id].jpeg)
                for item in matter.items
                if item.id in d.photos
            ),
        )
        d.upload = UploadShown(0, len(submission.files))
        self._job(
            Msg.of("Uploading your materials…"),
            lambda: self._hall.submit_prereview(submission),
            self._submitted,
        )

    def upload_progressed(self, file_index: int, files_total: int) -> None:
        """A chunk was acknowledged (the app forwards the gateway's progress on the UI
        thread)."""
        if self._d.upload is not None and self.busy is not None:
            self._d.upload = UploadShown(file_index, files_total)
            self._changed()

    def _submitted(self, outcome: Outcome[PreReviewReceipt]) -> None:
        d = self._d
        d.upload = None
        error = outcome.error
        if error is not None:
            if isinstance(error, HallRefusal):
                d.key = None  # the hall decided: changed materials make a new submission
            self._notify(problem_notice(error))
            return
        receipt = outcome.get()
        d.receipt = receipt
        d.photos.clear()  # the hall (or the kiosk's spool) has them now
        d.phone = None
        if receipt.queued or receipt.receipt_no is None:
            self._go(
                S.QUEUED,
                Notice(
                    Msg.of(
                        "Your materials are saved on this kiosk and will be sent to the hall "
                        "as soon as it can be reached. The receipt number will come to you "
                        "by SMS."
                    ),
                    "prereview_queued",
                ),
            )
            return
        self._print_receipt()

    def _print_receipt(self) -> None:
        d = self._d
        receipt, matter, identity = d.receipt, d.matter, d.identity
        assert receipt is not None and receipt.receipt_no is not None and matter is not None
        hall_name = self._hall_name or (d.catalog.hall_name_zh if d.catalog else "")
        slip = ReceiptSlip(
            hall_name=hall_name,
            matter=matter.name_zh,
            receipt_number=receipt.receipt_no,
            applicant_masked_name=(identity.name_masked if identity else None) or "*",
            material_count=len([i for i in matter.items if i.id not in d.skipped]),
            submitted_at=receipt.submitted_at,
            lookup_payload=receipt_qr_payload(receipt.receipt_no),
        )
        self._job(
            Msg.of("Printing your receipt…"),
            lambda: print_slip(self._printer, receipt_layout(slip)),
            self._printed,
        )

    def _printed(self, outcome: Outcome[PrintReport]) -> None:
        if outcome.ok:
            self._go(S.DONE)
            return
        self._go(S.PRINT_FAILED, printer_notice(outcome.error or RuntimeError()))

    def print_again(self) -> None:
        self._idle(S.PRINT_FAILED)
        self._print_receipt()

    def finish(self) -> None:
        self._idle(S.DONE, S.PRINT_FAILED, S.QUEUED, S.UNAVAILABLE)
        receipt = self._d.receipt
        reference = ""
        if receipt is not None:
            reference = receipt.receipt_no or receipt.submission_key
        self._end(Finished("prereview", reference, evaluate=receipt is not None))

    def cancel(self) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: cancel while busy")
        if self._state is not S.CLOSED:
            self._end(Cancelled())

    # -- helpers -----------------------------------------------------------------------------

    def _idle(self, *states: PreReviewState) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()

    def wipe(self) -> None:
        """Timeout or the end: pictures, phone number and identity go."""
        self._d = _Data()
        self.keypad.clear()
        self._pager.show(())
        self._state = S.CLOSED
        super().wipe()


__all__ = [
    "ItemShown",
    "PreReviewFlow",
    "PreReviewState",
    "PreReviewView",
    "UploadShown",
    "mask_phone",
    "receipt_qr_payload",
]
