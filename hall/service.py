"""``Hall``: the hall service as a library. ``hall serve`` wraps it in an MQTT server; the
embedded default runs it in process, so a kiosk works with no broker at all.

Requests (docs/hall.md "Requests") are answered by ``handle_request(device, kind, args)``, which
returns the result object or raises a ``HallError`` whose code and two messages become the
response's error. Device messages (presence, events, telemetry, acks) go to the registry.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from hall import evaluations
from hall.appointments.book import AppointmentBook
from hall.cases import CaseBook, CaseImport, parse_cases_csv
from hall.errors import HallError, RequestInvalid
from hall.notify import make_sender
from hall.notify.dispatcher import NotificationDispatcher
from hall.notify.errors import NotifyError
from hall.notify.queue import enqueue as _enqueue
from hall.notify.senders import NotificationSender
from hall.prereview.intake import UploadIntake
from hall.prereview.review import PreReviewDesk
from hall.queue import Issued, QueueAuthority, Voided
from hall.registry import DeviceRegistry
from hall.settings import HallSettings
from hall.store import HallStore, from_iso
from hallkiosk.clock import Clock, utc_iso
from hallkiosk.privacy import IdentityHasher, ensure_key_file
from uplink.messages import Event
from uplink.sealing import SealError, ensure_seal_key, unseal

log = logging.getLogger(__name__)

Handler = Callable[[str, Mapping[str, Any]], dict[str, Any]]
_HASH = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
SWEEP_INTERVAL_S = 30.0


def _issued(issued: Issued) -> dict[str, Any]:
    return {
        **issued.ticket.public(),
        "people_ahead": issued.people_ahead,
        "wait_estimate_s": issued.wait_estimate_s,
        "reprint": issued.reprint,
    }


def _identity(args: Mapping[str, Any]) -> str | None:
    value = args.get("identity_hash")
    if value is None:
        return None
    if not isinstance(value, str) or not _HASH.match(value):
        raise RequestInvalid("identity_hash: 64 lower-case hex characters")
    return value


class Hall:
    def __init__(
        self,
        settings: HallSettings,
        clock: Clock,
        *,
        sender: NotificationSender | None = None,
        on_appointments_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        cfg = settings.hall
        self.store = HallStore.open(settings.db_path)
        ensure_key_file(settings.identity_key_path)
        self.hasher = IdentityHasher.from_file(settings.identity_key_path)
        self.seal_key = ensure_seal_key(settings.seal_key_path)
        self.queue = QueueAuthority(self.store, cfg.queue, clock)
        self._appointment_listeners: list[Callable[[str], None]] = []
        if on_appointments_changed is not None:
            self._appointment_listeners.append(on_appointments_changed)
        self.appointments = AppointmentBook(
            self.store,
            cfg.appointments,
            cfg.queue,
            self.queue,
            clock,
            on_change=self._appointments_changed,
        )
        self.intake = UploadIntake(self.store, cfg.prereview, settings.prereview_dir, clock)
        self.prereview = PreReviewDesk(self.store, cfg.prereview, self.intake, clock)
        self.registry = DeviceRegistry(self.store, cfg.registry, clock)
        self.cases = CaseBook(self.store, clock)
        self.registry.on_event("alarm", self._on_alarm_event)
        self.registry.on_event("deposit_stored", self._on_deposit_stored)
        self.registry.on_event("password_reissued", self._on_deposit_stored)
        self.registry.on_event("deposit_overdue", self._on_deposit_overdue)
        self.registry.on_event("ticket_issued_offline", self._on_offline_ticket)
        self.registry.on_event("ticket_voided", self._on_ticket_voided)
        self.registry.on_event("evaluation", self._on_evaluation)
        self.notifier = NotificationDispatcher(
            self.store.connect_new,
            sender or make_sender(cfg.notify, clock=clock, base_dir=settings.site.data_dir),
            clock,
            cfg.notify,
            unseal=self._unseal,
            on_alarm=self._notify_alarm,
        )
        self._handlers: dict[str, Handler] = {
            "catalog": self._catalog,
            "ticket.issue": self._ticket_issue,
            "ticket.status": self._ticket_status,
            "appointment.lookup": self._appointment_lookup,
            "appointment.checkin": self._appointment_checkin,
            "appointment.sync": lambda _d, _a: self.appointments.sync_payload(),
            "prereview.upload": lambda d, a: self.intake.chunk(d, a).as_result(),
            "prereview.submit": self._prereview_submit,
            "prereview.status": self._prereview_status,
            "case.lookup": self.cases.lookup,
        }
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Become the serving process: recover ticket numbers, then start the notification
        sender and the periodic sweep. CLI tools use a Hall without starting it."""
        self.queue.recover_numbers()
        self.queue.blocks.start()
        self._started = True
        self.notifier.start()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="hall-sweep", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        if self._started:
            self.notifier.stop()
            self.queue.blocks.stop()
            self.queue.mark_clean_stop()
        self.store.close()

    def add_appointment_listener(self, listener: Callable[[str], None]) -> None:
        self._appointment_listeners.append(listener)

    def _appointments_changed(self, day: str) -> None:
        for listener in self._appointment_listeners:
            try:
                listener(day)
            except Exception:
                log.exception("appointment listener failed")

    def _sweep_loop(self) -> None:
        while not self._stop.wait(SWEEP_INTERVAL_S):
            try:
                self.sweep()
            except Exception:
                log.exception("sweep failed")

    def sweep(self) -> None:
        self.queue.expire_past_days()
        self.appointments.sweep_no_shows()
        self.intake.expire()
        self.registry.prune()
        self.registry.check_seq_gaps()  # a gap open past [hall.registry] seq_gap_grace_s
        self.queue.prune_pending_voids()
        self._booking_reminders()

    # -- requests ----------------------------------------------------------------------------

    @property
    def request_kinds(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def handle_request(self, device: str, kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(kind)
        if handler is None:
            raise RequestInvalid(f"unknown request kind {kind!r}", code="unknown_request")
        return handler(device, args)

    def _catalog(self, _device: str, _args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "hall": {"name_zh": self.settings.hall.name_zh, "name_en": self.settings.hall.name_en},
            "categories": self.queue.catalog(),
            "matters": self.prereview.catalog(),
        }

    def _ticket_issue(self, device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        category = args.get("category")
        if not isinstance(category, str):
            raise RequestInvalid("category: missing")
        priority = args.get("priority", "normal")
        if priority not in ("normal", "green"):
            raise RequestInvalid("priority: normal or green (bookings check in instead)")
        issued = self.queue.issue(
            category_id=category,
            device=device,
            identity_hash=_identity(args),
            priority=priority,
        )
        return _issued(issued)

    def _ticket_status(self, _device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        ticket_id = args.get("ticket_id")
        if not isinstance(ticket_id, str):
            raise RequestInvalid("ticket_id: missing")
        ticket = self.queue.get(ticket_id)
        ahead, wait_s = self.queue.position(ticket_id)
        return {**ticket.public(), "people_ahead": ahead, "wait_estimate_s": wait_s}

    def _appointment_lookup(self, _device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        found = self.appointments.lookup(
            identity_hash=_identity(args), booking_code=_opt(args, "booking_code")
        )
        return {"appointments": [a.for_kiosk() for a in found]}

    def _appointment_checkin(self, device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        result = self.appointments.check_in(
            device=device,
            identity_hash=_identity(args),
            booking_code=_opt(args, "booking_code"),
        )
        return {"appointment": result.appointment.for_kiosk(), **_issued(result.issued)}

    def _prereview_submit(self, device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        sub = self.prereview.submit(device, args)
        return {
            "submission_key": sub.id,
            "receipt_no": sub.receipt_no,
            "state": sub.state,
            "submitted_at": sub.submitted_at,
        }

    def _prereview_status(self, _device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "submissions": [
                {
                    "receipt_no": s.receipt_no,
                    "matter_code": s.matter_code,
                    "state": s.state,
                    "submitted_at": s.submitted_at,
                    "decided_at": s.decided_at,
                    "return_items": s.return_items,
                }
                for s in self.prereview.status(args)
            ]
        }

    # -- events ------------------------------------------------------------------------------

    def _on_alarm_event(self, conn: sqlite3.Connection, event: Event) -> None:
        code = str(event.data.get("alarm", "unknown"))
        subject = str(event.data.get("subject", ""))
        if event.data.get("active", True):
            self.registry.raise_alarm(
                conn,
                device=event.device,
                component=event.component,
                code=code,
                subject=subject,
                details=dict(event.data),
            )
        else:
            self.registry.clear_alarm(
                conn,
                device=event.device,
                component=event.component,
                code=code,
                subject=subject,
                by=event.device,
            )

    def _case_phone(self, conn: sqlite3.Connection, case_number: str) -> str | None:
        row = conn.execute(
            "SELECT phone FROM cases WHERE case_number = ?", (case_number,)
        ).fetchone()
        return str(row["phone"]) if row and row["phone"] else None

    def _on_deposit_stored(self, conn: sqlite3.Connection, event: Event) -> None:
        case_number = str(event.data.get("case_number", ""))
        sealed = event.data.get("password_sealed")
        phone = self._case_phone(conn, case_number)
        problem = None
        if phone is None:
            problem = "no phone number is known for this case"
        elif not isinstance(sealed, str):
            problem = "the locker sent no sealed password (no hall seal key installed?)"
        if problem is not None:
            self.registry.raise_alarm(
                conn,
                device=event.device,
                component=event.component,
                code="pickup_password_not_sent",
                subject=case_number,
                details={
                    "case_number": case_number,
                    "problem": problem,
                    "deposit_id": event.data.get("deposit_id"),
                },
            )
            return
        assert phone is not None and isinstance(sealed, str)
        try:
            self._enqueue_pickup(conn, event, case_number, phone, sealed)
        except NotifyError as exc:
            self.registry.raise_alarm(
                conn,
                device=event.device,
                component=event.component,
                code="pickup_password_not_sent",
                subject=case_number,
                details={"case_number": case_number, "problem": exc.detail},
            )

    def _enqueue_pickup(
        self, conn: sqlite3.Connection, event: Event, case_number: str, phone: str, sealed: str
    ) -> None:
        enqueue(
            conn,
            kind="pickup_password",
            recipient_phone=phone,
            params={
                "case_no": case_number,
                "location": f"{self.settings.hall.name_zh} {event.device}"
                f" {event.data.get('bay_id', '')}",
                "deadline": str(event.data.get("deadline", ""))[:10],
            },
            dedup_key=f"deposit:{event.device}:{event.data.get('deposit_id')}:{event.id}",
            sealed_secret=f"{event.device}/{event.data.get('deposit_id')}|{sealed}".encode(),
        )

    def _unseal(self, blob: bytes) -> str:
        associated, _, sealed = blob.decode().partition("|")
        try:
            return unseal(sealed, self.seal_key, associated)
        except SealError as exc:
            raise HallError(str(exc)) from None

    def _on_deposit_overdue(self, conn: sqlite3.Connection, event: Event) -> None:
        case_number = str(event.data.get("case_number", ""))
        phone = self._case_phone(conn, case_number)
        if phone is None:
            return
        try:
            self._enqueue_overdue(conn, event, case_number, phone)
        except NotifyError as exc:
            log.warning("overdue reminder for case %s not queued: %s", case_number, exc.detail)

    def _enqueue_overdue(
        self, conn: sqlite3.Connection, event: Event, case_number: str, phone: str
    ) -> None:
        enqueue(
            conn,
            kind="overdue_reminder",
            recipient_phone=phone,
            params={
                "case_no": case_number,
                "location": f"{self.settings.hall.name_zh} {event.device}",
                "deadline": str(event.data.get("deadline", ""))[:10],
            },
            dedup_key=f"overdue:{event.device}:{event.data.get('deposit_id')}",
        )

    def _on_offline_ticket(self, conn: sqlite3.Connection, event: Event) -> None:
        d = event.data
        booking_code = code if isinstance(code := d.get("booking_code"), str) else None
        try:
            issued_at = datetime.fromisoformat(str(d["issued_at"]))
            if issued_at.tzinfo is None:
                raise ValueError("issued_at needs an offset")
            slot_start = None
            if booking_code is not None:
                booking = conn.execute(
                    "SELECT slot_start FROM appointments WHERE booking_code = ?", (booking_code,)
                ).fetchone()
                slot_start = from_iso(booking["slot_start"]) if booking is not None else None
            ticket = self.queue.merge_offline(
                ticket_id=str(d["ticket_id"]),
                device=event.device,
                category_id=str(d["category"]),
                number=int(str(d["number"])),
                issued_at=issued_at,
                priority=str(d.get("priority", "normal")),  # type: ignore[arg-type]
                identity_hash=identity
                if isinstance(identity := d.get("identity_hash"), str)
                else None,
                booking_code=booking_code,
                slot_start=slot_start,
            )
        except (KeyError, ValueError, HallError) as exc:
            # the applicant holds this ticket: staff must see the problem, nothing is dropped
            self.registry.raise_alarm(
                conn,
                device=event.device,
                component=event.component,
                code="offline_ticket_rejected",
                subject=str(d.get("ticket_id", event.id)),
                details={"problem": str(exc), "event_id": event.id},
            )
            return
        log.info("merged offline ticket %s from %s", ticket.label, event.device)
        for device, outcome in self.queue.apply_pending_voids(ticket.id):
            # its ticket_voided came first (e.g. this event was held back): applied now
            self._voided(conn, event, device, ticket.id, outcome, label=ticket.label)
        if booking_code is None:
            return
        # checked in before with a ticket that was voided (its print failed): this one replaces it
        conn.execute(
            "UPDATE appointments SET ticket_id = ? WHERE booking_code = ?"
            " AND status = 'checked_in' AND ticket_id IN"
            " (SELECT id FROM tickets WHERE state = 'voided')",
            (ticket.id, booking_code),
        )
        problem = self.appointments.record_offline_check_in(
            conn, booking_code=booking_code, ticket_id=ticket.id, at=issued_at
        )
        if problem is not None:
            self.registry.raise_alarm(
                conn,
                device=event.device,
                component=event.component,
                code=problem,
                subject=booking_code,
                details={"ticket": ticket.label, "event_id": event.id},
            )
            return
        appt = self.appointments.get(booking_code)
        self._appointments_changed(appt.service_day)
        log.info("booking %s checked in offline: ticket %s", booking_code, ticket.label)

    def _on_ticket_voided(self, conn: sqlite3.Connection, event: Event) -> None:
        """The device's printer failed on a new ticket: nobody holds it (docs/hall.md "Voided
        tickets"). The kiosk raises ``ticket_not_printed`` itself; the hall alarms only when it
        cannot void the ticket."""
        d = event.data
        ticket_id = d.get("ticket_id")
        label = str(d.get("label", ""))
        if not isinstance(ticket_id, str) or not _HEX32.match(ticket_id):
            self._void_alarm(
                conn, event, "ticket_void_refused", event.id, label=label, problem="bad ticket_id"
            )
            return
        try:
            outcome = self.queue.void(ticket_id, str(d.get("reason", "")), event.device)
        except HallError as exc:
            self._void_alarm(
                conn, event, "ticket_void_refused", ticket_id, label=label, problem=str(exc)
            )
            return
        self._voided(conn, event, event.device, ticket_id, outcome, label=label)

    def _voided(
        self,
        conn: sqlite3.Connection,
        event: Event,
        device: str,
        ticket_id: str,
        outcome: Voided,
        *,
        label: str,
    ) -> None:
        ticket = outcome.ticket
        label = ticket.label if ticket is not None else label
        if outcome.result == "voided":
            # a void that waited for its ticket had raised ticket_void_unknown: done now
            self.registry.clear_alarm(
                conn,
                device=device,
                component=event.component,
                code="ticket_void_unknown",
                subject=ticket_id,
                by="hall",
            )
            return
        if outcome.result in ("already_voided", "ended"):
            log.info("void of %s from %s: nothing to do (%s)", label, device, outcome.result)
            return
        problem = {
            "called": f"already called at window {ticket.window if ticket else '?'}:"
            " a person may hold it",
            "other_device": f"issued to {ticket.device if ticket else '?'}, not to {device}",
            "pending": "the hall has no such ticket (yet); it is voided if it arrives",
        }[outcome.result]
        code = "ticket_void_unknown" if outcome.result == "pending" else "ticket_void_refused"
        self._void_alarm(conn, event, code, ticket_id, label=label, problem=problem, device=device)

    def _void_alarm(
        self,
        conn: sqlite3.Connection,
        event: Event,
        code: str,
        subject: str,
        *,
        label: str,
        problem: str,
        device: str | None = None,
    ) -> None:
        self.registry.raise_alarm(
            conn,
            device=device or event.device,
            component=event.component,
            code=code,
            subject=subject,
            details={"ticket": label, "problem": problem, "event_id": event.id},
        )

    def _on_evaluation(self, conn: sqlite3.Connection, event: Event) -> None:
        try:
            evaluations.record(conn, event, self.clock)
        except evaluations.EvaluationInvalid as exc:
            # a kiosk bug, not the applicant's: ops see it, the rest of the stream goes on
            self.registry.raise_alarm(
                conn,
                device=event.device,
                component=event.component,
                code="evaluation_rejected",
                subject=event.id,
                details={"problem": str(exc)},
            )

    def _notify_alarm(self, code: str, details: dict[str, object]) -> None:
        with self.store.transaction() as conn:
            self.registry.raise_alarm(
                conn,
                device="hall",
                component="notify",
                code=code,
                subject=str(details.get("id", "")),
                details=dict(details),
            )

    def _booking_reminders(self) -> None:
        before = self.settings.hall.appointments.reminder_before_s
        if not before:
            return
        now = self.clock.now()
        rows = self.store.all(
            "SELECT * FROM appointments WHERE status = 'booked' AND phone IS NOT NULL"
            " AND slot_start > ? AND slot_start <= ?",
            utc_iso(now),
            utc_iso(now + timedelta(seconds=before)),
        )
        with self.store.transaction() as conn:
            for r in rows:
                try:
                    slot = datetime.fromisoformat(r["slot_start"]).astimezone(self.clock.tz)
                    enqueue(
                        conn,
                        kind="booking_reminder",
                        recipient_phone=r["phone"],
                        params={
                            "booking_code": r["booking_code"],
                            "matter": r["matter_name"],
                            "slot": slot.strftime("%Y-%m-%d %H:%M"),
                            "place": r["place"] or self.settings.hall.name_zh,
                        },
                        dedup_key=f"booking:{r['booking_code']}:reminder",
                    )

                except NotifyError as exc:
                    log.warning(
                        "reminder for booking %s not queued: %s", r["booking_code"], exc.detail
                    )

    # -- cases -------------------------------------------------------------------------------

    def register_case(
        self,
        case_number: str,
        *,
        phone: str | None,
        source: str,
        identity_hash: str | None = None,
        name_masked: str | None = None,
    ) -> None:
        """Where the pickup SMS for a case goes and, when given, who may collect it (keyed
        hash and masked name together; left as it was when not given)."""
        self.cases.register(
            case_number,
            phone=phone,
            source=source,
            identity_hash=identity_hash,
            name_masked=name_masked,
        )

    def import_cases(
        self, data: bytes, *, source: str = "import"
    ) -> tuple[CaseImport, dict[str, int]]:
        """``hall case import FILE.csv``: parse (ID numbers keyed with this hall's identity
        key, names masked), store the good rows; the parse result with its row errors, and
        the counts stored."""
        parsed = parse_cases_csv(data, hasher=self.hasher)
        return parsed, self.cases.store(parsed.records, source=source)


def enqueue(conn: sqlite3.Connection, **fields: Any) -> None:
    """Queue one SMS inside the caller's transaction. A message that cannot be built (a bad
    phone number, a missing field) raises NotifyError, which the caller turns into an alarm."""
    _enqueue(conn, **fields)


def _opt(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise RequestInvalid(f"{key}: malformed")
    return value
