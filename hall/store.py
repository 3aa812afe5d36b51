"""The hall database: SQLite in WAL mode, schema migrations by ``user_version``.

One ``HallStore`` (one connection, one lock) is shared by the threads of a hall process: the MQTT
network thread answering requests, the sweeper and the CLI. Other processes (``hall call``,
``hall prereview``) open the same file; WAL lets them read while the server writes, and
``busy_timeout`` makes a writer wait for the other instead of failing.

Commits are ``synchronous=NORMAL`` by default: safe against a killed process, and a power cut
loses at most the last moments, which the devices' outboxes replay (docs/hall.md "Durability").
``transaction(durable=True)`` syncs, for the few writes that must survive a power cut on their
own (ticket number blocks).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from hall.errors import HallError
from hall.notify.queue import SCHEMA as NOTIFY_SCHEMA

SCHEMA: list[str] = [
    # 1: queue, appointments, pre-review, registry, commands
    """
    CREATE TABLE ticket_counters (
        category TEXT NOT NULL,
        service_day TEXT NOT NULL,
        next_number INTEGER NOT NULL,
        reserved_upto INTEGER NOT NULL,
        PRIMARY KEY (category, service_day)
    );
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        service_day TEXT NOT NULL,
        category TEXT NOT NULL,
        number INTEGER NOT NULL,
        label TEXT NOT NULL,
        priority TEXT NOT NULL CHECK (priority IN ('normal', 'green', 'appointment')),
        slot_start TEXT,
        identity_hash TEXT,
        booking_code TEXT,
        device TEXT NOT NULL,
        offline INTEGER NOT NULL DEFAULT 0,
        issued_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'called', 'done', 'skipped', 'expired')),
        window INTEGER,
        called_at TEXT,
        recalls INTEGER NOT NULL DEFAULT 0,
        finished_at TEXT,
        overtaken INTEGER NOT NULL DEFAULT 0,
        UNIQUE (service_day, category, number)
    );
    CREATE INDEX tickets_queue ON tickets (service_day, category, state, issued_at);
    CREATE INDEX tickets_identity ON tickets (identity_hash, service_day, category, state);
    CREATE TABLE appointments (
        booking_code TEXT PRIMARY KEY,
        matter_code TEXT NOT NULL,
        matter_name TEXT NOT NULL,
        area TEXT NOT NULL,
        slot_start TEXT NOT NULL,
        slot_end TEXT NOT NULL,
        service_day TEXT NOT NULL,
        identity_hash TEXT NOT NULL,
        id_masked TEXT NOT NULL,
        name_masked TEXT NOT NULL,
        phone TEXT,
        place TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('booked', 'cancelled', 'checked_in', 'no_show')),
        checked_in_at TEXT,
        ticket_id TEXT,
        imported_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX appointments_day ON appointments (service_day, status);
    CREATE INDEX appointments_identity ON appointments (identity_hash, service_day);
    CREATE TABLE uploads (
        upload_id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        file_name TEXT NOT NULL,
        total_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        chunk_bytes INTEGER NOT NULL,
        chunks_total INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'complete', 'expired')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE upload_chunks (
        upload_id TEXT NOT NULL REFERENCES uploads (upload_id),
        idx INTEGER NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (upload_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE submissions (
        id TEXT PRIMARY KEY,
        receipt_no TEXT NOT NULL UNIQUE,
        matter_code TEXT NOT NULL,
        identity_hash TEXT,
        id_masked TEXT,
        name_masked TEXT,
        phone TEXT,
        device TEXT NOT NULL,
        files TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'returned')),
        decided_at TEXT,
        decided_by TEXT,
        return_items TEXT,
        note TEXT
    );
    CREATE INDEX submissions_identity ON submissions (identity_hash);
    CREATE TABLE cases (
        case_number TEXT PRIMARY KEY,
        phone TEXT,
        identity_hash TEXT,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE devices (
        device TEXT NOT NULL,
        component TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('online', 'offline')),
        session INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        versions TEXT,
        since TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (device, component)
    );
    CREATE TABLE events_seen (
        device TEXT NOT NULL,
        event_id TEXT NOT NULL,
        component TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        ts TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (device, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX events_seen_received ON events_seen (received_at);
    CREATE TABLE telemetry (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        component TEXT NOT NULL,
        ts TEXT NOT NULL,
        received_at TEXT NOT NULL,
        metrics TEXT NOT NULL
    );
    CREATE INDEX telemetry_device ON telemetry (device, component, id);
    CREATE TABLE alarms (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        component TEXT NOT NULL,
        code TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'acknowledged', 'resolved')),
        raised_at TEXT NOT NULL,
        acked_at TEXT,
        acked_by TEXT,
        resolved_at TEXT,
        resolved_by TEXT
    );
    CREATE INDEX alarms_open ON alarms (device, component, code, subject, state);
    CREATE TABLE commands (
        command_id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        component TEXT NOT NULL,
        action TEXT NOT NULL,
        args TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sent', 'accepted', 'rejected', 'result')),
        reason TEXT,
        result TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE hall_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """
    + ";\n".join(NOTIFY_SCHEMA),
    # 2: service evaluations (好差评) from kiosks
    """
    CREATE TABLE evaluations (
        device TEXT NOT NULL,
        event_id TEXT NOT NULL,
        service_day TEXT NOT NULL,
        service TEXT NOT NULL,
        reference TEXT NOT NULL,
        level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
        reasons TEXT NOT NULL,
        rated_at TEXT NOT NULL,
        PRIMARY KEY (device, event_id)
    );
    CREATE INDEX evaluations_day ON evaluations (service_day);
    """,
    # 3: a ticket whose print failed is voided (state 'voided', why and by which device);
    # SQLite cannot change a CHECK, so the table is rebuilt. A void that arrives before the
    # ticket it names (an offline ticket not merged yet) waits in ticket_voids_pending.
    """
    CREATE TABLE tickets_v3 (
        id TEXT PRIMARY KEY,
        service_day TEXT NOT NULL,
        category TEXT NOT NULL,
        number INTEGER NOT NULL,
        label TEXT NOT NULL,
        priority TEXT NOT NULL CHECK (priority IN ('normal', 'green', 'appointment')),
        slot_start TEXT,
        identity_hash TEXT,
        booking_code TEXT,
        device TEXT NOT NULL,
        offline INTEGER NOT NULL DEFAULT 0,
        issued_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('waiting', 'called', 'done', 'skipped', 'expired', 'voided')),
        window INTEGER,
        called_at TEXT,
        recalls INTEGER NOT NULL DEFAULT 0,
        finished_at TEXT,
        overtaken INTEGER NOT NULL DEFAULT 0,
        void_reason TEXT,
        voided_by TEXT,
        UNIQUE (service_day, category, number)
    );
    INSERT INTO tickets_v3 (id, service_day, category, number, label, priority, slot_start,
        identity_hash, booking_code, device, offline, issued_at, received_at, state, window,
        called_at, recalls, finished_at, overtaken)
        SELECT id, service_day, category, number, label, priority, slot_start, identity_hash,
        booking_code, device, offline, issued_at, received_at, state, window, called_at,
        recalls, finished_at, overtaken FROM tickets;
    DROP TABLE tickets;
    ALTER TABLE tickets_v3 RENAME TO tickets;
    CREATE INDEX tickets_queue ON tickets (service_day, category, state, issued_at);
    CREATE INDEX tickets_identity ON tickets (identity_hash, service_day, category, state);
    CREATE TABLE ticket_voids_pending (
        device TEXT NOT NULL,
        ticket_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (device, ticket_id)
    ) WITHOUT ROWID;
    """,
    # 4: a case's recipient for the kiosks' case.lookup: the masked name beside the keyed
    # identity hash (never the ID number or the full name), and the audit of every lookup
    # (who asked about which case; no personal data)
    """
    ALTER TABLE cases ADD COLUMN name_masked TEXT;
    CREATE TABLE case_lookups (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        device TEXT NOT NULL,
        staff_id TEXT NOT NULL,
        case_number TEXT NOT NULL,
        found INTEGER NOT NULL CHECK (found IN (0, 1))
    );
    CREATE INDEX case_lookups_case ON case_lookups (case_number, at);
    """,
    # 5: event seq tracking per device component (docs/mqtt.md "Events"): the baseline (the
    # first seq seen, or where the seq restarted), the highest seq seen, and the missing seq
    # ranges between them, so a gap is noticed without scanning events_seen. ``lost`` holds
    # the ranges that were still missing when the component's seq restarted (they can never
    # arrive) until ops resolve the alarm; ``alarm_id`` is the open event_seq_gap alarm.
    """
    CREATE TABLE event_seq (
        device TEXT NOT NULL,
        component TEXT NOT NULL,
        base INTEGER NOT NULL,
        high INTEGER NOT NULL,
        restarts INTEGER NOT NULL DEFAULT 0,
        lost TEXT,
        alarm_id INTEGER,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (device, component)
    ) WITHOUT ROWID;
    CREATE TABLE event_seq_gaps (
        device TEXT NOT NULL,
        component TEXT NOT NULL,
        first INTEGER NOT NULL,
        last INTEGER NOT NULL,
        opened_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'alarmed', 'dismissed')),
        PRIMARY KEY (device, component, first)
    ) WITHOUT ROWID;
    """,
]


class StoreError(HallError, RuntimeError):
    code = "hall_store_error"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(SCHEMA):
            raise StoreError(
                f"hall database schema {version} is newer than this release ({len(SCHEMA)})"
            )
        for number in range(version, len(SCHEMA)):
            for statement in SCHEMA[number].split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class HallStore:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        self._durable = False

    @classmethod
    def open(cls, path: Path) -> HallStore:
        return cls(open_db(path), path)

    def connect_new(self) -> sqlite3.Connection:
        """A second connection to the same file, for a thread that must not share the lock."""
        return open_db(self.path)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction under the store lock. A nested call joins the outer one, and a
        ``durable`` request anywhere in it makes the whole commit durable."""
        with self.lock:
            if self._depth:
                self._depth += 1
                self._durable = self._durable or durable
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth, self._durable = 1, durable
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")
            if self._durable:
                self.sync_wal()

    def sync_wal(self) -> None:
        """Make every commit so far survive a power cut. Needs no lock: it only fsyncs."""
        # synchronous=NORMAL leaves commits in the WAL's page cache; fsync makes them survive a
        # power cut (the WAL file exists for as long as a connection is open).
        fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
            return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.lock:
            return list(self.conn.execute(sql, args).fetchall())
