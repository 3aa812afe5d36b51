"""Locker business rules: deposits, pickups, overdue items, staff openings, door accounting.

Runs on lockerd's event loop thread, which owns the database connection. Every physical opening
follows the same three steps (DESIGN §4, "durability before action"):

1. commit the intent (opening row in state ``intent`` + audit ``open_intent``) with an fsync;
2. send the unlock frame on the bus actor;
3. commit the outcome (``acked``/``jammed``/``failed``) and the deposit's new state.

A crash between 1 and 3 leaves an ``intent`` row; ``reconcile`` settles it at the next boot from
what the boards report, and never fires the lock again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from drivers.lockboard.bus import LockBus
from drivers.lockboard.errors import LockboardError
from drivers.lockboard.types import BoardStatus, OpenReply
from hallkiosk.clock import Clock, utc_iso
from locker import passwords
from locker.config import LockerdSettings
from locker.errors import (
    BayFault,
    DoorJammed,
    DoorNotClosed,
    InvalidRequest,
    LockedOut,
    NoFreeBay,
    NoSuchBay,
    NoSuchDeposit,
    WrongPassword,
    WrongState,
)
from locker.events import EventHub
from locker.store import Store, from_iso
from uplink.outbox import Outbox

log = logging.getLogger(__name__)

Purpose = Literal["load", "pickup", "retrieve", "recall", "maintenance"]
DoorState = Literal["open", "closed", "unknown"]
SIZES = ("S", "M", "L")
LIVE_STATES = ("loading", "stored", "picking_up")
# Active alarms on a bay (subject = bay id) that put it out of order: it is never allocated for a
# new load until staff clear it with a successful opening (maintenance.open / open_bay command).
# The queries bind these as "kind IN (?, ?)": change both together.
OUT_OF_ORDER_ALARMS = ("door_jammed", "bay_fault")

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_CASE_RE = re.compile(r"^[A-Za-z0-9-]{4,40}$")
_STAFF_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class Recipient:
    identity_hash: str
    masked_name: str
    masked_id: str = ""

    def check(self) -> None:
        if not _HASH_RE.match(self.identity_hash):
            raise InvalidRequest("identity_hash must be 64 lower-case hex characters")
        if not 1 <= len(self.masked_name) <= 32 or "*" not in self.masked_name:
            raise InvalidRequest("masked_name must be a masked name such as 张*三")
        if self.masked_id and (len(self.masked_id) != 18 or "*" not in self.masked_id):
            raise InvalidRequest("masked_id must be a masked ID such as 3301**********1234")


@dataclass
class _Expectation:
    """A commanded opening the door watch should see within the jam window."""

    opening_id: int
    deadline_mono: float
    confirmed: asyncio.Future[bool]
    # bus monotonic time the unlock frame went out; None while it is still queued
    sent_at: float | None = None

    def judges(self, reading_taken_at: float) -> bool:
        """Only a reading taken after the unlock frame can confirm (or contradict) it."""
        return self.sent_at is not None and reading_taken_at >= self.sent_at


def check_staff(staff_id: str) -> None:
    if not _STAFF_RE.match(staff_id):
        raise InvalidRequest("staff_id must be 1-32 letters, digits, '_', '.' or '-'")


class LockerService:
    def __init__(
        self,
        settings: LockerdSettings,
        store: Store,
        buses: dict[str, LockBus],
        clock: Clock,
        events: EventHub,
        *,
        outbox: Outbox | None = None,
        hash_password: Callable[[str], str] | None = None,
        seal_password: Callable[[str, str], str] | None = None,
    ) -> None:
        self.settings = settings
        # (password, "device/deposit_id") -> sealed box for the hall (uplink/sealing.py)
        self._seal_password = seal_password
        self.cfg = settings.lockerd
        self.store = store
        self.buses = buses
        self.clock = clock
        self.events = events
        # the hall's copy of every event, written in the same transaction (None: nobody listens)
        self.outbox = outbox
        cost = passwords.ScryptCost(
            self.cfg.pickup.scrypt_n, self.cfg.pickup.scrypt_r, self.cfg.pickup.scrypt_p
        )
        self._hash_password = hash_password or (lambda pw: passwords.hash_password(pw, cost))
        self._expect: dict[str, _Expectation] = {}
        self._open_since: dict[str, float] = {}
        self._left_open_alarmed: set[str] = set()
        self._pending: list[tuple[str, dict[str, Any]]] | None = None

    # -- small helpers ---------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[None]:
        """A store transaction whose events are published, in order, only after it commits."""
        outer = self._pending is None
        if outer:
            self._pending = []
        try:
            with self.store.transaction(durable=durable):
                yield
        except BaseException:
            if outer:
                self._pending = None
            raise
        if outer:
            pending, self._pending = self._pending or [], None
            for event_type, fields in pending:
                self.events.publish(event_type, **fields)

    def _emit(self, event_type: str, **fields: Any) -> None:
        """Record an event for the hall in the current transaction (so it exists exactly when
        the business change does) and queue it for local subscribers until the commit."""
        if self._pending is None:
            # every business change happens in a transaction; an event outside one is a bug
            raise RuntimeError(f"event {event_type!r} emitted outside a transaction")
        if self.outbox is not None:
            self.outbox.append_in(self.store.conn, event_type, fields)
        self._pending.append((event_type, fields))

    def _now(self) -> datetime:
        return self.clock.now()

    def _bay(self, bay_id: str) -> Any:
        row = self.store.one("SELECT * FROM bays WHERE id = ?", bay_id)
        if row is None:
            raise NoSuchBay(f"no bay {bay_id!r}")
        return row

    def _deposit(self, deposit_id: int) -> Any:
        row = self.store.one("SELECT * FROM deposits WHERE id = ?", deposit_id)
        if row is None:
            raise NoSuchDeposit(f"no deposit {deposit_id}")
        return row

    def raise_alarm(self, kind: str, subject: str, **detail: Any) -> None:
        """Record an alarm once while it is active; callers hold a transaction."""
        now = self._now()
        cur = self.store.conn.execute(
            "INSERT OR IGNORE INTO alarms (kind, subject, raised_at, detail) VALUES (?, ?, ?, ?)",
            (kind, subject, utc_iso(now), _json(detail)),
        )
        if cur.rowcount:
            self.store.audit(
                now,
                "alarm",
                bay_id=detail.get("bay_id"),
                alarm=kind,
                subject=subject,
                **{k: v for k, v in detail.items() if k != "bay_id"},
            )
            log.warning("alarm %s on %s: %s", kind, subject, detail)
            self._emit("alarm", alarm=kind, subject=subject, active=True, **detail)

    def clear_alarm(self, kind: str, subject: str) -> None:
        now = self._now()
        cur = self.store.conn.execute(
            "UPDATE alarms SET cleared_at = ? WHERE kind = ? AND subject = ?"
            " AND cleared_at IS NULL",
            (utc_iso(now), kind, subject),
        )
        if cur.rowcount:
            self.store.audit(now, "alarm_cleared", alarm=kind, subject=subject)
            self._emit("alarm", alarm=kind, subject=subject, active=False)

    # -- bays ------------------------------------------------------------------------------

    def sync_bays(self) -> None:
        """Make the bays table match the configured wiring; keep runtime state (enabled, door)."""
        now = self._now()
        with self._tx():
            configured = {b.id for b in self.cfg.bays}
            for bay in self.cfg.bays:
                self.store.conn.execute(
                    "INSERT INTO bays (id, size, bus, board, channel) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET size = excluded.size, bus = excluded.bus,"
                    " board = excluded.board, channel = excluded.channel, in_config = 1",
                    (bay.id, bay.size, bay.bus, bay.board, bay.channel),
                )
            for row in self.store.all("SELECT id FROM bays WHERE in_config = 1"):
                if row["id"] not in configured:
                    self.store.conn.execute(
                        "UPDATE bays SET in_config = 0 WHERE id = ?", (row["id"],)
                    )
                    live = self.store.one(
                        "SELECT id FROM deposits WHERE bay_id = ? AND state IN (?, ?, ?)",
                        row["id"],
                        *LIVE_STATES,
                    )
                    self.store.audit(now, "bay_removed_from_config", bay_id=row["id"])
                    if live is not None:
                        self.raise_alarm(
                            "bay_removed_with_deposit",
                            row["id"],
                            bay_id=row["id"],
                            deposit_id=live["id"],
                        )

    def bays_on(self, bus: str, board: int) -> list[Any]:
        return self.store.all(
            "SELECT * FROM bays WHERE in_config = 1 AND bus = ? AND board = ? ORDER BY channel",
            bus,
            board,
        )

    def boards(self) -> list[tuple[str, int]]:
        rows = self.store.all(
            "SELECT DISTINCT bus, board FROM bays WHERE in_config = 1 ORDER BY bus, board"
        )
        return [(r["bus"], r["board"]) for r in rows]

    def set_bay_enabled(
        self, staff_id: str, bay_id: str, enabled: bool, reason: str = ""
    ) -> dict[str, Any]:
        check_staff(staff_id)
        self._bay(bay_id)
        with self._tx():
            self.store.conn.execute(
                "UPDATE bays SET enabled = ?, disabled_reason = ? WHERE id = ?",
                (int(enabled), None if enabled else (reason or "disabled by staff"), bay_id),
            )
            self.store.audit(
                self._now(),
                "bay_enabled" if enabled else "bay_disabled",
                bay_id=bay_id,
                actor=staff_id,
                reason=reason,
            )
            self._emit("bay", bay_id=bay_id, enabled=enabled, actor=staff_id, reason=reason)
        return {"bay_id": bay_id, "enabled": enabled}

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        bays = []
        # at most one live deposit per bay (a unique index), so the join keeps one row per bay
        rows = self.store.all(
            "SELECT b.*, d.id AS deposit_id, d.state AS deposit_state FROM bays b"
            " LEFT JOIN deposits d ON d.bay_id = b.id AND d.state IN (?, ?, ?)"
            " WHERE b.in_config = 1 ORDER BY b.id",
            *LIVE_STATES,
        )
        faults = self._out_of_order()
        for row in rows:
            bays.append(
                {
                    "bay_id": row["id"],
                    "size": row["size"],
                    "bus": row["bus"],
                    "board": row["board"],
                    "channel": row["channel"],
                    "enabled": bool(row["enabled"]),
                    "disabled_reason": row["disabled_reason"],
                    # an uncleared jam or fault: not allocated until a successful opening
                    "out_of_order": faults.get(row["id"]),
                    "door": row["door"],
                    # an unlock sent but its door not yet seen open: not free for a new load
                    "opening_in_flight": row["id"] in self._expect,
                    "occupied": row["deposit_id"] is not None,
                    "deposit_id": row["deposit_id"],
                    "deposit_state": row["deposit_state"],
                }
            )
        alarms = [
            {
                "alarm": r["kind"],
                "subject": r["subject"],
                "raised_at": r["raised_at"],
                "detail": _unjson(r["detail"]),
            }
            for r in self.store.all("SELECT * FROM alarms WHERE cleared_at IS NULL ORDER BY id")
        ]
        return {
            "device_id": self.settings.site.device_id,
            "now": self._now().isoformat(),
            "bays": bays,
            "alarms": alarms,
        }

    def metrics(self) -> dict[str, Any]:
        """The locker's part of a telemetry snapshot (docs/mqtt.md "Telemetry")."""
        bays = self.status()["bays"]
        offline = {
            row["subject"]
            for row in self.store.all(
                "SELECT subject FROM alarms WHERE kind = 'board_offline' AND cleared_at IS NULL"
            )
        }
        boards = self.boards()
        return {
            "bays_total": len(bays),
            "bays_occupied": sum(b["occupied"] for b in bays),
            "bays_disabled": sum(not b["enabled"] for b in bays),
            "bays_out_of_order": sum(b["out_of_order"] is not None for b in bays),
            "doors_open": sum(b["door"] == "open" for b in bays),
            "door_states": {b["bay_id"]: b["door"] for b in bays},
            "boards_total": len(boards),
            "boards_replying": sum(f"{bus}/{board}" not in offline for bus, board in boards),
            "alarms_active": len(self.store.all("SELECT id FROM alarms WHERE cleared_at IS NULL")),
        }

    # -- deposits --------------------------------------------------------------------------

    async def deposit_start(
        self,
        staff_id: str,
        case_number: str,
        recipient: Recipient,
        size: str,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Pick a free bay of that size (or larger), open it for loading."""
        check_staff(staff_id)
        recipient.check()
        if not _CASE_RE.match(case_number):
            raise InvalidRequest("case_number must be 4-40 letters, digits or '-'")
        if size not in SIZES:
            raise InvalidRequest("size must be S, M or L")
        if request_id is not None:
            existing = self.store.one("SELECT * FROM deposits WHERE request_id = ?", request_id)
            if existing is not None:
                return await self._resume_start(existing, staff_id)
        now = self._now()
        with self._tx():
            bay = self._free_bay(size)
            cur = self.store.conn.execute(
                "INSERT INTO deposits (request_id, bay_id, state, case_number, staff_id,"
                " recipient_hash, recipient_masked_name, recipient_masked_id, created_at)"
                " VALUES (?, ?, 'loading', ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    bay["id"],
                    case_number,
                    staff_id,
                    recipient.identity_hash,
                    recipient.masked_name,
                    recipient.masked_id,
                    utc_iso(now),
                ),
            )
            deposit_id = int(cur.lastrowid or 0)
            self.store.audit(
                now,
                "deposit_started",
                bay_id=bay["id"],
                deposit_id=deposit_id,
                actor=staff_id,
                case_number=case_number,
                recipient=recipient.masked_name,
                size=bay["size"],
            )
            opening_id = self._intent(bay["id"], deposit_id, "load", staff_id, request_id)
        opened = await self._actuate_or_raise(opening_id, bay, deposit_id, "load")
        return {
            "deposit_id": deposit_id,
            "bay_id": bay["id"],
            "size": bay["size"],
            "opened": opened,
        }

    async def _resume_start(self, deposit: Any, staff_id: str) -> dict[str, Any]:
        """A repeated deposit.start (lost reply, daemon restart): never a second deposit."""
        bay = self._bay(deposit["bay_id"])
        if deposit["state"] != "loading":
            return {
                "deposit_id": deposit["id"],
                "bay_id": bay["id"],
                "size": bay["size"],
                "opened": deposit["state"] != "cancelled",
                "state": deposit["state"],
            }
        last = self.store.one(
            "SELECT * FROM openings WHERE deposit_id = ? ORDER BY id DESC", deposit["id"]
        )
        if last is not None and last["state"] in ("acked", "opened"):
            return {
                "deposit_id": deposit["id"],
                "bay_id": bay["id"],
                "size": bay["size"],
                "opened": True,
            }
        with self._tx():
            opening_id = self._intent(bay["id"], deposit["id"], "load", staff_id, None)
        opened = await self._actuate_or_raise(opening_id, bay, deposit["id"], "load")
        return {
            "deposit_id": deposit["id"],
            "bay_id": bay["id"],
            "size": bay["size"],
            "opened": opened,
        }

    def _out_of_order(self) -> dict[str, str]:
        """Bay id -> the active alarm that puts it out of order (the first raised)."""
        rows = self.store.all(
            "SELECT kind, subject FROM alarms WHERE cleared_at IS NULL AND kind IN (?, ?)"
            " ORDER BY id",
            *OUT_OF_ORDER_ALARMS,
        )
        faults: dict[str, str] = {}
        for row in rows:
            faults.setdefault(row["subject"], row["kind"])
        return faults

    def _free_bay(self, size: str) -> Any:
        wanted = SIZES[SIZES.index(size) :]
        for candidate in wanted:
            # not: disabled, occupied, not seen closed, or out of order (an uncleared jam/fault)
            rows = self.store.all(
                "SELECT b.* FROM bays b WHERE b.in_config = 1 AND b.enabled = 1 AND b.size = ?"
                " AND b.door = 'closed' AND NOT EXISTS (SELECT 1 FROM deposits d"
                " WHERE d.bay_id = b.id AND d.state IN ('loading', 'stored', 'picking_up'))"
                " AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.subject = b.id"
                " AND a.cleared_at IS NULL AND a.kind IN (?, ?))"
                " ORDER BY b.id",
                candidate,
                *OUT_OF_ORDER_ALARMS,
            )
            for row in rows:
                # an opening still in flight (door not yet seen open) may leave the cached
                # "closed" stale: that bay is not free yet
                if row["id"] not in self._expect:
                    return row
        raise NoFreeBay(f"no free, enabled, closed bay in order of size {size} or larger")

    async def deposit_confirm(self, staff_id: str, deposit_id: int) -> dict[str, Any]:
        """The item is in and the door is shut: store it, return the password once."""
        check_staff(staff_id)
        deposit = self._deposit(deposit_id)
        if deposit["state"] != "loading":
            raise WrongState(f"deposit {deposit_id} is {deposit['state']}, not loading")
        bay = self._bay(deposit["bay_id"])
        door = await self._read_door_now(bay)
        if door != "closed":
            raise DoorNotClosed(f"bay {bay['id']} door is {door}")
        password = passwords.generate()
        password_hash = await asyncio.to_thread(self._hash_password, password)
        now = self._now()
        deadline = _end_of_day(now + timedelta(days=self.cfg.pickup.deadline_days))
        with self._tx():
            current = self._deposit(deposit_id)
            if current["state"] != "loading":
                raise WrongState(f"deposit {deposit_id} is {current['state']}, not loading")
            self.store.conn.execute(
                "UPDATE deposits SET state = 'stored', password_hash = ?, stored_at = ?,"
                " deadline_at = ?, wrong_attempts = 0, locked_until = NULL WHERE id = ?",
                (password_hash, utc_iso(now), utc_iso(deadline), deposit_id),
            )
            self.store.audit(
                now,
                "deposit_stored",
                bay_id=bay["id"],
                deposit_id=deposit_id,
                actor=staff_id,
                deadline=deadline.isoformat(),
            )
            self._emit(
                "deposit_stored",
                deposit_id=deposit_id,
                bay_id=bay["id"],
                case_number=deposit["case_number"],
                recipient=deposit["recipient_masked_name"],
                deadline=deadline.isoformat(),
                **self._sealed(password, deposit_id),
            )
        return {
            "deposit_id": deposit_id,
            "bay_id": bay["id"],
            "password": password,
            "deadline": deadline.isoformat(),
        }

    def deposit_cancel(self, staff_id: str, deposit_id: int) -> dict[str, Any]:
        """Staff gave up a load before confirming (the item was taken back out)."""
        check_staff(staff_id)
        with self._tx():
            deposit = self._deposit(deposit_id)
            if deposit["state"] != "loading":
                raise WrongState(f"deposit {deposit_id} is {deposit['state']}, not loading")
            self._close_deposit(deposit_id, "cancelled")
            self.store.audit(
                self._now(),
                "deposit_cancelled",
                bay_id=deposit["bay_id"],
                deposit_id=deposit_id,
                actor=staff_id,
            )
        return {"deposit_id": deposit_id, "state": "cancelled"}

    async def reissue_password(self, staff_id: str, deposit_id: int) -> dict[str, Any]:
        """A new code when the SMS never arrived, or for an applicant locked out after wrong
        codes: the old one stops working, and both the deposit's lockout and its recipient's
        card lockout (``identity_lockouts``) are lifted, each audited."""
        check_staff(staff_id)
        deposit = self._deposit(deposit_id)
        if deposit["state"] != "stored":
            raise WrongState(f"deposit {deposit_id} is {deposit['state']}, not stored")
        password = passwords.generate()
        password_hash = await asyncio.to_thread(self._hash_password, password)
        now = self._now()
        with self._tx():
            cur = self.store.conn.execute(
                "UPDATE deposits SET password_hash = ?, wrong_attempts = 0, locked_until = NULL"
                " WHERE id = ? AND state = 'stored'",
                (password_hash, deposit_id),
            )
            if not cur.rowcount:  # picked up or recalled while the new code was hashed
                current = self._deposit(deposit_id)
                raise WrongState(f"deposit {deposit_id} is {current['state']}, not stored")
            self.store.audit(
                now,
                "password_reissued",
                bay_id=deposit["bay_id"],
                deposit_id=deposit_id,
                actor=staff_id,
            )
            self._clear_identity_lockout(deposit, staff_id, now)
            self.clear_alarm("pickup_lockout", f"deposit:{deposit_id}")
            self._emit(
                "password_reissued",
                deposit_id=deposit_id,
                bay_id=deposit["bay_id"],
                case_number=deposit["case_number"],
                deadline=from_iso(deposit["deadline_at"]).astimezone(self.clock.tz).isoformat()
                if deposit["deadline_at"]
                else "",
                **self._sealed(password, deposit_id),
            )
        return {"deposit_id": deposit_id, "password": password}

    def _clear_identity_lockout(self, deposit: Any, staff_id: str, now: datetime) -> None:
        """Lift the card lockout and wrong-attempt count of the deposit's recipient (in the
        caller's transaction); audited only when there was something to lift."""
        identity_hash = deposit["recipient_hash"]
        row = self.store.one(
            "SELECT wrong_attempts, locked_until FROM identity_lockouts WHERE identity_hash = ?",
            identity_hash,
        )
        if row is None or (not row["wrong_attempts"] and not row["locked_until"]):
            return
        self.store.conn.execute(
            "UPDATE identity_lockouts SET wrong_attempts = 0, locked_until = NULL"
            " WHERE identity_hash = ?",
            (identity_hash,),
        )
        locked = bool(row["locked_until"]) and from_iso(row["locked_until"]) > now
        self.store.audit(
            now,
            "identity_lockout_cleared",
            bay_id=deposit["bay_id"],
            deposit_id=deposit["id"],
            actor=staff_id,
            reason="password_reissued",
            was_locked_until=(
                from_iso(row["locked_until"]).astimezone(self.clock.tz).isoformat()
                if locked
                else None
            ),
            wrong_attempts=row["wrong_attempts"],
            identity=identity_hash[:12],
        )

    def _sealed(self, password: str, deposit_id: int) -> dict[str, str]:
        """The password sealed to the hall's key, bound to this deposit; nothing without a key."""
        if self._seal_password is None:
            return {}
        associated = f"{self.settings.site.device_id}/{deposit_id}"
        return {"password_sealed": self._seal_password(password, associated)}

    def deposits_for(self, identity_hash: str) -> list[dict[str, Any]]:
        if not _HASH_RE.match(identity_hash):
            raise InvalidRequest("identity_hash must be 64 lower-case hex characters")
        now = self._now()
        rows = self.store.all(
            "SELECT d.*, b.size FROM deposits d JOIN bays b ON b.id = d.bay_id"
            " WHERE d.recipient_hash = ? AND d.state = 'stored' ORDER BY d.id",
            identity_hash,
        )
        return [self._public_deposit(r, now) for r in rows]

    def _public_deposit(self, row: Any, now: datetime) -> dict[str, Any]:
        deadline = from_iso(row["deadline_at"]) if row["deadline_at"] else None
        return {
            "deposit_id": row["id"],
            "bay_id": row["bay_id"],
            "state": row["state"],
            "case_number": row["case_number"],
            "recipient": row["recipient_masked_name"],
            "recipient_id": row["recipient_masked_id"],
            "stored_at": (
                from_iso(row["stored_at"]).astimezone(self.clock.tz).isoformat()
                if row["stored_at"]
                else None
            ),
            "deadline": deadline.astimezone(self.clock.tz).isoformat() if deadline else None,
            "overdue": bool(deadline and deadline < now),
        }

    def overdue(self) -> list[dict[str, Any]]:
        now = self._now()
        rows = self.store.all(
            "SELECT * FROM deposits WHERE state = 'stored' AND deadline_at < ?"
            " ORDER BY deadline_at",
            utc_iso(now),
        )
        return [self._public_deposit(r, now) for r in rows]

    def report_overdue(self) -> int:
        """Record, once per deposit, that its pickup deadline passed: an audit row and a
        ``deposit_overdue`` event for the hall (which sends the reminder and plans the return).
        Returns how many deposits became overdue now."""
        now = self._now()
        with self._tx(durable=False):
            rows = self.store.all(
                "SELECT * FROM deposits WHERE state = 'stored' AND deadline_at < ?"
                " AND overdue_reported_at IS NULL ORDER BY deadline_at",
                utc_iso(now),
            )
            for row in rows:
                self.store.conn.execute(
                    "UPDATE deposits SET overdue_reported_at = ? WHERE id = ?",
                    (utc_iso(now), row["id"]),
                )
                self.store.audit(
                    now,
                    "deposit_overdue",
                    bay_id=row["bay_id"],
                    deposit_id=row["id"],
                    deadline=row["deadline_at"],
                )
                self._emit(
                    "deposit_overdue",
                    deposit_id=row["id"],
                    bay_id=row["bay_id"],
                    case_number=row["case_number"],
                    recipient=row["recipient_masked_name"],
                    deadline=from_iso(row["deadline_at"]).astimezone(self.clock.tz).isoformat(),
                )
        return len(rows)

    # -- pickup ----------------------------------------------------------------------------

    async def pickup(
        self,
        identity_hash: str,
        password: str,
        deposit_id: int | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        if not _HASH_RE.match(identity_hash):
            raise InvalidRequest("identity_hash must be 64 lower-case hex characters")
        if request_id is not None:
            done = self.store.one(
                "SELECT * FROM openings WHERE request_id = ? AND purpose = 'pickup'"
                " AND state IN ('acked', 'opened') ORDER BY id DESC",
                request_id,
            )
            if done is not None:  # a retried call after a lost reply: report, never re-open
                return {
                    "deposit_id": done["deposit_id"],
                    "bay_id": done["bay_id"],
                    "opened": True,
                    "repeated": True,
                }
        now = self._now()
        self._check_identity_lock(identity_hash, now)
        deposit = self._pick_deposit(identity_hash, deposit_id, now)
        locked_until = deposit["locked_until"]
        if locked_until and from_iso(locked_until) > now:
            self._refuse(deposit, identity_hash, "locked_out")
            raise LockedOut(from_iso(locked_until).astimezone(self.clock.tz))
        if deposit["deadline_at"] and from_iso(deposit["deadline_at"]) < now:
            self._refuse(deposit, identity_hash, "overdue")
            raise WrongState(
                "deposit is past its pickup deadline",
                code="overdue",
                message_zh="取件已超过期限，物品已转交窗口保管，请在工作时间到取件窗口领取。",
                message_en="The pickup deadline has passed. Please collect the item at the "
                "pickup window during office hours.",
            )
        if not passwords.is_well_formed(password):
            raise InvalidRequest(
                "the pickup password has 6 digits",
                code="password_format",
                message_zh="取件密码为6位数字。",
                message_en="The pickup password has 6 digits.",
            )
        ok = await asyncio.to_thread(passwords.verify, password, deposit["password_hash"] or "")
        if not ok:
            self._wrong_password(deposit, identity_hash)  # raises
        with self._tx():
            current = self._deposit(deposit["id"])
            if current["state"] != "stored":
                raise WrongState(f"deposit {deposit['id']} is {current['state']}")
            self.store.conn.execute(
                "UPDATE deposits SET state = 'picking_up', wrong_attempts = 0, locked_until = NULL"
                " WHERE id = ?",
                (deposit["id"],),
            )
            self.store.conn.execute(
                "UPDATE identity_lockouts SET wrong_attempts = 0, locked_until = NULL"
                " WHERE identity_hash = ?",
                (identity_hash,),
            )
            opening_id = self._intent(
                deposit["bay_id"], deposit["id"], "pickup", "applicant", request_id
            )
        bay = self._bay(deposit["bay_id"])
        opened = await self._actuate_or_raise(opening_id, bay, deposit["id"], "pickup")
        return {"deposit_id": deposit["id"], "bay_id": bay["id"], "opened": opened}

    def _check_identity_lock(self, identity_hash: str, now: datetime) -> None:
        row = self.store.one(
            "SELECT * FROM identity_lockouts WHERE identity_hash = ?", identity_hash
        )
        if row is not None and row["locked_until"] and from_iso(row["locked_until"]) > now:
            with self._tx(durable=False):
                self.store.audit(
                    now,
                    "pickup_refused",
                    actor="applicant",
                    reason="locked_out",
                    identity=identity_hash[:12],
                )
            raise LockedOut(from_iso(row["locked_until"]).astimezone(self.clock.tz))

    def _pick_deposit(self, identity_hash: str, deposit_id: int | None, now: datetime) -> Any:
        rows = self.store.all(
            "SELECT * FROM deposits WHERE recipient_hash = ? AND state = 'stored' ORDER BY id",
            identity_hash,
        )
        chosen = [r for r in rows if deposit_id is None or r["id"] == deposit_id]
        if len(chosen) == 1:
            return chosen[0]
        if not chosen:
            with self._tx(durable=False):
                self.store.audit(
                    now,
                    "pickup_refused",
                    deposit_id=deposit_id,
                    actor="applicant",
                    reason="no_such_deposit",
                    identity=identity_hash[:12],
                )
            raise NoSuchDeposit("no stored deposit for this identity")
        raise InvalidRequest(
            "this identity has several deposits: give deposit_id",
            code="choose_deposit",
            message_zh="您有多件待取物品，请选择要取的一件。",
            message_en="You have several items waiting. Please choose one.",
        )

    def _refuse(self, deposit: Any, identity_hash: str, reason: str) -> None:
        with self._tx(durable=False):
            self.store.audit(
                self._now(),
                "pickup_refused",
                bay_id=deposit["bay_id"],
                deposit_id=deposit["id"],
                actor="applicant",
                reason=reason,
                identity=identity_hash[:12],
            )

    def _wrong_password(self, deposit: Any, identity_hash: str) -> None:
        pickup_cfg = self.cfg.pickup
        now = self._now()
        with self._tx():
            self.store.conn.execute(
                "INSERT INTO identity_lockouts (identity_hash, wrong_attempts) VALUES (?, 1)"
                " ON CONFLICT(identity_hash) DO UPDATE SET wrong_attempts = wrong_attempts + 1,"
                " locked_until = NULL",
                (identity_hash,),
            )
            self.store.conn.execute(
                "UPDATE deposits SET wrong_attempts = wrong_attempts + 1, locked_until = NULL"
                " WHERE id = ?",
                (deposit["id"],),
            )
            dep_wrong = self._deposit(deposit["id"])["wrong_attempts"]
            id_row = self.store.one(
                "SELECT wrong_attempts FROM identity_lockouts WHERE identity_hash = ?",
                identity_hash,
            )
            id_wrong = id_row["wrong_attempts"] if id_row else 0
            left = pickup_cfg.max_wrong_attempts - max(dep_wrong, id_wrong)
            self.store.audit(
                now,
                "pickup_refused",
                bay_id=deposit["bay_id"],
                deposit_id=deposit["id"],
                actor="applicant",
                reason="wrong_password",
                attempts_left=max(left, 0),
                identity=identity_hash[:12],
            )
            if left > 0:
                locked_until = None
            else:
                locked_until = now + timedelta(seconds=pickup_cfg.lockout_s)
                until = utc_iso(locked_until)
                # counters restart after the lockout, so a locked-out applicant gets full tries
                self.store.conn.execute(
                    "UPDATE deposits SET locked_until = ?, wrong_attempts = 0 WHERE id = ?",
                    (until, deposit["id"]),
                )
                self.store.conn.execute(
                    "UPDATE identity_lockouts SET locked_until = ?, wrong_attempts = 0"
                    " WHERE identity_hash = ?",
                    (until, identity_hash),
                )
                self.raise_alarm(
                    "pickup_lockout",
                    f"deposit:{deposit['id']}",
                    bay_id=deposit["bay_id"],
                    deposit_id=deposit["id"],
                    until=locked_until.isoformat(),
                )
        if locked_until is not None:
            raise LockedOut(locked_until.astimezone(self.clock.tz))
        raise WrongPassword(left)

    # -- staff openings --------------------------------------------------------------------

    async def retrieve(self, staff_id: str, deposit_id: int) -> dict[str, Any]:
        """Staff take an overdue item back to the window."""
        check_staff(staff_id)
        deposit = self._deposit(deposit_id)
        if deposit["state"] != "stored":
            raise WrongState(f"deposit {deposit_id} is {deposit['state']}, not stored")
        if not deposit["deadline_at"] or from_iso(deposit["deadline_at"]) >= self._now():
            raise WrongState(f"deposit {deposit_id} is not overdue yet", code="not_overdue")
        return await self._staff_open(staff_id, deposit, "retrieve")

    async def recall(self, staff_id: str, deposit_id: int, reason: str = "") -> dict[str, Any]:
        """Staff remove a wrongly loaded item (before or after it was stored)."""
        check_staff(staff_id)
        deposit = self._deposit(deposit_id)
        if deposit["state"] not in ("loading", "stored"):
            raise WrongState(f"deposit {deposit_id} is {deposit['state']}")
        return await self._staff_open(staff_id, deposit, "recall", reason=reason)

    async def _staff_open(
        self, staff_id: str, deposit: Any, purpose: Purpose, **detail: Any
    ) -> dict[str, Any]:
        bay = self._bay(deposit["bay_id"])
        with self._tx():
            opening_id = self._intent(bay["id"], deposit["id"], purpose, staff_id, None, **detail)
        opened = await self._actuate_or_raise(opening_id, bay, deposit["id"], purpose)
        return {"deposit_id": deposit["id"], "bay_id": bay["id"], "opened": opened}

    async def maintenance_open(
        self, staff_id: str, bay_id: str, reason: str, request_id: str | None = None
    ) -> dict[str, Any]:
        check_staff(staff_id)
        if not reason.strip():
            raise InvalidRequest("a maintenance opening needs a reason")
        bay = self._bay(bay_id)
        if request_id is not None:
            done = self.store.one(
                "SELECT * FROM openings WHERE request_id = ? AND purpose = 'maintenance'"
                " ORDER BY id DESC",
                request_id,
            )
            if done is not None and done["state"] != "interrupted":
                return {
                    "bay_id": bay_id,
                    "opened": done["state"] in ("acked", "opened"),
                    "repeated": True,
                    "state": done["state"],
                }
        with self._tx():
            opening_id = self._intent(
                bay_id, None, "maintenance", staff_id, request_id, reason=reason
            )
        opened = await self._actuate_or_raise(opening_id, bay, None, "maintenance")
        return {"bay_id": bay_id, "opened": opened}

    # -- the three steps of an opening -----------------------------------------------------

    def _intent(
        self,
        bay_id: str,
        deposit_id: int | None,
        purpose: Purpose,
        actor: str,
        request_id: str | None,
        **detail: Any,
    ) -> int:
        """Step 1, inside the caller's durable transaction."""
        now = self._now()
        cur = self.store.conn.execute(
            "INSERT INTO openings (bay_id, deposit_id, purpose, actor, request_id, state,"
            " created_at, detail) VALUES (?, ?, ?, ?, ?, 'intent', ?, ?)",
            (bay_id, deposit_id, purpose, actor, request_id, utc_iso(now), _json(detail)),
        )
        opening_id = int(cur.lastrowid or 0)
        self.store.audit(
            now,
            "open_intent",
            bay_id=bay_id,
            deposit_id=deposit_id,
            opening_id=opening_id,
            actor=actor,
            purpose=purpose,
            **detail,
        )
        return opening_id

    async def _actuate_or_raise(
        self, opening_id: int, bay: Any, deposit_id: int | None, purpose: Purpose
    ) -> bool:
        """Steps 2 and 3. Returns True once the lock is confirmed open; raises otherwise."""
        bus = self.buses[bay["bus"]]
        loop = asyncio.get_running_loop()
        expectation = _Expectation(
            opening_id,
            self.clock.monotonic() + self.cfg.door_watch.jam_window_s,
            loop.create_future(),
        )
        self._expect[bay["id"]] = expectation
        submitted_at = time.monotonic()
        try:
            reply: OpenReply = await asyncio.wrap_future(
                bus.submit_open(bay["board"], bay["channel"])
            )
        except LockboardError as exc:
            # the frame may have gone out: readings after the submission can still confirm it
            expectation.sent_at = submitted_at
            self._finish(opening_id, bay, deposit_id, purpose, "failed", error=str(exc))
            raise BayFault(str(exc)) from exc
        expectation.sent_at = reply.sent_at
        if reply.latch_open is None:
            # No feedback in the reply: the door watch must see the door open in the window.
            timeout_s = max(0.0, expectation.deadline_mono - self.clock.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(expectation.confirmed), timeout_s)
            if expectation.confirmed.done():
                self._finish(opening_id, bay, deposit_id, purpose, "opened", via="door_watch")
                return True
            self._finish(opening_id, bay, deposit_id, purpose, "jammed", via="door_watch")
            raise DoorJammed(f"bay {bay['id']}: door not seen open within the jam window")
        if not reply.latch_open:
            self._finish(opening_id, bay, deposit_id, purpose, "jammed", via="reply")
            raise DoorJammed(f"bay {bay['id']}: board reports the lock still closed")
        self._finish(
            opening_id,
            bay,
            deposit_id,
            purpose,
            "acked",
            via="status" if reply.confirmed_by_status else "reply",
        )
        return True

    def _finish(
        self,
        opening_id: int,
        bay: Any,
        deposit_id: int | None,
        purpose: Purpose,
        outcome: str,
        **detail: Any,
    ) -> None:
        """Step 3: record the outcome and move the deposit on (or back)."""
        now = self._now()
        if outcome == "jammed":
            # a jam is certain, so stop expecting the door; a "failed" frame may still have
            # reached the board, so that expectation stays for the rest of the jam window
            self._expect.pop(bay["id"], None)
        with self._tx(durable=False):
            row = self.store.one("SELECT state FROM openings WHERE id = ?", opening_id)
            if row is not None and row["state"] == "opened":
                # the door watch saw the door open first and recorded the outcome then
                self.clear_alarm("door_jammed", bay["id"])
                self.clear_alarm("bay_fault", bay["id"])
                return
            self.store.conn.execute(
                "UPDATE openings SET state = ?, finished_at = ? WHERE id = ?",
                (outcome, utc_iso(now), opening_id),
            )
            self.store.audit(
                now,
                "open_result",
                bay_id=bay["id"],
                deposit_id=deposit_id,
                opening_id=opening_id,
                purpose=purpose,
                outcome=outcome,
                **detail,
            )
            if deposit_id is not None:
                self._settle_deposit(deposit_id, purpose, outcome)
            if outcome == "jammed":
                self.raise_alarm("door_jammed", bay["id"], bay_id=bay["id"], opening_id=opening_id)
            elif outcome == "failed":
                self.raise_alarm(
                    "bay_fault",
                    bay["id"],
                    bay_id=bay["id"],
                    opening_id=opening_id,
                    error=detail.get("error", ""),
                )
            else:
                self.clear_alarm("door_jammed", bay["id"])
                self.clear_alarm("bay_fault", bay["id"])
            self._emit(
                "opening",
                opening_id=opening_id,
                bay_id=bay["id"],
                deposit_id=deposit_id,
                purpose=purpose,
                outcome=outcome,
            )

    def _settle_deposit(self, deposit_id: int, purpose: Purpose, outcome: str) -> None:
        """Move a deposit on after a successful opening, or back after one that did not happen.

        A load whose outcome is uncertain (``failed``, ``interrupted``) stays ``loading``: the
        clerk may have put the certificate in, so only the clerk may cancel it.
        """
        success = outcome in ("acked", "opened")
        deposit = self._deposit(deposit_id)
        if purpose == "pickup":
            if success and deposit["state"] in ("picking_up", "stored"):
                self._close_deposit(deposit_id, "picked_up")
                self._emit(
                    "deposit_picked_up",
                    deposit_id=deposit_id,
                    bay_id=deposit["bay_id"],
                    case_number=deposit["case_number"],
                )
            elif not success and deposit["state"] == "picking_up":
                self.store.conn.execute(
                    "UPDATE deposits SET state = 'stored' WHERE id = ?", (deposit_id,)
                )
        elif purpose in ("retrieve", "recall") and success:
            if deposit["state"] in ("stored", "loading"):
                target = "retrieved" if purpose == "retrieve" else "recalled"
                self._close_deposit(deposit_id, target)
                self._emit(f"deposit_{target}", deposit_id=deposit_id, bay_id=deposit["bay_id"])
        elif purpose == "load" and outcome == "jammed" and deposit["state"] == "loading":
            self._close_deposit(deposit_id, "cancelled")

    def _close_deposit(self, deposit_id: int, state: str) -> None:
        self.store.conn.execute(
            "UPDATE deposits SET state = ?, closed_at = ?, password_hash = NULL WHERE id = ?",
            (state, utc_iso(self._now()), deposit_id),
        )

    async def _read_door_now(self, bay: Any) -> DoorState:
        """A fresh reading, not the cached one: used before storing a deposit."""
        try:
            status = await asyncio.wrap_future(self.buses[bay["bus"]].submit_status(bay["board"]))
        except LockboardError as exc:
            raise BayFault(str(exc)) from exc
        is_open = status.doors.get(bay["channel"])
        if is_open is None:
            return "unknown"
        state: DoorState = "open" if is_open else "closed"
        expectation = self._expect.get(bay["id"])
        if expectation is None or expectation.judges(status.taken_at):
            self.record_door(bay["id"], state)
        return state

    # -- door accounting (called by the door watch and by reconcile) ------------------------

    def record_board_status(self, bus: str, status: BoardStatus) -> None:
        self.clear_alarm_if_active("board_offline", f"{bus}/{status.board}")
        for bay in self.bays_on(bus, status.board):
            is_open = status.doors.get(bay["channel"])
            expectation = self._expect.get(bay["id"])
            if expectation is not None and not expectation.judges(status.taken_at):
                continue  # taken before the unlock frame: neither confirms it nor is tamper
            if is_open is not None:
                self.record_door(bay["id"], "open" if is_open else "closed")

    def set_alarm(self, kind: str, subject: str, active: bool, **detail: Any) -> None:
        """Raise or clear an alarm to match a condition checked from outside (its own tx)."""
        if active:
            with self._tx(durable=False):
                self.raise_alarm(kind, subject, **detail)
        else:
            self.clear_alarm_if_active(kind, subject)

    def apply_settings(
        self, settings: LockerdSettings, *, changed: str, value: Any, actor: str
    ) -> None:
        """Use new settings from now on (a run-time change), audited and reported."""
        with self._tx():
            self.store.audit(self._now(), "config_changed", actor=actor, key=changed, value=value)
            self._emit("config_changed", key=changed, value=value, actor=actor)
        self.settings = settings
        self.cfg = settings.lockerd

    def clear_alarm_if_active(self, kind: str, subject: str) -> None:
        if (
            self.store.one(
                "SELECT id FROM alarms WHERE kind = ? AND subject = ? AND cleared_at IS NULL",
                kind,
                subject,
            )
            is not None
        ):
            with self._tx(durable=False):
                self.clear_alarm(kind, subject)

    def record_board_unreachable(self, bus: str, board: int, error: str) -> None:
        with self._tx(durable=False):
            self.raise_alarm("board_offline", f"{bus}/{board}", bus=bus, board=board, error=error)
        for bay in self.bays_on(bus, board):
            self.record_door(bay["id"], "unknown")

    def record_door(self, bay_id: str, state: DoorState) -> None:
        row = self._bay(bay_id)
        previous: DoorState = row["door"]
        mono = self.clock.monotonic()
        if state == "open":
            self._check_left_open(bay_id, mono)
        if state == previous:
            return
        now = self._now()
        expectation = self._expect.get(bay_id)
        expected = expectation is not None and mono <= expectation.deadline_mono
        with self._tx(durable=False):
            self.store.conn.execute(
                "UPDATE bays SET door = ?, door_changed_at = ? WHERE id = ?",
                (state, utc_iso(now), bay_id),
            )
            self._emit("door", bay_id=bay_id, door=state, previous=previous)
            if state == "open":
                self._open_since[bay_id] = mono
                if expected and expectation is not None:
                    self._confirm_opening(bay_id, expectation)
                else:
                    self.store.audit(now, "door_forced", bay_id=bay_id, previous=previous)
                    self.raise_alarm("door_forced", bay_id, bay_id=bay_id, previous=previous)
            elif state == "closed":
                self._open_since.pop(bay_id, None)
                self._left_open_alarmed.discard(bay_id)
                self.store.audit(now, "door_closed", bay_id=bay_id, previous=previous)
                self.clear_alarm("door_left_open", bay_id)
                self.clear_alarm("door_open_at_boot", bay_id)
                if previous == "open":
                    self.clear_alarm("door_forced", bay_id)
            else:
                self.store.audit(now, "door_unknown", bay_id=bay_id, previous=previous)

    def _confirm_opening(self, bay_id: str, expectation: _Expectation) -> None:
        now = self._now()
        self._expect.pop(bay_id, None)
        row = self.store.one("SELECT * FROM openings WHERE id = ?", expectation.opening_id)
        if row is not None and row["state"] in ("intent", "acked", "failed", "jammed"):
            self.store.conn.execute(
                "UPDATE openings SET state = 'opened', finished_at = COALESCE(finished_at, ?)"
                " WHERE id = ?",
                (utc_iso(now), row["id"]),
            )
            if row["state"] != "acked":
                # no successful outcome was recorded yet (step 3 pending, or it said failed):
                # the open door is the outcome, recorded now so no crash can lose it
                late = row["state"] in ("failed", "jammed")
                self.store.audit(
                    now,
                    "open_result",
                    bay_id=bay_id,
                    deposit_id=row["deposit_id"],
                    opening_id=row["id"],
                    purpose=row["purpose"],
                    outcome="opened",
                    via="door_watch_late" if late else "door_watch",
                )
                if row["deposit_id"] is not None:
                    self._settle_deposit(row["deposit_id"], row["purpose"], "opened")
                self._emit(
                    "opening",
                    opening_id=row["id"],
                    bay_id=bay_id,
                    deposit_id=row["deposit_id"],
                    purpose=row["purpose"],
                    outcome="opened",
                )
                if late:
                    # reported as failed, but the door did open: the item is most likely gone
                    self.raise_alarm(
                        "door_opened_late", bay_id, bay_id=bay_id, opening_id=row["id"]
                    )
        self.store.audit(
            now,
            "door_opened",
            bay_id=bay_id,
            opening_id=expectation.opening_id,
            deposit_id=row["deposit_id"] if row is not None else None,
        )
        if not expectation.confirmed.done():
            expectation.confirmed.set_result(True)

    def _check_left_open(self, bay_id: str, mono: float) -> None:
        since = self._open_since.get(bay_id)
        if since is None or bay_id in self._left_open_alarmed:
            return
        if mono - since >= self.cfg.door_watch.left_open_alarm_s:
            self._left_open_alarmed.add(bay_id)
            with self._tx(durable=False):
                self.raise_alarm(
                    "door_left_open", bay_id, bay_id=bay_id, open_s=round(mono - since, 1)
                )

    def expire_expectations(self) -> None:
        """Openings whose door was never seen open in the jam window (called by the watch)."""
        mono = self.clock.monotonic()
        for bay_id, exp in list(self._expect.items()):
            if mono <= exp.deadline_mono:
                continue
            del self._expect[bay_id]
            row = self.store.one("SELECT state FROM openings WHERE id = ?", exp.opening_id)
            if row is not None and row["state"] == "acked":
                # the lock answered "released" but nobody opened the door: no jam, just noted
                with self._tx(durable=False):
                    self.store.audit(
                        self._now(), "door_not_opened", bay_id=bay_id, opening_id=exp.opening_id
                    )

    # -- boot ------------------------------------------------------------------------------

    def reconcile(self, readings: dict[tuple[str, int], BoardStatus | None]) -> dict[str, int]:
        """Settle openings a crash interrupted, using what the boards report now.

        An ``intent`` whose door is open now is taken as done; otherwise the opening is marked
        ``interrupted`` and its deposit goes back to where it was. The lock is never fired again
        here: a person has to ask again.
        """
        now = self._now()
        counts = {"interrupted": 0, "completed": 0, "doors_open": 0}
        doors: dict[str, DoorState] = {}
        for (bus, board), status in readings.items():
            for bay in self.bays_on(bus, board):
                if status is None or bay["channel"] not in status.doors:
                    doors[bay["id"]] = "unknown"
                else:
                    doors[bay["id"]] = "open" if status.doors[bay["channel"]] else "closed"
        with self._tx():
            for opening in self.store.all("SELECT * FROM openings WHERE state = 'intent'"):
                door = doors.get(opening["bay_id"], "unknown")
                done = door == "open"
                state = "opened" if done else "interrupted"
                self.store.conn.execute(
                    "UPDATE openings SET state = ?, finished_at = ? WHERE id = ?",
                    (state, utc_iso(now), opening["id"]),
                )
                self.store.audit(
                    now,
                    "reconciled",
                    bay_id=opening["bay_id"],
                    deposit_id=opening["deposit_id"],
                    opening_id=opening["id"],
                    outcome=state,
                    door=door,
                )
                if opening["deposit_id"] is not None:
                    self._settle_deposit(opening["deposit_id"], opening["purpose"], state)
                if not done:
                    # the frame may or may not have gone out before the crash, and a door that
                    # opened and shut again looks the same as one never opened: staff must look
                    self.raise_alarm(
                        "opening_uncertain" if door == "closed" else "reconcile_unknown",
                        f"{opening['bay_id']}/opening:{opening['id']}",
                        bay_id=opening["bay_id"],
                        opening_id=opening["id"],
                        purpose=opening["purpose"],
                        deposit_id=opening["deposit_id"],
                    )
                counts["completed" if done else "interrupted"] += 1
            # a deposit stuck mid-pickup with no intent left cannot exist; repair if it does
            for dep in self.store.all("SELECT id, bay_id FROM deposits WHERE state = 'picking_up'"):
                self.store.conn.execute(
                    "UPDATE deposits SET state = 'stored' WHERE id = ?", (dep["id"],)
                )
                self.store.audit(
                    now,
                    "reconciled",
                    bay_id=dep["bay_id"],
                    deposit_id=dep["id"],
                    outcome="restored",
                )
            for bay_id, door in doors.items():
                previous = self._bay(bay_id)["door"]
                self.store.conn.execute(
                    "UPDATE bays SET door = ?, door_changed_at = ? WHERE id = ?",
                    (door, utc_iso(now), bay_id),
                )
                if door == "open":
                    counts["doors_open"] += 1
                    self._open_since[bay_id] = self.clock.monotonic()
                    self.store.audit(now, "door_open_at_boot", bay_id=bay_id, previous=previous)
                    self.raise_alarm("door_open_at_boot", bay_id, bay_id=bay_id, previous=previous)
            for (bus, board), status in readings.items():
                if status is None:
                    self.raise_alarm(
                        "board_offline",
                        f"{bus}/{board}",
                        bus=bus,
                        board=board,
                        error="no answer at start-up",
                    )
            self.store.audit(now, "boot_reconciled", **counts)  # type: ignore[arg-type]
        return counts

    def audit_tail(self, after_seq: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.store.all(
            "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
            after_seq,
            min(max(limit, 1), 1000),
        )
        return [
            {
                "seq": r["seq"],
                "at": r["at"],
                "kind": r["kind"],
                "bay_id": r["bay_id"],
                "deposit_id": r["deposit_id"],
                "opening_id": r["opening_id"],
                "actor": r["actor"],
                "detail": _unjson(r["detail"]),
            }
            for r in rows
        ]


def _end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=59, microsecond=0)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _unjson(text: str) -> Any:
    return json.loads(text)
