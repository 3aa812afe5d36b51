"""The appointment book: imported bookings, check-in windows, no-shows, the kiosks' offline list.

Check-in at ``now`` for a slot starting at ``s``:
    now < s - early_s            -> too early (AppointmentTooEarly), nothing changes
    s - early_s <= now <= s + late_s -> checked in; a priority ticket ordered by slot time
    now > s + late_s             -> given up (超过预约时间1小时未到场的,视为申请人主动放弃): marked
                                    no_show, AppointmentForfeited; the kiosk offers a normal ticket
The sweeper marks every booking past ``s + late_s`` as no_show, whether or not anyone came.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hall.appointments.records import AppointmentRecord
from hall.errors import (
    AppointmentForfeited,
    AppointmentNotFound,
    AppointmentTooEarly,
    RequestInvalid,
)
from hall.queue import Issued, QueueAuthority
from hall.settings import AppointmentSettings, QueueSettings
from hall.store import HallStore, from_iso
from hallkiosk.clock import Clock, utc_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Appointment:
    booking_code: str
    matter_code: str
    matter_name: str
    area: str
    slot_start: datetime
    slot_end: datetime
    service_day: str
    identity_hash: str
    id_masked: str
    name_masked: str
    place: str | None
    status: str
    ticket_id: str | None

    def for_kiosk(self) -> dict[str, object]:
        """What a kiosk keeps for offline check-in: the keyed hash, never an ID number."""
        return {
            "booking_code": self.booking_code,
            "identity_hash": self.identity_hash,
            "name_masked": self.name_masked,
            "matter_code": self.matter_code,
            "matter_name": self.matter_name,
            "area": self.area,
            "slot_start": self.slot_start.isoformat(),
            "slot_end": self.slot_end.isoformat(),
            "place": self.place,
            "status": self.status,
        }


def _appointment(r: sqlite3.Row, tz: object) -> Appointment:
    return Appointment(
        booking_code=r["booking_code"],
        matter_code=r["matter_code"],
        matter_name=r["matter_name"],
        area=r["area"],
        slot_start=from_iso(r["slot_start"]).astimezone(tz),  # type: ignore[arg-type]
        slot_end=from_iso(r["slot_end"]).astimezone(tz),  # type: ignore[arg-type]
        service_day=r["service_day"],
        identity_hash=r["identity_hash"],
        id_masked=r["id_masked"],
        name_masked=r["name_masked"],
        place=r["place"],
        status=r["status"],
        ticket_id=r["ticket_id"],
    )


@dataclass(frozen=True)
class CheckIn:
    appointment: Appointment
    issued: Issued


class AppointmentBook:
    def __init__(
        self,
        store: HallStore,
        settings: AppointmentSettings,
        queue_settings: QueueSettings,
        queue: QueueAuthority,
        clock: Clock,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._queue_settings = queue_settings
        self._queue = queue
        self._clock = clock
        self._on_change = on_change or (lambda _day: None)

    # -- import ------------------------------------------------------------------------------

    def store_records(self, records: Sequence[AppointmentRecord]) -> dict[str, object]:
        """Insert or update bookings. A booking already checked in or marked no-show keeps its
        state; a cancellation removes a booked one from check-in."""
        now = utc_iso(self._clock.now())
        added = updated = kept = 0
        days: set[str] = set()
        with self._store.transaction() as conn:
            for rec in records:
                day = rec.slot_start.astimezone(self._clock.tz).date().isoformat()
                days.add(day)
                old = conn.execute(
                    "SELECT status FROM appointments WHERE booking_code = ?", (rec.booking_code,)
                ).fetchone()
                if old is not None and old["status"] in ("checked_in", "no_show"):
                    kept += 1
                    continue
                values = (
                    rec.matter_code,
                    rec.matter_name,
                    rec.area,
                    utc_iso(rec.slot_start),
                    utc_iso(rec.slot_end),
                    day,
                    rec.identity_hash,
                    rec.id_masked,
                    rec.name_masked,
                    rec.phone,
                    rec.place,
                    rec.status,
                    now,
                )
                if old is None:
                    conn.execute(
                        "INSERT INTO appointments (matter_code, matter_name, area, slot_start,"
                        " slot_end, service_day, identity_hash, id_masked, name_masked, phone,"
                        " place, status, updated_at, booking_code, imported_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*values, rec.booking_code, now),
                    )
                    added += 1
                else:
                    conn.execute(
                        "UPDATE appointments SET matter_code = ?, matter_name = ?, area = ?,"
                        " slot_start = ?, slot_end = ?, service_day = ?, identity_hash = ?,"
                        " id_masked = ?, name_masked = ?, phone = ?, place = ?, status = ?,"
                        " updated_at = ? WHERE booking_code = ?",
                        (*values, rec.booking_code),
                    )
                    updated += 1
        for day in sorted(days):
            self._on_change(day)
        return {"added": added, "updated": updated, "kept": kept}

    # -- reading -----------------------------------------------------------------------------

    def get(self, booking_code: str) -> Appointment:
        row = self._store.one("SELECT * FROM appointments WHERE booking_code = ?", booking_code)
        if row is None:
            raise AppointmentNotFound(f"no booking {booking_code!r}")
        return _appointment(row, self._clock.tz)

    def today(self, day: str | None = None) -> list[Appointment]:
        rows = self._store.all(
            "SELECT * FROM appointments WHERE service_day = ? ORDER BY slot_start, booking_code",
            day or self._queue.service_day(),
        )
        return [_appointment(r, self._clock.tz) for r in rows]

    def lookup(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> list[Appointment]:
        """Today's bookings of an identity, or the one with this code (any state)."""
        if booking_code:
            found = [self.get(booking_code)]
            return [a for a in found if a.service_day == self._queue.service_day()]
        if identity_hash:
            return [a for a in self.today() if a.identity_hash == identity_hash]
        raise RequestInvalid("a lookup needs an identity or a booking code")

    def sync_payload(self, day: str | None = None) -> dict[str, object]:
        day = day or self._queue.service_day()
        return {
            "service_day": day,
            "generated_at": self._clock.now().isoformat(),
            "early_s": self._settings.early_s,
            "late_s": self._settings.late_s,
            "appointments": [a.for_kiosk() for a in self.today(day)],
        }

    # -- check-in ----------------------------------------------------------------------------

    def check_in(
        self,
        *,
        device: str,
        booking_code: str | None = None,
        identity_hash: str | None = None,
        checked_in_at: datetime | None = None,
    ) -> CheckIn:
        """``checked_in_at`` is given for a check-in a kiosk did offline (its own clock)."""
        candidates = self.lookup(identity_hash=identity_hash, booking_code=booking_code)
        if identity_hash and booking_code is None:
            candidates = [a for a in candidates if a.status in ("booked", "checked_in")] or (
                candidates
            )
        if not candidates:
            raise AppointmentNotFound("no booking today")
        now = checked_in_at or self._clock.now()
        appt = min(candidates, key=lambda a: abs((a.slot_start - now).total_seconds()))
        if appt.status == "checked_in" and appt.ticket_id:
            # checked in before: the waiting ticket again (a reprint), or a new one when that
            # ticket is gone (voided after a failed print), which the booking then points to
            with self._store.transaction():
                issued = self._issue(appt, device)
                if issued.ticket.id != appt.ticket_id:
                    self._store.conn.execute(
                        "UPDATE appointments SET ticket_id = ?, updated_at = ?"
                        " WHERE booking_code = ?",
                        (issued.ticket.id, utc_iso(self._clock.now()), appt.booking_code),
                    )
            if issued.ticket.id != appt.ticket_id:
                self._on_change(appt.service_day)
                return CheckIn(self.get(appt.booking_code), issued)
            return CheckIn(appt, issued)
        if appt.status == "cancelled":
            raise AppointmentNotFound(f"booking {appt.booking_code} was cancelled")
        if appt.status == "no_show":
            raise AppointmentForfeited(f"booking {appt.booking_code} lapsed")
        opens = appt.slot_start - timedelta(seconds=self._settings.early_s)
        lapses = appt.slot_start + timedelta(seconds=self._settings.late_s)
        if now < opens:
            raise AppointmentTooEarly(f"check-in opens at {opens.isoformat()}")
        if now > lapses:
            self._mark(appt.booking_code, "no_show")
            raise AppointmentForfeited(f"booking {appt.booking_code} lapsed at {lapses}")
        with self._store.transaction():
            issued = self._issue(appt, device)
            self._store.conn.execute(
                "UPDATE appointments SET status = 'checked_in', checked_in_at = ?,"
                " ticket_id = ?, updated_at = ? WHERE booking_code = ?",
                (
                    utc_iso(now),
                    issued.ticket.id,
                    utc_iso(self._clock.now()),
                    appt.booking_code,
                ),
            )
        self._on_change(appt.service_day)
        log.info("booking %s checked in: ticket %s", appt.booking_code, issued.ticket.label)
        return CheckIn(self.get(appt.booking_code), issued)

    def _issue(self, appt: Appointment, device: str) -> Issued:
        """The booking's priority ticket, ordered by its slot (a reprint if it has one waiting)."""
        return self._queue.issue(
            category_id=self._category_for(appt),
            device=device,
            identity_hash=appt.identity_hash,
            priority="appointment",
            booking_code=appt.booking_code,
            slot_start=appt.slot_start,
        )

    def record_offline_check_in(
        self, conn: sqlite3.Connection, *, booking_code: str, ticket_id: str, at: datetime
    ) -> str | None:
        """A kiosk checked this booking in while the hall was unreachable, against its synced
        list and windows; the applicant holds the ticket. Returns None when recorded, else the
        problem staff should look at (the ticket stays merged either way).

        A booking the sweeper marked no-show meanwhile is checked in after all when the kiosk's
        check-in time was inside the window: the applicant was on time, the hall just did not
        know."""
        row = conn.execute(
            "SELECT * FROM appointments WHERE booking_code = ?", (booking_code,)
        ).fetchone()
        if row is None:
            return "offline_checkin_unknown_booking"
        appt = _appointment(row, self._clock.tz)
        if appt.status == "checked_in":
            return None if appt.ticket_id == ticket_id else "offline_checkin_twice"
        if appt.status == "cancelled":
            return "offline_checkin_cancelled_booking"
        opens = appt.slot_start - timedelta(seconds=self._settings.early_s)
        lapses = appt.slot_start + timedelta(seconds=self._settings.late_s)
        if not opens <= at <= lapses:
            return "offline_checkin_outside_window"
        conn.execute(
            "UPDATE appointments SET status = 'checked_in', checked_in_at = ?, ticket_id = ?,"
            " updated_at = ? WHERE booking_code = ?",
            (utc_iso(at), ticket_id, utc_iso(self._clock.now()), booking_code),
        )
        return None

    def _category_for(self, appt: Appointment) -> str:
        wanted = self._settings.ticket_type
        for c in self._queue_settings.categories:
            if c.area == appt.area and c.ticket_type == wanted:
                return c.id
        for c in self._queue_settings.categories:
            if c.area == appt.area:
                return c.id
        raise RequestInvalid(f"no ticket category for area {appt.area!r}")

    def _mark(self, booking_code: str, status: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE appointments SET status = ?, updated_at = ? WHERE booking_code = ?",
                (status, utc_iso(self._clock.now()), booking_code),
            )

    def sweep_no_shows(self) -> list[str]:
        """Mark every booking whose late window has passed without a check-in."""
        cutoff = self._clock.now() - timedelta(seconds=self._settings.late_s)
        with self._store.transaction() as conn:
            rows = conn.execute(
                "SELECT booking_code, service_day FROM appointments WHERE status = 'booked'"
                " AND slot_start < ?",
                (utc_iso(cutoff),),
            ).fetchall()
            conn.executemany(
                "UPDATE appointments SET status = 'no_show', updated_at = ? WHERE booking_code = ?",
                [(utc_iso(self._clock.now()), r["booking_code"]) for r in rows],
            )
        for day in sorted({r["service_day"] for r in rows}):
            self._on_change(day)
        if rows:
            log.info("%d booking(s) marked no-show", len(rows))
        return [r["booking_code"] for r in rows]
