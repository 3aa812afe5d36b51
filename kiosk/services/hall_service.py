"""``HallGateway``: the ``HallService`` the flows use, over a ``HallTransport``.

Online it asks the hall. When the transport raises ``HallUnreachable`` each kind falls back as
docs/kiosk.md ("Offline") describes, using the ``OfflineDesk`` (kiosk/services/offline.py) and
the pre-review spool (kiosk/services/uploads.py) the runtime hands in. Built bare,
``HallGateway(EmbeddedTransport(hall, device_id))``, it has no local state: every kind asks the
hall, pre-review files go straight from memory, and evaluations go straight to the embedded
hall; ``HallUnreachable`` reaches the flow.

Threads: every method may block (a request waits up to its timeout), so flows call them
through their worker, never on the UI thread, and never on the MQTT network thread.
``drain()`` (the runtime's retry thread calls it every ``retry_interval_s``) sends queued
pre-reviews and fetches a missing catalog or appointment list while the hall is reachable.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

from hall.evaluations import EvaluationInvalid, check
from hallkiosk.clock import Clock, SystemClock
from kiosk.flows.base import KioskError
from kiosk.services.hall_gateway import (
    Booking,
    CaseRecipient,
    Catalog,
    CheckedIn,
    EmbeddedTransport,
    Evaluation,
    EventSink,
    HallRefusal,
    HallService,
    HallTransport,
    HallUnreachable,
    PreReviewReceipt,
    PreReviewSubmission,
    SubmissionStatus,
    Ticket,
    parse_booking,
    parse_case_lookup,
    parse_catalog,
    parse_ticket,
)
from kiosk.services.locker_gateway import Recipient
from kiosk.services.offline import TICKET_VOIDED_EVENT, OfflineDesk
from kiosk.services.uploads import (
    PreReviewSpool,
    UploadProgress,
    UploadStats,
    check_submission,
    in_memory,
    submit_args,
    upload_file,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_CHUNK_BYTES = 64 * 1024
TICKET_NOT_FOUND = "ticket_not_found"


def new_submission_key() -> str:
    return secrets.token_hex(16)


class EvaluationRejected(KioskError, ValueError):
    """A rating the hall would refuse (a screen bug): not recorded."""

    code = "evaluation_invalid"


class NoEventSink(KioskError, RuntimeError):
    code = "kiosk_no_outbox"


class PreReviewRefused(HallRefusal):
    """A submission the hall refused before (same key again)."""

    def __init__(self, code: str) -> None:
        super().__init__(
            code,
            "材料未被大厅系统受理，请联系工作人员。",
            "The hall system did not accept these materials. Please contact staff.",
        )


class HallGateway:
    def __init__(
        self,
        transport: HallTransport,
        *,
        clock: Clock | None = None,
        offline: OfflineDesk | None = None,
        spool: PreReviewSpool | None = None,
        events: EventSink | None = None,
        presence: Callable[[], bool] | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        self._transport = transport
        if clock is None:
            clock = transport.clock if isinstance(transport, EmbeddedTransport) else SystemClock()
        self._clock = clock
        self._offline = offline
        self._spool = spool
        if events is None and isinstance(transport, EventSink):
            events = transport
        self._events = events
        self._presence = presence
        self._chunk_bytes = spool.chunk_bytes if spool is not None else chunk_bytes
        self.upload_stats = UploadStats()
        self._done_listeners: list[Callable[[PreReviewReceipt], None]] = []
        self._progress_listeners: list[Callable[[UploadProgress], None]] = []
        self._listeners_lock = threading.Lock()

    @property
    def online(self) -> bool:
        """The hall answers now (embedded: always; MQTT: connected and the hall's presence is
        online). A request may still time out: the fallbacks do not rely on this."""
        return True if self._presence is None else self._presence()

    @property
    def offline_desk(self) -> OfflineDesk | None:
        return self._offline

    def _call(self, kind: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._transport.call(kind, args)

    # -- catalog -----------------------------------------------------------------------------

    def catalog(self) -> Catalog:
        try:
            result = self._call("catalog", {})
        except HallUnreachable:
            cached = self._offline.cached_catalog() if self._offline is not None else None
            if cached is None:
                raise
            return cached
        if self._offline is not None:
            self._offline.store_catalog(result)
        return parse_catalog(result)

    # -- tickets -----------------------------------------------------------------------------

    def issue_ticket(
        self, category_id: str, *, identity_hash: str | None, priority: Literal["normal", "green"]
    ) -> Ticket:
        args: dict[str, Any] = {"category": category_id, "priority": priority}
        if identity_hash is not None:
            args["identity_hash"] = identity_hash
        try:
            result = self._call("ticket.issue", args)
        except HallUnreachable as exc:
            if self._offline is None:
                raise
            log.info("hall unreachable (%s): offline ticket for %s", exc.reason, category_id)
            return self._offline.issue(
                self._offline.category(category_id),
                priority=priority,
                identity_hash=identity_hash,
            )
        self._remember(result)
        return parse_ticket(result)

    def ticket_status(self, ticket_id: str) -> Ticket:
        try:
            result = self._call("ticket.status", {"ticket_id": ticket_id})
        except HallUnreachable:
            known = self._offline.last_known(ticket_id) if self._offline is not None else None
            if known is None:
                raise
            return known
        except HallRefusal as exc:
            # an offline ticket whose event has not reached the hall yet
            own = (
                self._offline.offline_ticket(ticket_id)
                if self._offline is not None and exc.code == TICKET_NOT_FOUND
                else None
            )
            if own is None:
                raise
            return own
        self._remember(result)
        return parse_ticket(result)

    def _remember(self, result: Mapping[str, Any]) -> None:
        if self._offline is not None:
            try:
                self._offline.remember_ticket(result)
            except Exception:  # a cache; the applicant has the ticket either way
                log.exception("ticket answer not cached")

    # -- appointments ------------------------------------------------------------------------

    def find_bookings(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> list[Booking]:
        try:
            result = self._call("appointment.lookup", _who(identity_hash, booking_code))
        except HallUnreachable:
            if self._offline is None:
                raise
            return self._offline.find_bookings(
                identity_hash=identity_hash, booking_code=booking_code
            )
        return [parse_booking(a) for a in result.get("appointments", [])]

    def check_in(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> CheckedIn:
        try:
            result = self._call("appointment.checkin", _who(identity_hash, booking_code))
        except HallUnreachable as exc:
            if self._offline is None:
                raise
            log.info("hall unreachable (%s): offline check-in", exc.reason)
            return self._offline.check_in(identity_hash=identity_hash, booking_code=booking_code)
        self._remember(result)
        return CheckedIn(booking=parse_booking(result["appointment"]), ticket=parse_ticket(result))

    def sync_appointments(self) -> bool:
        """Ask the hall for today's list and keep it (the retained push normally brings it).
        True if the list was kept; raises HallUnreachable."""
        if self._offline is None:
            return False
        result = self._call("appointment.sync", {})
        return self._offline.appointments.store_sync_result(result)

    # -- pre-review --------------------------------------------------------------------------

    def on_prereview_done(self, callback: Callable[[PreReviewReceipt], None]) -> Callable[[], None]:
        """Call ``callback`` (on the sending thread) with the receipt, receipt number set, each
        time a submission is accepted by the hall; returns the unsubscribe function."""
        return self._listen(self._done_listeners, callback)

    def on_upload_progress(self, callback: Callable[[UploadProgress], None]) -> Callable[[], None]:
        """Call ``callback`` (on the sending thread) after every chunk the hall acknowledged."""
        return self._listen(self._progress_listeners, callback)

    def _listen(
        self, listeners: list[Callable[[T], None]], callback: Callable[[T], None]
    ) -> Callable[[], None]:
        with self._listeners_lock:
            listeners.append(callback)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if callback in listeners:
                    listeners.remove(callback)

        return unsubscribe

    def _emit(self, listeners: list[Callable[[T], None]], value: T) -> None:
        with self._listeners_lock:
            targets = list(listeners)
        for listener in targets:
            try:
                listener(value)
            except Exception:
                log.exception("pre-review listener %r failed", listener)

    def submit_prereview(self, submission: PreReviewSubmission) -> PreReviewReceipt:
        """Upload every file in resumable chunks, then submit. With a spool the submission is
        stored on the kiosk first, and when the hall cannot be reached the receipt comes back
        ``queued`` (no receipt number yet); ``drain()`` finishes it later."""
        check_submission(submission)
        if self._spool is None:
            return self._submit_from_memory(submission)
        key = submission.submission_key
        saved = self._spool.save(submission)
        if saved.state == "refused":
            raise PreReviewRefused(saved.error_code or "prereview_refused")
        if saved.state == "submitted":
            return saved.receipt()
        try:
            with self._spool.sending(key):
                return self._send(key)
        except HallUnreachable as exc:
            log.info("pre-review %s queued on the kiosk: %s", key, exc.reason)
            queued = self._spool.get(key)
            assert queued is not None
            return queued.receipt()

    def pending_prereviews(self) -> list[PreReviewReceipt]:
        """Submissions stored on the kiosk that the hall has not accepted yet."""
        return [] if self._spool is None else [s.receipt() for s in self._spool.pending()]

    def prereview_receipt(self, submission_key: str) -> PreReviewReceipt | None:
        found = None if self._spool is None else self._spool.get(submission_key)
        return None if found is None else found.receipt()

    def _send(self, key: str) -> PreReviewReceipt:
        """Send one spooled submission; the caller holds its send lock."""
        assert self._spool is not None
        spooled = self._spool.get(key)
        if spooled is None:
            raise KeyError(key)
        if spooled.state == "submitted":
            return spooled.receipt()
        if spooled.state == "refused":
            raise PreReviewRefused(spooled.error_code or "prereview_refused")
        self._spool.attempted(key)
        total = len(spooled.files)
        try:
            for f in spooled.files:
                if f.complete:
                    continue
                upload_file(
                    self._call,
                    f.upload,
                    self.upload_stats,
                    self._progress(key, f.position, total, f.upload.chunks_total),
                )
                self._spool.file_complete(key, f.position)
            if spooled.phone is None:
                raise PreReviewRefused("prereview_phone_missing")
            self.upload_stats.submits += 1
            result = self._call(
                "prereview.submit",
                submit_args(
                    key,
                    matter_code=spooled.matter_code,
                    phone=spooled.phone,
                    identity_hash=spooled.identity_hash,
                    id_masked=spooled.id_masked,
                    name_masked=spooled.name_masked,
                    files=[(f.item_id, f.upload.upload_id) for f in spooled.files],
                ),
            )
        except HallRefusal as exc:
            self._spool.refused(key, exc.code)
            log.warning("pre-review %s refused by the hall: %s", key, exc.code)
            raise
        done = self._spool.submitted(
            key, str(result["receipt_no"]), self._submitted_at(result.get("submitted_at"))
        )
        receipt = done.receipt()
        log.info("pre-review %s accepted: %s", key, receipt.receipt_no)
        self._emit(self._done_listeners, receipt)
        return receipt

    def _progress(
        self, key: str, position: int, files_total: int, chunks_total: int
    ) -> Callable[[int, bool], None]:
        def report(index: int, complete: bool) -> None:
            self._emit(
                self._progress_listeners,
                UploadProgress(key, position, files_total, index, chunks_total, complete),
            )

        return report

    def _submitted_at(self, value: object) -> datetime:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment.astimezone(self._clock.tz)
        return self._clock.now()

    def _submit_from_memory(self, submission: PreReviewSubmission) -> PreReviewReceipt:
        key = submission.submission_key
        files = in_memory(submission.files, self._chunk_bytes)
        for position, (_item, upload) in enumerate(files):
            upload_file(
                self._call,
                upload,
                self.upload_stats,
                self._progress(key, position, len(files), upload.chunks_total),
            )
        self.upload_stats.submits += 1
        result = self._call(
            "prereview.submit",
            submit_args(
                key,
                matter_code=submission.matter_code,
                phone=submission.phone,
                identity_hash=submission.identity_hash,
                id_masked=submission.id_masked,
                name_masked=submission.name_masked,
                files=[(item, upload.upload_id) for item, upload in files],
            ),
        )
        receipt = PreReviewReceipt(
            submission_key=key,
            receipt_no=str(result["receipt_no"]),
            queued=False,
            submitted_at=self._submitted_at(result.get("submitted_at")),
        )
        self._emit(self._done_listeners, receipt)
        return receipt

    def prereview_status(
        self, *, receipt_no: str | None = None, identity_hash: str | None = None
    ) -> list[SubmissionStatus]:
        args: dict[str, Any] = {}
        if receipt_no is not None:
            args["receipt_no"] = receipt_no
        if identity_hash is not None:
            args["identity_hash"] = identity_hash
        result = self._call("prereview.status", args)
        return [
            SubmissionStatus(
                receipt_no=str(s["receipt_no"]),
                matter_code=str(s["matter_code"]),
                state=str(s["state"]),
                submitted_at=datetime.fromisoformat(str(s["submitted_at"])),
                decided_at=datetime.fromisoformat(str(s["decided_at"]))
                if s.get("decided_at")
                else None,
                return_items=tuple(str(i) for i in s.get("return_items") or ()),
            )
            for s in result.get("submissions", [])
        ]

    # -- cases (staff loading certificates) -------------------------------------------------

    def lookup_case(self, case_number: str, *, staff_id: str) -> CaseRecipient | None:
        """``case.lookup``: the recipient of this case from the hall's case table (keyed hash
        and masked name), None when the hall has none. No offline fallback here: the staff
        flow reads the applicant's card instead, so ``HallUnreachable`` reaches it."""
        result = self._call("case.lookup", {"case_number": case_number, "staff_id": staff_id})
        return parse_case_lookup(case_number, result)

    # -- evaluations -------------------------------------------------------------------------

    def record_evaluation(self, evaluation: Evaluation) -> None:
        """One ``evaluation`` event (service, reference, level, reasons, ts) into the outbox:
        recorded on the kiosk at once, whatever the network does."""
        data: dict[str, Any] = {
            "service": evaluation.service,
            "reference": evaluation.reference,
            "level": evaluation.level,
            "reasons": list(evaluation.reasons),
            "ts": self._clock.now().isoformat(),
        }
        try:
            check(data)
        except EvaluationInvalid as exc:
            raise EvaluationRejected(str(exc)) from None
        if self._events is None:
            raise NoEventSink("this gateway has no outbox for evaluations")
        self._events.record_event("evaluation", data)

    # -- background --------------------------------------------------------------------------

    def drain(self) -> int:
        """While the hall is reachable: fetch a missing catalog or today's appointment list,
        then send the queued pre-reviews, oldest first (only the chunks the hall lacks). Returns
        how many submissions the hall accepted. Never on the MQTT network thread."""
        if not self.online:
            return 0
        self._refresh()
        if self._spool is None:
            return 0
        accepted = 0
        for spooled in self._spool.pending():
            key = spooled.submission_key
            with self._spool.sending(key, wait=False) as got:
                if not got:
                    continue  # a flow is sending it right now
                try:
                    self._send(key)
                except HallUnreachable as exc:
                    log.info("queued pre-reviews wait: %s", exc.reason)
                    break
                except HallRefusal as exc:
                    # the applicant has left with a queued receipt: staff must follow up
                    self._alarm("prereview_refused", key, {"code": exc.code})
                    continue
                accepted += 1
        return accepted

    def _refresh(self) -> None:
        if self._offline is None:
            return
        try:
            if self._offline.cached_catalog() is None:
                self.catalog()
            if self._offline.appointments.today() is None:
                self.sync_appointments()
        except (HallUnreachable, HallRefusal) as exc:
            log.info("refresh postponed: %s", exc)

    def record_alarm(self, code: str, subject: str, details: Mapping[str, Any]) -> None:
        """An alarm for ops through the outbox (e.g. a ticket the printer did not hand out);
        never raises: it is reported from places where nothing else can be done."""
        self._alarm(code, subject, details)

    def record_ticket_voided(
        self,
        *,
        ticket_id: str,
        label: str,
        category: str,
        partly_printed: bool,
        error: str,
        reason: str = "print_failed",
    ) -> bool:
        """A new ticket nobody holds (its print failed): one ``ticket_voided`` event through the
        outbox (after the ticket's own ``ticket_issued_offline``, if it was an offline one), so
        the hall takes it out of the queue; the kiosk forgets it too. Never raises: False when
        it could not be recorded (then staff must skip the number)."""
        data: dict[str, Any] = {
            "ticket_id": ticket_id,
            "label": label,
            "category": category,
            "reason": reason,
            "partly_printed": partly_printed,
            "error": error,
        }
        try:
            if self._offline is not None:
                self._offline.void_ticket(data)  # forgets it in the same transaction
            elif self._events is not None:
                self._events.record_event(TICKET_VOIDED_EVENT, data)
            else:
                log.error("ticket %s not voided: no outbox", label)
                return False
        except Exception:
            log.exception("ticket %s: the void could not be recorded", label)
            return False
        return True

    def _alarm(self, code: str, subject: str, details: Mapping[str, Any]) -> None:
        if self._events is None:
            log.error("alarm %s on %s not reported: no outbox", code, subject)
            return
        try:
            self._events.record_event(
                "alarm", {"alarm": code, "subject": subject, "active": True, **details}
            )
        except Exception:
            log.exception("alarm %s on %s could not be recorded", code, subject)


def _who(identity_hash: str | None, booking_code: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if identity_hash is not None:
        args["identity_hash"] = identity_hash
    if booking_code is not None:
        args["booking_code"] = booking_code
    return args


class HallCaseDirectory:
    """The staff flow's ``CaseDirectory`` (kiosk/flows/staff.py) over the hall's
    ``case.lookup``: None for a case the hall knows no recipient for; ``HallUnreachable`` or
    ``HallRefusal`` when it could not be asked. Blocks up to ``[kiosk.timeouts]
    case_lookup_s``, so the flow calls it through its worker."""

    def __init__(self, hall: HallService) -> None:
        self._hall = hall

    def recipient_for(self, case_number: str, *, staff_id: str) -> Recipient | None:
        found = self._hall.lookup_case(case_number, staff_id=staff_id)
        if found is None:
            return None
        return Recipient(found.identity_hash, found.masked_name)
