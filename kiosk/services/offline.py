"""What the kiosk does on its own while the hall cannot be reached (docs/kiosk.md "Offline").

- **Tickets** from this kiosk's offline range (``[kiosk.offline] ranges``, the same as the
  hall's ``[[hall.queue.offline_ranges]]`` for this device), per category and service day (the
  hall's local date). The counter, the ticket row and its ``ticket_issued_offline`` event commit
  in one fsynced transaction before the number is returned, so a power cut never hands a
  printed number out again, and the hall merges the ticket by its issue time when the outbox
  reaches it. One identity gets one offline ticket per category and day (a reprint after that).
- **Check-in** against the synced appointment list (``appointments.py``) with the list's
  ``early_s``/``late_s``, refusing with the hall's own codes and texts. A booking checked in
  here gets a priority (``appointment``) ticket from the offline range and its event carries
  ``booking_code``, so the hall marks the booking checked in when it merges the ticket; the
  local ticket row is the mark that stops a second offline check-in of the same booking.
- **Catalog** and **ticket status**: the last answers, kept in ``kiosk.db``.
- **Voided tickets** (their print failed, nobody holds them): ``void_ticket`` forgets the
  offline ticket (no reprint offer to its identity, no second check-in refused for its
  booking; its number is never handed out again, the counter stays) and records
  ``ticket_voided`` in the same transaction, so it reaches the hall after the ticket's own
  ``ticket_issued_offline``. The last known answer about the ticket says ``voided``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from hall.errors import (
    AppointmentForfeited,
    AppointmentNotFound,
    AppointmentTooEarly,
    HallError,
    RequestInvalid,
    UnknownCategory,
)
from hallkiosk.clock import Clock, utc_iso
from kiosk.services.appointments import AppointmentCache
from kiosk.services.events import OutboxEvents
from kiosk.services.hall_gateway import (
    Booking,
    Catalog,
    Category,
    CheckedIn,
    HallRefusal,
    HallUnreachable,
    Ticket,
    parse_catalog,
    parse_ticket,
)
from kiosk.services.store import KioskStore
from uplink.messages import ListedAppointment

log = logging.getLogger(__name__)

TicketPriority = Literal["normal", "green", "appointment"]
OFFLINE_TICKET_EVENT = "ticket_issued_offline"
TICKET_VOIDED_EVENT = "ticket_voided"


def refusal(error: type[HallError]) -> HallRefusal:
    """The hall's own refusal (code and both texts), raised by the kiosk itself."""
    return HallRefusal(error.code, error.message_zh, error.message_en)


