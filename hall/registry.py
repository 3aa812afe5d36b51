"""The device registry: presence, last seen, bounded telemetry, alarms, deduplicated events.

Presence
    A birth or will carries the session counter of the connection it belongs to. A message with
    a lower session than the one recorded is stale and ignored: in particular a will from an old
    session, delivered late by the broker, never marks a device offline that has already come
    back. A will of the current session (or a newer one) marks it offline.
Events
    ``ingest`` records (device, event id) and runs the event's handler in ONE transaction, so a
    redelivered event is recognised and never handled twice, and a handler that fails leaves no
    trace of the event (it is handled again when redelivered). Events are applied as they
    arrive; the few order-dependent pairs are handled where they matter (a ``ticket_voided``
    before its ``ticket_issued_offline`` waits for it).
Event seq (docs/mqtt.md "Events")
    Per device component the hall keeps, in ``event_seq``, the baseline (the first seq it ever
    saw: the hall may be newer than the device's outbox, so nothing before it is missing) and
    the highest seq seen, and in ``event_seq_gaps`` the seq ranges missing between them. A seq
    above the highest + 1 opens a gap; events that arrive later fill it. A gap still open
    ``[hall.registry] seq_gap_grace_s`` after it was noticed raises ``event_seq_gap`` (subject
    ``{device}.{component}``, the missing ranges and count, nothing personal), checked on every
    event of that component and on the hall's periodic sweep; the alarm is resolved when the
    gaps fill. A resolved-by-ops alarm is not raised again for the ranges it named.
    A NEW event id with a seq already seen (not in a gap, at or above the baseline) means the
    component's seq restarted (its outbox was wiped, or it counts from 1 at every start): the
    baseline moves there, and ranges still missing can never arrive, so they are alarmed at
    once and stay until ops resolve the alarm. A restart that lands below the baseline (a
    component first seen at seq 1000 counting from 1 again) is noticed only when its seq
    reaches the baseline; until then those events are taken as older than the baseline.
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
SEQ_GAP_ALARM = "event_seq_gap"
SEQ_GAP_RANGES_SHOWN = 20  # missing seq ranges listed in the alarm (all are counted)


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
            self._track_seq(conn, event)
            conn.execute(
                "UPDATE devices SET last_seen = ? WHERE device = ? AND component = ?",
                (now, event.device, event.component),
            )
        return True

    def prune(self) -> int:
        """Forget event ids older than ``dedup_keep_days`` (returns how many)."""
        cutoff = utc_iso(self._clock.now() - timedelta(days=self._settings.dedup_keep_days))
        with self._store.transaction() as conn:
            pruned = conn.execute(
                "DELETE FROM events_seen WHERE received_at < ?", (cutoff,)
            ).rowcount
        return pruned

    # -- event seq -----------------------------------------------------------------------------

    def check_seq_gaps(self) -> None:
        """Raise, update or resolve ``event_seq_gap`` for every component with a gap or an
        open alarm (a few rows: never a scan of ``events_seen``)."""
        with self._store.transaction() as conn:
            pairs = conn.execute(
                "SELECT device, component FROM event_seq_gaps"
                " UNION SELECT device, component FROM event_seq"
                " WHERE alarm_id IS NOT NULL OR lost IS NOT NULL"
            ).fetchall()
            for pair in pairs:
                self._check_seq(conn, pair["device"], pair["component"])

    def seq_state(self, device: str, component: str) -> dict[str, Any] | None:
        """The seq baseline, the highest seq seen and the missing ranges of one component."""
        row = self._store.one(
            "SELECT base, high, restarts, alarm_id FROM event_seq"
            " WHERE device = ? AND component = ?",
            device,
            component,
        )
        if row is None:
            return None
        gaps = self._store.all(
            "SELECT first, last, opened_at, status FROM event_seq_gaps"
            " WHERE device = ? AND component = ? ORDER BY first",
            device,
            component,
        )
        return {**dict(row), "gaps": [dict(g) for g in gaps]}

    def _track_seq(self, conn: sqlite3.Connection, event: Event) -> None:
        # a fault here must never hold up the device's events: its changes are undone and
        # logged, and the event is recorded and handled as usual
        conn.execute("SAVEPOINT event_seq")
        try:
            self._advance_seq(conn, event)
            self._check_seq(conn, event.device, event.component)
        except Exception:
            conn.execute("ROLLBACK TO event_seq")
            log.exception("seq tracking of %s/%s failed", event.device, event.component)
        finally:
            conn.execute("RELEASE event_seq")

    def _advance_seq(self, conn: sqlite3.Connection, event: Event) -> None:
        """Record one new (not redelivered) event's seq."""
        device, component, seq = event.device, event.component, event.seq
        key = (device, component)
        now = utc_iso(self._clock.now())
        row = conn.execute(
            "SELECT base, high FROM event_seq WHERE device = ? AND component = ?", key
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO event_seq (device, component, base, high, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (*key, seq, seq, now),
            )
            return
        base, high = int(row["base"]), int(row["high"])
        if seq > high:
            if seq > high + 1:
                conn.execute(
                    "INSERT INTO event_seq_gaps (device, component, first, last, opened_at,"
                    " status) VALUES (?, ?, ?, ?, ?, 'open')",
                    (*key, high + 1, seq - 1, now),
                )
                log.info("%s/%s: seq %d after %d, waiting for the gap", *key, seq, high)
            conn.execute(
                "UPDATE event_seq SET high = ?, updated_at = ? WHERE device = ? AND component = ?",
                (seq, now, *key),
            )
            return
        if seq < base:
            return  # older than the baseline: nothing is known about those seqs
        gap = conn.execute(
            "SELECT first, last, opened_at, status FROM event_seq_gaps"
            " WHERE device = ? AND component = ? AND first <= ? ORDER BY first DESC LIMIT 1",
            (*key, seq),
        ).fetchone()
        if gap is not None and seq <= gap["last"]:
            conn.execute(
                "DELETE FROM event_seq_gaps WHERE device = ? AND component = ? AND first = ?",
                (*key, gap["first"]),
            )
            for first, last in ((gap["first"], seq - 1), (seq + 1, gap["last"])):
                if first <= last:
                    conn.execute(
                        "INSERT INTO event_seq_gaps (device, component, first, last, opened_at,"
                        " status) VALUES (?, ?, ?, ?, ?, ?)",
                        (*key, first, last, gap["opened_at"], gap["status"]),
                    )
            return
        # a new event id with a seq this component already used
        if event.ts < self._clock.now() - timedelta(days=self._settings.dedup_keep_days):
            log.warning(
                "%s/%s: event %s (seq %d) is older than the ids kept for deduplication;"
                " taken as a late redelivery",
                *key,
                event.id,
                seq,
            )
            return
        self._restart_seq(conn, event, high, now)

    def _restart_seq(self, conn: sqlite3.Connection, event: Event, high: int, now: str) -> None:
        """The component counts again from a seq it used before: a new baseline. What was
        still missing can never arrive now; it is alarmed at once (``lost``)."""
        key, seq = (event.device, event.component), event.seq
        gone = conn.execute(
            "SELECT COUNT(*) AS ranges, TOTAL(last - first + 1) AS seqs FROM event_seq_gaps"
            " WHERE device = ? AND component = ? AND status != 'dismissed'",
            key,
        ).fetchone()
        lost_json = conn.execute(
            "SELECT lost FROM event_seq WHERE device = ? AND component = ?", key
        ).fetchone()["lost"]
        lost: dict[str, Any] | None = json.loads(lost_json) if lost_json else None
        if gone["ranges"]:
            ranges = [
                [r["first"], r["last"]]
                for r in conn.execute(
                    "SELECT first, last FROM event_seq_gaps WHERE device = ? AND component = ?"
                    " AND status != 'dismissed' ORDER BY first LIMIT ?",
                    (*key, SEQ_GAP_RANGES_SHOWN),
                )
            ]
            before = lost or {"ranges": [], "range_count": 0, "count": 0}
            lost = {
                "ranges": (before["ranges"] + ranges)[:SEQ_GAP_RANGES_SHOWN],
                "range_count": before["range_count"] + int(gone["ranges"]),
                "count": before["count"] + int(gone["seqs"]),
                "restarted_at": now,
            }
        conn.execute("DELETE FROM event_seq_gaps WHERE device = ? AND component = ?", key)
        conn.execute(
            "UPDATE event_seq SET base = ?, high = ?, restarts = restarts + 1, lost = ?,"
            " updated_at = ? WHERE device = ? AND component = ?",
            (seq, seq, dumps(lost) if lost else None, now, *key),
        )
        log.log(
            logging.WARNING if gone["ranges"] else logging.INFO,
            "%s/%s: seq restarted at %d after %d (a new outbox?); %d missing event(s) can no"
            " longer arrive",
            *key,
            seq,
            high,
            int(gone["seqs"]),
        )

    def _check_seq(self, conn: sqlite3.Connection, device: str, component: str) -> None:
        key = (device, component)
        state = conn.execute(
            "SELECT alarm_id, lost FROM event_seq WHERE device = ? AND component = ?", key
        ).fetchone()
        if state is None:
            return
        alarm_id, lost = state["alarm_id"], state["lost"]
        if alarm_id is not None:
            alarm = conn.execute("SELECT state FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
            if alarm is None or alarm["state"] == "resolved":
                # resolved by ops: they know of these gaps; they still fill, but never alarm again
                conn.execute(
                    "UPDATE event_seq_gaps SET status = 'dismissed' WHERE device = ?"
                    " AND component = ? AND status = 'alarmed'",
                    key,
                )
                conn.execute(
                    "UPDATE event_seq SET alarm_id = NULL, lost = NULL WHERE device = ?"
                    " AND component = ?",
                    key,
                )
                alarm_id = lost = None
        now = self._clock.now()
        deadline = utc_iso(now - timedelta(seconds=self._settings.seq_gap_grace_s))
        conn.execute(
            "UPDATE event_seq_gaps SET status = 'alarmed' WHERE device = ? AND component = ?"
            " AND status = 'open' AND opened_at <= ?",
            (*key, deadline),
        )
        missing = conn.execute(
            "SELECT COUNT(*) AS ranges, TOTAL(last - first + 1) AS seqs,"
            " MIN(opened_at) AS since FROM event_seq_gaps"
            " WHERE device = ? AND component = ? AND status = 'alarmed'",
            key,
        ).fetchone()
        subject = f"{device}.{component}"
        if not missing["ranges"] and lost is None:
            if alarm_id is not None:
                self.clear_alarm(
                    conn,
                    device=device,
                    component=component,
                    code=SEQ_GAP_ALARM,
                    subject=subject,
                    by="hall",
                )
                conn.execute(
                    "UPDATE event_seq SET alarm_id = NULL WHERE device = ? AND component = ?",
                    key,
                )
                log.info("%s/%s: the seq gap filled", *key)
            return
        ranges = [
            [r["first"], r["last"]]
            for r in conn.execute(
                "SELECT first, last FROM event_seq_gaps WHERE device = ? AND component = ?"
                " AND status = 'alarmed' ORDER BY first LIMIT ?",
                (*key, SEQ_GAP_RANGES_SHOWN),
            )
        ]
        details: dict[str, Any] = {
            "device": device,
            "component": component,
            "missing": ranges,
            "missing_ranges": int(missing["ranges"]),
            "missing_count": int(missing["seqs"]),
            "missing_since": missing["since"],
            "grace_s": self._settings.seq_gap_grace_s,
        }
        if lost is not None:
            details["lost_at_restart"] = json.loads(lost)
        raised = self.raise_alarm(
            conn,
            device=device,
            component=component,
            code=SEQ_GAP_ALARM,
            subject=subject,
            details=details,
        )
        text = dumps(details)
        conn.execute(
            "UPDATE alarms SET details = ? WHERE id = ? AND details != ?", (text, raised, text)
        )
        if raised != alarm_id:
            conn.execute(
                "UPDATE event_seq SET alarm_id = ? WHERE device = ? AND component = ?",
                (raised, *key),
            )

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
