"""The queue authority: ticket numbers, quotas, call order, people ahead and the wait estimate.

Numbers
    Per category and service day (the hall's local date), increasing from the category's
    ``first``; a new day starts again at ``first``. Numbers are handed out from blocks reserved
    with one synced commit (``number_block``); a start after an unclean stop skips the rest of
    the last block, so a power cut may skip numbers but never repeats one that was printed.

Call order (one window, its categories)
    Priority tickets (green channel first, then checked-in bookings by slot time) go before
    normal ones (by issue time, which also places merged offline tickets), but a waiting normal
    ticket is overtaken by at most ``priority_overtake_max`` priority tickets: after that it is
    called next. A priority ticket issued after a normal one does not count as overtaking it.

Voids
    A kiosk whose printer failed on a new ticket voids it (event ``ticket_voided``): a waiting
    ticket becomes ``voided``, a terminal state like ``done``, so it is never called, counts in
    no people-ahead, wait estimate or quota window, and frees its identity for a new ticket.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from statistics import fmean
from typing import Literal

from hall.errors import (
    NothingWaiting,
    QuotaExhausted,
    QuotaWindowClosed,
    RequestInvalid,
    TicketNotFound,
    UnknownCategory,
)
from hall.number_blocks import BlockReserver
from hall.settings import Category, QueueSettings
from hall.store import HallStore, from_iso
from hallkiosk.clock import Clock, utc_iso

log = logging.getLogger(__name__)

Priority = Literal["normal", "green", "appointment"]
PRIORITIES: tuple[Priority, ...] = ("normal", "green", "appointment")
ACTIVE_WINDOW_S = 3600  # a window that called in the last hour counts as open
CLEAN_STOP_KEY = "queue_clean_stop"


@dataclass(frozen=True)
class Ticket:
    id: str
    label: str
    category: str
    number: int
    service_day: str
    priority: Priority
    state: str
    issued_at: datetime
    device: str
    offline: bool
    identity_hash: str | None
    slot_start: datetime | None
    window: int | None
    overtaken: int
    recalls: int

    def public(self) -> dict[str, object]:
        """What a kiosk or a window display may see (no identity)."""
        return {
            "ticket_id": self.id,
            "ticket": self.label,
            "category": self.category,
            "priority": self.priority,
            "state": self.state,
            "issued_at": self.issued_at.isoformat(),
            "service_day": self.service_day,
            "offline": self.offline,
            "window": self.window,
        }


@dataclass(frozen=True)
class Issued:
    ticket: Ticket
    people_ahead: int
    wait_estimate_s: int
    reprint: bool  # the identity already had a waiting ticket; this is it again


VoidResult = Literal["voided", "already_voided", "called", "ended", "other_device", "pending"]
VOID_REASONS = ("print_failed",)
PENDING_VOID_KEEP_S = 7 * 24 * 3600  # a void whose ticket never arrives is forgotten after this


@dataclass(frozen=True)
class Voided:
    """What ``QueueAuthority.void`` did. ``voided``: the waiting ticket left the queue;
    ``already_voided``: nothing to do; ``called``: left as it is, a person may hold it;
    ``ended`` (done, skipped, expired): nothing to do; ``other_device``: the ticket was issued
    to another device, left as it is; ``pending``: the hall does not know the ticket yet (an
    offline ticket not merged): the void is applied when it is (``apply_pending_voids``)."""

    result: VoidResult
    ticket: Ticket | None  # None only for "pending"


@dataclass(frozen=True)
class VoidedTicket:
    ticket: Ticket
    reason: str
    voided_by: str
    voided_at: datetime


def _ticket(r: sqlite3.Row, tz: tzinfo) -> Ticket:
    return Ticket(
        id=r["id"],
        label=r["label"],
        category=r["category"],
        number=r["number"],
        service_day=r["service_day"],
        priority=r["priority"],
        state=r["state"],
        issued_at=from_iso(r["issued_at"]).astimezone(tz),
        device=r["device"],
        offline=bool(r["offline"]),
        identity_hash=r["identity_hash"],
        slot_start=from_iso(r["slot_start"]).astimezone(tz) if r["slot_start"] else None,
        window=r["window"],
        overtaken=r["overtaken"],
        recalls=r["recalls"],
    )


def label_for(category: Category, number: int) -> str:
    width = max(3, len(str(category.last)))
    return f"{category.prefix}{number:0{width}d}"


def _priority_key(t: Ticket) -> tuple[int, datetime, datetime]:
    rank = 0 if t.priority == "green" else 1
    return (rank, t.slot_start or t.issued_at, t.issued_at)


def call_order(waiting: Sequence[Ticket], overtake_max: int) -> list[Ticket]:
    """The order in which ``waiting`` would be called if nobody else came."""
    normal = sorted((t for t in waiting if t.priority == "normal"), key=lambda t: t.issued_at)
    prio = sorted((t for t in waiting if t.priority != "normal"), key=_priority_key)
    overtaken = {t.id: t.overtaken for t in normal}
    out: list[Ticket] = []
    while normal or prio:
        pick = _next(normal, prio, overtaken, overtake_max)
        if pick.priority == "normal":
            normal.pop(0)
        else:
            prio.pop(0)
            for t in normal:
                if t.issued_at < pick.issued_at:
                    overtaken[t.id] += 1
        out.append(pick)
    return out


def _next(
    normal: list[Ticket], prio: list[Ticket], overtaken: dict[str, int], overtake_max: int
) -> Ticket:
    if not prio:
        return normal[0]
    if not normal:
        return prio[0]
    head, first_prio = normal[0], prio[0]
    if first_prio.issued_at <= head.issued_at or overtaken[head.id] < overtake_max:
        return first_prio
    return head


# A temporary trigger (this connection only, nothing in the schema) counts every change to
# tickets that can move a wait estimate's inputs: an insert of an already called ticket, an update
# of a column they read, a delete. Created on first use.
_TICKET_EPOCH_SETUP: tuple[str, ...] = (
    "CREATE TEMP TABLE IF NOT EXISTS queue_ticket_epoch (n INTEGER NOT NULL)",
    "INSERT INTO queue_ticket_epoch (n) SELECT 0"
    " WHERE NOT EXISTS (SELECT 1 FROM queue_ticket_epoch)",
    "CREATE TEMP TRIGGER IF NOT EXISTS queue_ticket_epoch_insert AFTER INSERT ON main.tickets"
    " WHEN NEW.called_at IS NOT NULL BEGIN UPDATE queue_ticket_epoch SET n = n + 1; END",
    "CREATE TEMP TRIGGER IF NOT EXISTS queue_ticket_epoch_update"
    " AFTER UPDATE OF category, state, window, called_at, finished_at ON main.tickets"
    " BEGIN UPDATE queue_ticket_epoch SET n = n + 1; END",
    "CREATE TEMP TRIGGER IF NOT EXISTS queue_ticket_epoch_delete AFTER DELETE ON main.tickets"
    " BEGIN UPDATE queue_ticket_epoch SET n = n + 1; END",
)
# Changes by this connection (the epoch) and commits by any other connection or process
# (data_version, e.g. ``hall call``), read in one statement.
_TICKET_EPOCH_READ = (
    "SELECT n, (SELECT data_version FROM pragma_data_version) FROM temp.queue_ticket_epoch"
)


class EstimateInputs:
    """The inputs of a wait estimate, per category: the mean service time and the windows that
    called in the last hour.

    Both change only when a ticket is called, finished or otherwise changed, but no index serves
    their queries, so each was a scan of every ticket of every day, twice per issued ticket.
    They are kept until the tickets may have changed: a token of this connection's ticket epoch
    (temporary triggers, ``_TICKET_EPOCH_SETUP``) and ``PRAGMA data_version`` (a commit by any
    other connection) must be what it was when they were read. A hit gives exactly what the
    queries would; a miss runs them. Inside a transaction nothing is cached or trusted: what it
    reads may still roll back.

    The windows are kept as each window's latest ``called_at`` since the ``since`` they were read
    for, so a later ``since`` (time passing) is answered from them exactly; an earlier one (a
    clock set back) reads again.
    """

    def __init__(self, store: HallStore) -> None:
        self._store = store
        self._ready = False
        self._unavailable = False  # the trigger could not be made: always read
        self._service: dict[tuple[str, int], tuple[tuple[int, int], float | None]] = {}
        self._windows: dict[str, tuple[tuple[int, int], str, list[str]]] = {}

    def _token(self) -> tuple[int, int] | None:
        conn = self._store.conn
        if conn.in_transaction or self._unavailable:
            return None
        if not self._ready:
            try:
                for sql in _TICKET_EPOCH_SETUP:
                    conn.execute(sql)
            except sqlite3.Error:
                # e.g. no room for SQLite's temporary database: estimates are read every time
                log.exception("wait estimate inputs are not kept (no ticket epoch trigger)")
                self._unavailable = True
                return None
            self._ready = True
        row = conn.execute(_TICKET_EPOCH_READ).fetchone()
        return (int(row[0]), int(row[1]))

    def service_time_s(self, category_id: str, samples: int, default_s: float) -> float:
        """The mean of the last ``samples`` services (called -> finished), or ``default_s``."""
        with self._store.lock:
            return self._service_time_s(self._token(), category_id, samples, default_s)

    def windows(self, category_id: str, since: str) -> int:
        """How many windows called a ticket of the category at or after ``since`` (UTC ISO)."""
        with self._store.lock:
            return self._windows_since(self._token(), category_id, since)

    def both(
        self, category_id: str, samples: int, default_s: float, since: str
    ) -> tuple[float, int]:
        """``service_time_s`` and ``windows`` with one look at the token."""
        with self._store.lock:
            token = self._token()
            return (
                self._service_time_s(token, category_id, samples, default_s),
                self._windows_since(token, category_id, since),
            )

    def _service_time_s(
        self, token: tuple[int, int] | None, category_id: str, samples: int, default_s: float
    ) -> float:
        key = (category_id, samples)
        hit = self._service.get(key)
        if token is not None and hit is not None and hit[0] == token:
            mean = hit[1]
        else:
            rows = self._store.conn.execute(
                "SELECT called_at, finished_at FROM tickets WHERE category = ?"
                " AND state = 'done' AND called_at IS NOT NULL AND finished_at IS NOT NULL"
                " ORDER BY finished_at DESC LIMIT ?",
                (category_id, samples),
            ).fetchall()
            spans = [
                (from_iso(r["finished_at"]) - from_iso(r["called_at"])).total_seconds()
                for r in rows
            ]
            spans = [s for s in spans if s > 0]
            mean = fmean(spans) if spans else None
            if token is not None:
                self._service[key] = (token, mean)
        return default_s if mean is None else mean

    def _windows_since(self, token: tuple[int, int] | None, category_id: str, since: str) -> int:
        hit = self._windows.get(category_id)
        if token is not None and hit is not None and hit[0] == token and since >= hit[1]:
            return sum(1 for last in hit[2] if last >= since)
        rows = self._store.conn.execute(
            "SELECT window, MAX(called_at) AS last FROM tickets WHERE category = ?"
            " AND called_at >= ? AND window IS NOT NULL GROUP BY window",
            (category_id, since),
        ).fetchall()
        lasts: list[str] = [r["last"] for r in rows]
        if token is not None:
            self._windows[category_id] = (token, since, lasts)
        return len(lasts)


class QueueAuthority:
    def __init__(self, store: HallStore, settings: QueueSettings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self.blocks = BlockReserver(store, settings.number_block)
        self._estimates = EstimateInputs(store)

    # -- days and categories ----------------------------------------------------------------

    def service_day(self, moment: datetime | None = None) -> str:
        return (moment or self._clock.now()).astimezone(self._clock.tz).date().isoformat()

    def category(self, category_id: str) -> Category:
        category = self._settings.category(category_id)
        if category is None:
            raise UnknownCategory(f"unknown category {category_id!r}")
        return category

    def catalog(self) -> list[dict[str, object]]:
        return [
            {
                "id": c.id,
                "area": c.area,
                "area_zh": c.area_zh,
                "area_en": c.area_en,
                "ticket_type": c.ticket_type,
                "prefix": c.prefix,
                # digits in a label, so an offline ticket from a kiosk looks like the hall's
                "label_digits": max(3, len(str(c.last))),
            }
            for c in self._settings.categories
        ]

    # -- issuing ---------------------------------------------------------------------------------

    def issue(
        self,
        *,
        category_id: str,
        device: str,
        identity_hash: str | None = None,
        priority: Priority = "normal",
        booking_code: str | None = None,
        slot_start: datetime | None = None,
    ) -> Issued:
        category = self.category(category_id)
        if priority not in PRIORITIES:
            raise RequestInvalid(f"unknown priority {priority!r}")
        now = self._clock.now()
        day = self.service_day(now)
        with self._store.lock:
            existing = self._waiting_for_identity(identity_hash, day, category.id)
            if existing is not None:
                ahead, wait_s = self._position(existing)
                return Issued(existing, ahead, wait_s, reprint=True)
            self._check_quota(category, day, now)
            counter = self._store.one(
                "SELECT next_number, reserved_upto FROM ticket_counters"
                " WHERE category = ? AND service_day = ?",
                category.id,
                day,
            )
            next_number = counter["next_number"] if counter else category.first
            reserved = counter["reserved_upto"] if counter else category.first - 1
            if next_number > category.last:
                raise QuotaExhausted(f"{category.id}: numbers up to {category.last} are used")
            key = (category.id, day)
            # only a synced reservation may cover a number handed out (number_blocks.py)
            must_reserve = next_number > (self.blocks.durable_upto(key) or 0)
            with self._store.transaction(durable=must_reserve) as conn:
                if must_reserve:
                    reserved = max(
                        reserved,
                        min(category.last, next_number + self._settings.number_block - 1),
                    )
                    self.blocks.stats.inline += 1
                conn.execute(
                    "INSERT INTO ticket_counters (category, service_day, next_number,"
                    " reserved_upto) VALUES (?, ?, ?, ?) ON CONFLICT (category, service_day)"
                    " DO UPDATE SET next_number = excluded.next_number,"
                    " reserved_upto = excluded.reserved_upto",
                    (category.id, day, next_number + 1, reserved),
                )
                ticket_id = uuid.uuid4().hex
                label = label_for(category, next_number)
                issued_at = utc_iso(now)
                slot_text = utc_iso(slot_start) if slot_start else None
                conn.execute(
                    "INSERT INTO tickets (id, service_day, category, number, label, priority,"
                    " slot_start, identity_hash, booking_code, device, offline, issued_at,"
                    " received_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?,"
                    " 'waiting')",
                    (
                        ticket_id,
                        day,
                        category.id,
                        next_number,
                        label,
                        priority,
                        slot_text,
                        identity_hash,
                        booking_code,
                        device,
                        issued_at,
                        issued_at,
                    ),
                )
            if must_reserve:
                self.blocks.synced(key, reserved)
            self.blocks.issued(key, next_number, category.last)
            # the row just written, as get() would read it back (tested), without reading it
            tz = self._clock.tz
            ticket = Ticket(
                id=ticket_id,
                label=label,
                category=category.id,
                number=next_number,
                service_day=day,
                priority=priority,
                state="waiting",
                issued_at=from_iso(issued_at).astimezone(tz),
                device=device,
                offline=False,
                identity_hash=identity_hash,
                slot_start=from_iso(slot_text).astimezone(tz) if slot_text else None,
                window=None,
                overtaken=0,
                recalls=0,
            )
            if priority == "normal":
                # a new normal ticket is last in call order: everyone waiting now is called
                # before it (priority tickets may pass it, but only ones issued later), so a
                # count answers without ordering the whole queue on every issue
                ahead = self._waiting_count(category.id, day) - 1
                wait_s = self._wait_estimate_s(ticket, ahead)
            else:
                ahead, wait_s = self._position(ticket)
        log.info("issued %s (%s, %s) to %s", ticket.label, category.id, priority, device)
        return Issued(ticket, ahead, wait_s, reprint=False)

    def _waiting_for_identity(
        self, identity_hash: str | None, day: str, category_id: str
    ) -> Ticket | None:
        if not identity_hash:
            return None
        row = self._store.one(
            "SELECT * FROM tickets WHERE identity_hash = ? AND service_day = ? AND category = ?"
            " AND state IN ('waiting', 'called') ORDER BY issued_at LIMIT 1",
            identity_hash,
            day,
            category_id,
        )
        return _ticket(row, self._clock.tz) if row else None

    def _check_quota(self, category: Category, day: str, now: datetime) -> None:
        if not category.quotas:
            return
        local = now.astimezone(self._clock.tz)
        minute = local.hour * 60 + local.minute
        window = next(
            (q for q in category.quotas if q.minutes()[0] <= minute < q.minutes()[1]), None
        )
        if window is None:
            raise QuotaWindowClosed(f"{category.id}: no quota window at {local:%H:%M}")
        start_m, end_m = window.minutes()
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight + timedelta(minutes=start_m)
        end = midnight + timedelta(minutes=end_m)
        row = self._store.one(
            # a voided ticket was never handed out: its place in the window is free again
            "SELECT COUNT(*) AS n FROM tickets WHERE category = ? AND service_day = ?"
            " AND issued_at >= ? AND issued_at < ? AND state != 'voided'",
            category.id,
            day,
            utc_iso(start),
            utc_iso(end),
        )
        if row is not None and row["n"] >= window.max_tickets:
            raise QuotaExhausted(
                f"{category.id}: {window.max_tickets} tickets for {window.start}-{window.end}"
                " are issued"
            )

    def merge_offline(
        self,
        *,
        ticket_id: str,
        device: str,
        category_id: str,
        number: int,
        issued_at: datetime,
        priority: Priority = "normal",
        identity_hash: str | None = None,
        booking_code: str | None = None,
        slot_start: datetime | None = None,
    ) -> Ticket:
        """A ticket a kiosk issued from its offline range, placed by its issue time (an
        offline check-in's ticket by its booking's slot, like an online one)."""
        category = self.category(category_id)
        if priority not in PRIORITIES:
            raise RequestInvalid(f"unknown priority {priority!r}")
        ranges = [r for r in self._settings.offline_ranges if r.device == device]
        if ranges and not any(r.first <= number <= r.last for r in ranges):
            log.warning("offline ticket %d from %s is outside its offline range", number, device)
        day = self.service_day(issued_at)
        state = "waiting" if day == self.service_day() else "expired"
        now = self._clock.now()
        with self._store.transaction() as conn:
            clash = conn.execute(
                "SELECT id FROM tickets WHERE service_day = ? AND category = ? AND number = ?",
                (day, category.id, number),
            ).fetchone()
            if clash is not None and clash["id"] != ticket_id:
                raise RequestInvalid(
                    f"offline ticket {label_for(category, number)} from {device} clashes with an"
                    " issued ticket (overlapping offline ranges?)"
                )
            conn.execute(
                "INSERT OR IGNORE INTO tickets (id, service_day, category, number, label,"
                " priority, slot_start, identity_hash, booking_code, device, offline, issued_at,"
                " received_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    ticket_id,
                    day,
                    category.id,
                    number,
                    label_for(category, number),
                    priority,
                    utc_iso(slot_start) if slot_start else None,
                    identity_hash,
                    booking_code,
                    device,
                    utc_iso(issued_at),
                    utc_iso(now),
                    state,
                ),
            )
        return self.get(ticket_id)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, ticket_id: str) -> Ticket:
        row = self._store.one("SELECT * FROM tickets WHERE id = ?", ticket_id)
        if row is None:
            raise TicketNotFound(f"no ticket {ticket_id!r}")
        return _ticket(row, self._clock.tz)

    def waiting(self, categories: Sequence[str] | None = None) -> list[Ticket]:
        """Today's waiting tickets of ``categories`` (all when None) in call order."""
        cats = list(categories) if categories else [c.id for c in self._settings.categories]
        marks = ",".join("?" * len(cats))
        rows = self._store.all(
            f"SELECT * FROM tickets WHERE service_day = ? AND state = 'waiting'"  # noqa: S608
            f" AND category IN ({marks})",
            self.service_day(),
            *cats,
        )
        return call_order(
            [_ticket(r, self._clock.tz) for r in rows], self._settings.priority_overtake_max
        )

    def position(self, ticket_id: str) -> tuple[int, int]:
        return self._position(self.get(ticket_id))

    def _position(self, ticket: Ticket) -> tuple[int, int]:
        """People ahead and the estimated wait in seconds, within the ticket's category."""
        if ticket.state != "waiting":
            return 0, 0
        order = self.waiting([ticket.category])
        ahead = next((i for i, t in enumerate(order) if t.id == ticket.id), len(order))
        return ahead, self._wait_estimate_s(ticket, ahead)

    def _wait_estimate_s(self, ticket: Ticket, ahead: int) -> int:
        # service_time_s(category) and _windows(ticket), read together
        since = self._clock.now() - timedelta(seconds=ACTIVE_WINDOW_S)
        service_s, windows = self._estimates.both(
            ticket.category,
            self._settings.service_time_samples,
            self._settings.service_time_default_s,
            utc_iso(since),
        )
        return round(ahead * service_s / max(1, windows))

    def _waiting_count(self, category_id: str, day: str) -> int:
        row = self._store.one(
            "SELECT COUNT(*) AS n FROM tickets WHERE service_day = ? AND category = ?"
            " AND state = 'waiting'",
            day,
            category_id,
        )
        return int(row["n"]) if row else 0

    def service_time_s(self, category_id: str) -> float:
        return self._estimates.service_time_s(
            category_id,
            self._settings.service_time_samples,
            self._settings.service_time_default_s,
        )

    # -- the calling side ------------------------------------------------------------------------

    def current(self, window: int) -> Ticket | None:
        row = self._store.one(
            "SELECT * FROM tickets WHERE window = ? AND state = 'called' AND service_day = ?"
            " ORDER BY called_at DESC LIMIT 1",
            window,
            self.service_day(),
        )
        return _ticket(row, self._clock.tz) if row else None

    def call_next(self, window: int, categories: Sequence[str] | None = None) -> Ticket:
        """Finish the window's current ticket (if any) and call the next one."""
        for category_id in categories or ():
            self.category(category_id)
        now = self._clock.now()
        with self._store.transaction() as conn:
            current = self.current(window)
            if current is not None:
                self._set_state(conn, current.id, "done", now)
            order = self.waiting(categories)
            if not order:
                raise NothingWaiting(f"window {window}: nobody is waiting")
            pick = order[0]
            if pick.priority != "normal":
                # every normal ticket issued before it has now been overtaken once more
                passed = [
                    t.id for t in order if t.priority == "normal" and t.issued_at < pick.issued_at
                ]
                conn.executemany(
                    "UPDATE tickets SET overtaken = overtaken + 1 WHERE id = ?",
                    [(ticket_id,) for ticket_id in passed],
                )
            conn.execute(
                "UPDATE tickets SET state = 'called', window = ?, called_at = ? WHERE id = ?",
                (window, utc_iso(now), pick.id),
            )
        called = self.get(pick.id)
        log.info("window %d calls %s", window, called.label)
        return called

    def recall(self, window: int) -> Ticket:
        current = self.current(window)
        if current is None:
            raise NothingWaiting(f"window {window} has no called ticket")
        with self._store.transaction() as conn:
            conn.execute("UPDATE tickets SET recalls = recalls + 1 WHERE id = ?", (current.id,))
        return replace(current, recalls=current.recalls + 1)

    def skip(self, window: int) -> Ticket:
        """The called applicant did not come (过号)."""
        return self._end_current(window, "skipped")

    def finish(self, window: int) -> Ticket:
        return self._end_current(window, "done")

    def _end_current(self, window: int, state: str) -> Ticket:
        current = self.current(window)
        if current is None:
            raise NothingWaiting(f"window {window} has no called ticket")
        with self._store.transaction() as conn:
            self._set_state(conn, current.id, state, self._clock.now())
        return self.get(current.id)

    @staticmethod
    def _set_state(conn: sqlite3.Connection, ticket_id: str, state: str, at: datetime) -> None:
        conn.execute(
            "UPDATE tickets SET state = ?, finished_at = ? WHERE id = ?",
            (state, utc_iso(at), ticket_id),
        )

    # -- voiding (a ticket nobody holds) ---------------------------------------------------------

    def void(self, ticket_id: str, reason: str, device: str) -> Voided:
        """``device`` says nobody got ``ticket_id`` (e.g. its print failed). A waiting ticket
        becomes ``voided``: it leaves the call order, people ahead and wait estimates, and its
        identity may take a new ticket. Anything else is left as it is (see ``Voided``), so a
        repeated void is harmless. Joins the caller's transaction (an event handler's)."""
        if reason not in VOID_REASONS:
            raise RequestInvalid(f"void reason {reason!r}: one of {', '.join(VOID_REASONS)}")
        now = self._clock.now()
        with self._store.transaction() as conn:
            row = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT OR IGNORE INTO ticket_voids_pending (device, ticket_id, reason,"
                    " received_at) VALUES (?, ?, ?, ?)",
                    (device, ticket_id, reason, utc_iso(now)),
                )
                return Voided("pending", None)
            ticket = _ticket(row, self._clock.tz)
            if ticket.device != device:
                return Voided("other_device", ticket)
            if ticket.state == "voided":
                return Voided("already_voided", ticket)
            if ticket.state == "called":
                return Voided("called", ticket)
            if ticket.state != "waiting":
                return Voided("ended", ticket)
            conn.execute(
                "UPDATE tickets SET state = 'voided', finished_at = ?, void_reason = ?,"
                " voided_by = ? WHERE id = ? AND state = 'waiting'",
                (utc_iso(now), reason, device, ticket_id),
            )
        log.info("voided %s (%s) for %s: %s", ticket.label, ticket.category, device, reason)
        return Voided("voided", replace(ticket, state="voided"))

    def apply_pending_voids(self, ticket_id: str) -> list[tuple[str, Voided]]:
        """Voids that arrived before ``ticket_id`` itself (an offline ticket merged just now):
        applied, and forgotten. Returns (device, outcome) for each."""
        with self._store.transaction() as conn:
            rows = conn.execute(
                "SELECT device, reason FROM ticket_voids_pending WHERE ticket_id = ?"
                " ORDER BY received_at",
                (ticket_id,),
            ).fetchall()
            if not rows:
                return []
            conn.execute("DELETE FROM ticket_voids_pending WHERE ticket_id = ?", (ticket_id,))
            return [(r["device"], self.void(ticket_id, r["reason"], r["device"])) for r in rows]

    def prune_pending_voids(self) -> int:
        cutoff = self._clock.now() - timedelta(seconds=PENDING_VOID_KEEP_S)
        with self._store.transaction() as conn:
            return conn.execute(
                "DELETE FROM ticket_voids_pending WHERE received_at < ?", (utc_iso(cutoff),)
            ).rowcount

    def voided(
        self, categories: Sequence[str] | None = None, day: str | None = None
    ) -> list[VoidedTicket]:
        """The voided tickets of a service day (today when None), latest first."""
        cats = list(categories) if categories else [c.id for c in self._settings.categories]
        marks = ",".join("?" * len(cats))
        rows = self._store.all(
            f"SELECT * FROM tickets WHERE service_day = ? AND state = 'voided'"  # noqa: S608
            f" AND category IN ({marks}) ORDER BY finished_at DESC",
            day or self.service_day(),
            *cats,
        )
        return [
            VoidedTicket(
                ticket=_ticket(r, self._clock.tz),
                reason=r["void_reason"] or "",
                voided_by=r["voided_by"] or "",
                voided_at=from_iso(r["finished_at"]).astimezone(self._clock.tz),
            )
            for r in rows
        ]

    # -- housekeeping ----------------------------------------------------------------------------

    def expire_past_days(self) -> int:
        """Tickets of earlier service days can no longer be called."""
        with self._store.transaction() as conn:
            cur = conn.execute(
                "UPDATE tickets SET state = 'expired' WHERE service_day < ?"
                " AND state IN ('waiting', 'called')",
                (self.service_day(),),
            )
            return cur.rowcount

    def recover_numbers(self) -> None:
        """At the serving process's start: after an unclean stop, skip the rest of every
        reserved block, so no number is ever handed out twice. Only the process that issues
        tickets calls this (not the CLI)."""
        with self._store.transaction(durable=True) as conn:
            clean = conn.execute(
                "SELECT value FROM hall_meta WHERE key = ?", (CLEAN_STOP_KEY,)
            ).fetchone()
            if clean is None or clean["value"] != "1":
                conn.execute(
                    "UPDATE ticket_counters SET next_number = reserved_upto + 1"
                    " WHERE next_number <= reserved_upto"
                )
            conn.execute(
                "INSERT INTO hall_meta (key, value) VALUES (?, '0')"
                " ON CONFLICT (key) DO UPDATE SET value = '0'",
                (CLEAN_STOP_KEY,),
            )
            rows = conn.execute(
                "SELECT category, service_day, reserved_upto FROM ticket_counters"
                " WHERE service_day >= ?",
                (self.service_day(),),
            ).fetchall()
        for r in rows:  # that commit was synced: these reservations are durable
            self.blocks.synced((r["category"], r["service_day"]), r["reserved_upto"])

    def mark_clean_stop(self) -> None:
        with self._store.transaction(durable=True) as conn:
            conn.execute("UPDATE hall_meta SET value = '1' WHERE key = ?", (CLEAN_STOP_KEY,))