class _KioskRefusal(HallRefusal):
    """A refusal the kiosk makes on its own; flows show it like the hall's."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.code, self.message_zh, self.message_en)
        self.detail_text = detail


class OfflineTicketsUnavailable(_KioskRefusal):
    """The hall cannot be reached and this kiosk has no offline range configured."""

    code = "offline_tickets_unavailable"
    message_zh = "暂时连不上大厅系统，本机无法离线取号，请稍后再试或到服务台取号。"
    message_en = (
        "The hall system cannot be reached and this kiosk cannot issue tickets on its own. "
        "Please try again later or ask at the service desk."
    )


class OfflineRangeExhausted(_KioskRefusal):
    code = "offline_range_exhausted"
    message_zh = "暂时连不上大厅系统，本机今日离线号码已发完，请到服务台取号。"
    message_en = (
        "The hall system cannot be reached and this kiosk has no offline numbers left today. "
        "Please ask at the service desk."
    )


class AppointmentAlreadyCheckedIn(_KioskRefusal):
    """Offline, a booking the hall had already checked in: its ticket is at the hall."""

    code = "appointment_already_checked_in"
    message_zh = "该预约已签到，请留意叫号；如需补打号票，请联系工作人员。"
    message_en = (
        "This booking is already checked in. Please wait to be called; staff can reprint "
        "your ticket."
    )


def service_day(clock: Clock, moment: datetime | None = None) -> str:
    return (moment or clock.now()).astimezone(clock.tz).date().isoformat()


def booking_of(listed: ListedAppointment, *, checked_in: bool = False) -> Booking:
    return Booking(
        booking_code=listed.booking_code,
        name_masked=listed.name_masked,
        matter_code=listed.matter_code,
        matter_name=listed.matter_name,
        area=listed.area,
        slot_start=listed.slot_start,
        slot_end=listed.slot_end,
        place=listed.place or "",
        status="checked_in" if checked_in else listed.status,
    )


class OfflineDesk:
    def __init__(
        self,
        store: KioskStore,
        events: OutboxEvents,
        clock: Clock,
        appointments: AppointmentCache,
        *,
        ranges: Sequence[tuple[int, int]] = (),
        appointment_ticket_type: str = "submit",
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self.appointments = appointments
        self._ranges = sorted(ranges)
        self._appointment_ticket_type = appointment_ticket_type

    # -- catalog -----------------------------------------------------------------------------

    def store_catalog(self, result: Mapping[str, Any]) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO kiosk_catalog (id, payload, fetched_at) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET payload = excluded.payload,"
                " fetched_at = excluded.fetched_at",
                (json.dumps(result, ensure_ascii=False), utc_iso(self._clock.now())),
            )

    def cached_catalog(self) -> Catalog | None:
        row = self._store.one("SELECT payload FROM kiosk_catalog WHERE id = 1")
        return None if row is None else parse_catalog(json.loads(row["payload"]), cached=True)

    def category(self, category_id: str) -> Category:
        """A category of the cached catalog; its prefix makes the offline ticket's label."""
        catalog = self.cached_catalog()
        if catalog is None:
            raise HallUnreachable("no catalog cached: the offline ticket's label is unknown")
        found = next((c for c in catalog.categories if c.id == category_id), None)
        if found is None:
            raise refusal(UnknownCategory)
        return found

    # -- what the hall last said about a ticket ------------------------------------------------

    def remember_ticket(self, result: Mapping[str, Any]) -> None:
        """Keep the public fields of a ticket answer (never an identity) for today."""
        keep = {
            k: result[k]
            for k in (
                "ticket_id",
                "ticket",
                "category",
                "priority",
                "state",
                "issued_at",
                "service_day",
                "offline",
                "window",
            )
            if k in result
        }
        today = service_day(self._clock)
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM kiosk_known_tickets WHERE service_day < ?", (today,))
            conn.execute(
                "INSERT INTO kiosk_known_tickets (ticket_id, service_day, payload, seen_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET"
                " payload = excluded.payload, seen_at = excluded.seen_at",
                (
                    str(result["ticket_id"]),
                    str(result.get("service_day") or today),
                    json.dumps(keep, ensure_ascii=False),
                    utc_iso(self._clock.now()),
                ),
            )

    def offline_ticket(self, ticket_id: str) -> Ticket | None:
        """A ticket this kiosk issued offline."""
        own = self._store.one("SELECT * FROM kiosk_offline_tickets WHERE ticket_id = ?", ticket_id)
        return None if own is None else self._ticket(own)

    def last_known(self, ticket_id: str) -> Ticket | None:
        """This kiosk's offline ticket, or the hall's last answer (people ahead unknown)."""
        own = self.offline_ticket(ticket_id)
        if own is not None:
            return own
        row = self._store.one(
            "SELECT payload FROM kiosk_known_tickets WHERE ticket_id = ?", ticket_id
        )
        if row is None:
            return None
        known = dict(json.loads(row["payload"]))
        known.pop("people_ahead", None)
        known.pop("wait_estimate_s", None)
        return parse_ticket(known)

    # -- voided tickets ----------------------------------------------------------------------

    def void_ticket(self, data: Mapping[str, Any]) -> None:
        """Forget ``data["ticket_id"]`` as a ticket someone holds and record the
        ``ticket_voided`` event ``data``, in one fsynced transaction (raises ``OutboxFull`` or
        a database error: then nothing changed)."""
        ticket_id = str(data["ticket_id"])
        today = service_day(self._clock)
        with self._store.transaction() as conn:
            own = conn.execute(
                "SELECT * FROM kiosk_offline_tickets WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()
            known_row = conn.execute(
                "SELECT payload FROM kiosk_known_tickets WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()
            if known_row is not None:
                known = dict(json.loads(known_row["payload"]))
            elif own is not None:
                known = {
                    "ticket_id": ticket_id,
                    "ticket": own["label"],
                    "category": own["category"],
                    "priority": own["priority"],
                    "issued_at": own["issued_at"],
                    "service_day": own["service_day"],
                    "offline": True,
                }
            else:
                known = None
            if own is not None:
                conn.execute("DELETE FROM kiosk_offline_tickets WHERE ticket_id = ?", (ticket_id,))
            if known is not None:
                known["state"] = "voided"
                conn.execute(
                    "INSERT INTO kiosk_known_tickets (ticket_id, service_day, payload, seen_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET"
                    " payload = excluded.payload, seen_at = excluded.seen_at",
                    (
                        ticket_id,
                        str(known.get("service_day") or today),
                        json.dumps(known, ensure_ascii=False),
                        utc_iso(self._clock.now()),
                    ),
                )
            self._events.outbox.append_in(conn, TICKET_VOIDED_EVENT, data)
        self._events.recorded()
        log.info("ticket %s voided on this kiosk (%s)", data.get("label"), data.get("reason"))

    # -- offline tickets ---------------------------------------------------------------------

    def issue(
        self,
        category: Category,
        *,
        priority: TicketPriority,
        identity_hash: str | None,
        booking_code: str | None = None,
    ) -> Ticket:
        """A ticket from this kiosk's offline range, durable (fsynced) before it returns."""
        if not self._ranges:
            raise OfflineTicketsUnavailable("no [kiosk.offline] ranges configured")
        now = self._clock.now()
        day = service_day(self._clock, now)
        with self._store.transaction() as conn:
            if identity_hash is not None and booking_code is None:
                existing = conn.execute(
                    "SELECT * FROM kiosk_offline_tickets WHERE identity_hash = ?"
                    " AND service_day = ? AND category = ? AND booking_code IS NULL"
                    " ORDER BY issued_at LIMIT 1",
                    (identity_hash, day, category.id),
                ).fetchone()
                if existing is not None:
                    return self._ticket(existing, reprint=True)
            counter = conn.execute(
                "SELECT last_number FROM kiosk_offline_counters"
                " WHERE category = ? AND service_day = ?",
                (category.id, day),
            ).fetchone()
            number = self._next_number(None if counter is None else int(counter["last_number"]))
            if number is None:
                raise OfflineRangeExhausted(f"{category.id}: offline range used up on {day}")
            conn.execute(
                "INSERT INTO kiosk_offline_counters (category, service_day, last_number)"
                " VALUES (?, ?, ?) ON CONFLICT (category, service_day)"
                " DO UPDATE SET last_number = excluded.last_number",
                (category.id, day, number),
            )
            ticket_id = uuid.uuid4().hex
            label = f"{category.prefix}{number:0{category.label_digits}d}"
            issued_at = now.isoformat()
            conn.execute(
                "INSERT INTO kiosk_offline_tickets (ticket_id, service_day, category, number,"
                " label, priority, issued_at, identity_hash, booking_code)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket_id,
                    day,
                    category.id,
                    number,
                    label,
                    priority,
                    issued_at,
                    identity_hash,
                    booking_code,
                ),
            )
            data: dict[str, Any] = {
                "ticket_id": ticket_id,
                "category": category.id,
                "number": number,
                "issued_at": issued_at,
                "priority": priority,
            }
            if identity_hash is not None:
                data["identity_hash"] = identity_hash
            if booking_code is not None:
                data["booking_code"] = booking_code
            self._events.outbox.append_in(conn, OFFLINE_TICKET_EVENT, data)
            row = conn.execute(
                "SELECT * FROM kiosk_offline_tickets WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()
        self._events.recorded()
        log.info("offline ticket %s (%s, %s) issued", label, category.id, priority)
        return self._ticket(row)

    def _next_number(self, last: int | None) -> int | None:
        for first, end in self._ranges:
            if last is None or last < first:
                return first
            if last < end:
                return last + 1
        return None

    @staticmethod
    def _ticket(row: Any, *, reprint: bool = False) -> Ticket:
        return Ticket(
            ticket_id=row["ticket_id"],
            label=row["label"],
            category=row["category"],
            priority=row["priority"],
            issued_at=datetime.fromisoformat(row["issued_at"]),
            people_ahead=None,
            wait_estimate_s=None,
            offline=True,
            reprint=reprint,
        )

    # -- appointments ------------------------------------------------------------------------

    def _checked_in_here(self, day: str) -> dict[str, Any]:
        rows = self._store.all(
            "SELECT * FROM kiosk_offline_tickets WHERE service_day = ?"
            " AND booking_code IS NOT NULL",
            day,
        )
        return {row["booking_code"]: row for row in rows}

    def find_bookings(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> list[Booking]:
        """Today's bookings from the synced list (as the hall's ``appointment.lookup``)."""
        listed = self.appointments.today()
        if listed is None:
            raise HallUnreachable("no appointment list for today")
        mine = self._checked_in_here(listed.service_day)
        return [
            booking_of(a, checked_in=a.booking_code in mine)
            for a in self._candidates(listed.appointments, identity_hash, booking_code)
        ]

    @staticmethod
    def _candidates(
        appointments: Sequence[ListedAppointment],
        identity_hash: str | None,
        booking_code: str | None,
    ) -> list[ListedAppointment]:
        if booking_code:
            return [a for a in appointments if a.booking_code == booking_code]
        if identity_hash:
            return [a for a in appointments if a.identity_hash == identity_hash]
        raise refusal(RequestInvalid)

    def check_in(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> CheckedIn:
        """The hall's check-in rules (hall/appointments/book.py) against the synced list."""
        listed = self.appointments.today()
        if listed is None:
            raise HallUnreachable("no appointment list for today")
        now = self._clock.now()
        mine = self._checked_in_here(listed.service_day)
        candidates = self._candidates(listed.appointments, identity_hash, booking_code)
        if identity_hash and booking_code is None:
            candidates = [
                a
                for a in candidates
                if a.status in ("booked", "checked_in") or a.booking_code in mine
            ] or candidates
        if not candidates:
            raise refusal(AppointmentNotFound)
        appt = min(candidates, key=lambda a: abs((a.slot_start - now).total_seconds()))
        here = mine.get(appt.booking_code)
        if here is not None:  # checked in on this kiosk already: the same ticket again
            return CheckedIn(
                booking=booking_of(appt, checked_in=True),
                ticket=self._ticket(here, reprint=True),
                offline=True,
            )
        if appt.status == "checked_in":
            raise AppointmentAlreadyCheckedIn(appt.booking_code)
        if appt.status == "cancelled":
            raise refusal(AppointmentNotFound)
        if appt.status == "no_show":
            raise refusal(AppointmentForfeited)
        opens = appt.slot_start - timedelta(seconds=listed.early_s)
        lapses = appt.slot_start + timedelta(seconds=listed.late_s)
        if now < opens:
            raise refusal(AppointmentTooEarly)
        if now > lapses:
            raise refusal(AppointmentForfeited)
        ticket = self.issue(
            self._category_for(appt.area),
            priority="appointment",
            identity_hash=appt.identity_hash,
            booking_code=appt.booking_code,
        )
        log.info("booking %s checked in offline: ticket %s", appt.booking_code, ticket.label)
        return CheckedIn(booking=booking_of(appt, checked_in=True), ticket=ticket, offline=True)

    def _category_for(self, area: str) -> Category:
        catalog = self.cached_catalog()
        if catalog is None:
            raise HallUnreachable("no catalog cached: the booking's ticket category is unknown")
        in_area = [c for c in catalog.categories if c.area == area]
        wanted = [c for c in in_area if c.ticket_type == self._appointment_ticket_type]
        if not (wanted or in_area):
            raise refusal(RequestInvalid)
        return (wanted or in_area)[0]
