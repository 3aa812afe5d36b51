"""The device registry: presence, last seen, bounded telemetry, alarms, deduplicated events.

Presence
    A birth or will carries the session counter of the connection it belongs to. A message with
    a lower session than the one recorded is stale and ignored: in particular a will from an old
    session, delivered late by the broker, never marks a device offline that has already come
    back. A will of the current session (or a newer one) marks it offline.
Events
    ``ingest`` records (device, event id) and runs the event's handler in ONE transaction, so a
    redelivered event is recognised and never handled twice, and a handler that fails leaves no
    trace of the event (it is handled again when redelivered).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hall.settings import RegistrySettings
from hall.store import HallStore, dumps
from hallkiosk.clock import Clock, utc_iso
from uplink.messages import Birth, Event, Telemetry, Will

log = logging.getLogger(__name__)

EventHandler = Callable[[sqlite3.Connection, Event], None]


@dataclass(frozen=True)
class PresenceOutcome:
    applied: bool
    state: str | None
    reason: str  # "applied", "stale_session", "unknown_device_will"


class DeviceRegistry:
    def __init__(self, store: HallStore, settings: RegistrySettings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._handlers: dict[str, EventHandler] = {}
        self.duplicates = 0

    def on_event(self, event_type: str, handler: EventHandler) -> None:
        self._handlers[event_type] = handler

    # -- presence ------------------------------------------------------------------------------

    def presence(self, message: Birth | Will) -> PresenceOutcome:
        now = utc_iso(self._clock.now())
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT session, state FROM devices WHERE device = ? AND component = ?",
                (message.device, message.component),
            ).fetchone()
            if row is not None and message.session < row["session"]:
                log.info(
                    "stale %s of %s/%s (session %d < %d) ignored",
                    message.state,
                    message.device,
                    message.component,
                    message.session,
                    row["session"],
                )
                return PresenceOutcome(False, row["state"], "stale_session")
            versions = (
                dumps(message.versions.model_dump(by_alias=True))
                if isinstance(message, Birth)
                else None
            )
            conn.execute(
                "INSERT INTO devices (device, component, state, session, boot_id, versions,"
                " since, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (device, component) DO UPDATE SET state = excluded.state,"
                " session = excluded.session, boot_id = excluded.boot_id,"
                " versions = COALESCE(excluded.versions, devices.versions),"
                " since = CASE WHEN devices.state = excluded.state THEN devices.since"
                " ELSE excluded.since END, last_seen = excluded.last_seen",
                (
                    message.device,
                    message.component,
                    message.state,
                    message.session,
                    message.boot_id,
                    versions,
                    now,
                    now,
                ),
            )
        log.info(
            "%s/%s is %s (session %d)",
            message.device,
            message.component,
            message.state,
            message.session,
        )
        return PresenceOutcome(True, message.state, "applied")

    def seen(self, device: str, component: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE devices SET last_seen = ? WHERE device = ? AND component = ?",
                (utc_iso(self._clock.now()), device, component),
            )

    def devices(self) -> list[dict[str, Any]]:
        rows = self._store.all("SELECT * FROM devices ORDER BY device, component")
        out = []
        for r in rows:
            d = dict(r)
            d["versions"] = json.loads(r["versions"]) if r["versions"] else None
            d["active_alarms"] = self._store.one(
                "SELECT COUNT(*) AS n FROM alarms WHERE device = ? AND component = ?"
                " AND state != 'resolved'",
                r["device"],
                r["component"],
            )["n"]  # type: ignore[index]
            out.append(d)
        return out

    # -- telemetry -----------------------------------------------------------------------------

    def telemetry(self, message: Telemetry) -> None:
        now = utc_iso(self._clock.now())
        with self._store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO telemetry (device, component, ts, received_at, metrics)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    message.device,
                    message.component,
                    message.ts.isoformat(),
                    now,
                    dumps(message.metrics),
                ),
            )
            # keep the newest N per device component (ids only grow)
            conn.execute(
                "DELETE FROM telemetry WHERE device = ? AND component = ? AND id <= ?",
                (
                    message.device,
                    message.component,
                    (cur.lastrowid or 0) - self._settings.telemetry_keep,
                ),
            )
            conn.execute(
                "UPDATE devices SET last_seen = ? WHERE device = ? AND component = ?",
                (now, message.device, message.component),
            )

    def telemetry_history(
        self, device: str, component: str, limit: int = 50
    ) -> list[dict[str, Any]]:
        rows = self._store.all(
            "SELECT ts, received_at, metrics FROM telemetry WHERE device = ? AND component = ?"
            " ORDER BY id DESC LIMIT ?",
            device,
            component,
            limit,
        )
        return [
            {"ts": r["ts"], "received_at": r["received_at"], "metrics": json.loads(r["metrics"])}
            for r in rows
        ]

    def telemetry_latest(
        self, *, device: str | None = None, component: str | None = None, last: int = 1
    ) -> list[dict[str, Any]]:
        """The newest ``last`` snapshots (newest first) of every device component, sorted by
        device and component, with its presence (``state`` and ``last_seen``, None for one
        that sent telemetry but no birth) and its active alarms at the hall. A registered
        component that never sent telemetry is listed with no snapshots, so ops see it too.
        ``device``/``component`` narrow it down to exact ids."""
        # None matches every device (component); both filters are exact ids
        args = (device, device, component, component)
        pairs = self._store.all(
            "SELECT device, component FROM telemetry"
            " WHERE (? IS NULL OR device = ?) AND (? IS NULL OR component = ?)"
            " UNION SELECT device, component FROM devices"
            " WHERE (? IS NULL OR device = ?) AND (? IS NULL OR component = ?)"
            " ORDER BY device, component",
            *args,
            *args,
        )
        presence = {
            (r["device"], r["component"]): r
            for r in self._store.all(
                "SELECT device, component, state, last_seen FROM devices"
                " WHERE (? IS NULL OR device = ?) AND (? IS NULL OR component = ?)",
                *args,
            )
        }
        alarms = {
            (r["device"], r["component"]): r["n"]
            for r in self._store.all(
                "SELECT device, component, COUNT(*) AS n FROM alarms WHERE state != 'resolved'"
                " AND (? IS NULL OR device = ?) AND (? IS NULL OR component = ?)"
                " GROUP BY device, component",
                *args,
            )
        }
        out = []
        for pair in pairs:
            key = (pair["device"], pair["component"])
            seen = presence.get(key)
            out.append(
                {
                    "device": key[0],
                    "component": key[1],
                    "state": seen["state"] if seen is not None else None,
                    "last_seen": seen["last_seen"] if seen is not None else None,
                    "active_alarms": alarms.get(key, 0),
                    "snapshots": self.telemetry_history(key[0], key[1], max(1, last)),
                }
            )
        return out

    # -- events --------------------------------------------------------------------------------

    def ingest(self, event: Event) -> bool:
        """Record and handle one event; False if it was seen before (nothing is done again)."""
        now = utc_iso(self._clock.now())
        with self._store.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO events_seen (device, event_id, component, seq, type, ts,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    event.device,
                    event.id,
                    event.component,
                    event.seq,
                    event.type,
                    event.ts.isoformat(),
                    now,
                ),
            )
            if cur.rowcount == 0:
                self.duplicates += 1
                return False
            handler = self._handlers.get(event.type)
            if handler is not None:
                handler(conn, event)
            conn.execute(
                "UPDATE devices SET last_seen = ? WHERE device = ? AND component = ?",
                (now, event.device, event.component),
            )
        return True

    def prune(self) -> int:
        cutoff = utc_iso(self._clock.now() - timedelta(days=self._settings.dedup_keep_days))
        with self._store.transaction() as conn:
            return conn.execute("DELETE FROM events_seen WHERE received_at < ?", (cutoff,)).rowcount

    # -- alarms --------------------------------------------------------------------------------

    def raise_alarm(
        self,
        conn: sqlite3.Connection,
        *,
        device: str,
        component: str,
        code: str,
        subject: str = "",
        details: dict[str, Any] | None = None,
    ) -> int:
        """Open an alarm, or return the one already open for the same device/code/subject."""
        row = conn.execute(
            "SELECT id FROM alarms WHERE device = ? AND component = ? AND code = ?"
            " AND subject = ? AND state != 'resolved'",
            (device, component, code, subject),
        ).fetchone()
        if row is not None:
            return int(row["id"])
        cur = conn.execute(
            "INSERT INTO alarms (device, component, code, subject, details, state, raised_at)"
            " VALUES (?, ?, ?, ?, ?, 'active', ?)",
            (device, component, code, subject, dumps(details or {}), utc_iso(self._clock.now())),
        )
        log.warning("alarm %s raised on %s/%s %s", code, device, component, subject)
        return int(cur.lastrowid or 0)

    def clear_alarm(
        self,
        conn: sqlite3.Connection,
        *,
        device: str,
        component: str,
        code: str,
        subject: str = "",
        by: str,
    ) -> int:
        return conn.execute(
            "UPDATE alarms SET state = 'resolved', resolved_at = ?, resolved_by = ?"
            " WHERE device = ? AND component = ? AND code = ? AND subject = ?"
            " AND state != 'resolved'",
            (utc_iso(self._clock.now()), by, device, component, code, subject),
        ).rowcount

    def acknowledge(self, alarm_id: int, *, by: str) -> bool:
        with self._store.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE alarms SET state = 'acknowledged', acked_at = ?, acked_by = ?"
                    " WHERE id = ? AND state = 'active'",
                    (utc_iso(self._clock.now()), by, alarm_id),
                ).rowcount
                == 1
            )

    def resolve(self, alarm_id: int, *, by: str) -> bool:
        with self._store.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE alarms SET state = 'resolved', resolved_at = ?, resolved_by = ?"
                    " WHERE id = ? AND state != 'resolved'",
                    (utc_iso(self._clock.now()), by, alarm_id),
                ).rowcount
                == 1
            )

    def alarms(self, *, include_resolved: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM alarms"
        if not include_resolved:
            sql += " WHERE state != 'resolved'"
        rows = self._store.all(sql + " ORDER BY id")
        return [{**dict(r), "details": json.loads(r["details"])} for r in rows]
