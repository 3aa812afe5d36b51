"""The locker database: SQLite in WAL mode, schema migrations by ``user_version``.

Durability rule (DESIGN §4): an opening's intent is committed with ``synchronous=FULL`` (fsync)
before any unlock frame leaves; its outcome is committed after. The audit table is append-only,
enforced by triggers, so no code path can rewrite history.

All times are stored as UTC ISO-8601 strings, so they sort and compare as text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from hallkiosk.clock import utc_iso
from locker.errors import LockerError

SCHEMA: list[str] = [
    # version 1
    """
    CREATE TABLE bays (
        id TEXT PRIMARY KEY,
        size TEXT NOT NULL CHECK (size IN ('S', 'M', 'L')),
        bus TEXT NOT NULL,
        board INTEGER NOT NULL,
        channel INTEGER NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        disabled_reason TEXT,
        door TEXT NOT NULL DEFAULT 'unknown' CHECK (door IN ('open', 'closed', 'unknown')),
        door_changed_at TEXT,
        in_config INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE deposits (
        id INTEGER PRIMARY KEY,
        request_id TEXT UNIQUE,
        bay_id TEXT NOT NULL REFERENCES bays(id),
        state TEXT NOT NULL CHECK (state IN ('loading', 'stored', 'picking_up', 'picked_up',
                                             'retrieved', 'recalled', 'cancelled')),
        case_number TEXT NOT NULL,
        staff_id TEXT NOT NULL,
        recipient_hash TEXT NOT NULL,
        recipient_masked_name TEXT NOT NULL,
        recipient_masked_id TEXT NOT NULL DEFAULT '',
        password_hash TEXT,
        created_at TEXT NOT NULL,
        stored_at TEXT,
        deadline_at TEXT,
        closed_at TEXT,
        wrong_attempts INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT
    );
    -- a bay holds at most one live deposit: the database itself refuses a second
    CREATE UNIQUE INDEX deposits_one_live_per_bay ON deposits(bay_id)
        WHERE state IN ('loading', 'stored', 'picking_up');
    CREATE INDEX deposits_recipient ON deposits(recipient_hash, state);
    CREATE TABLE identity_lockouts (
        identity_hash TEXT PRIMARY KEY,
        wrong_attempts INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT
    );
    CREATE TABLE openings (
        id INTEGER PRIMARY KEY,
        bay_id TEXT NOT NULL REFERENCES bays(id),
        deposit_id INTEGER REFERENCES deposits(id),
        purpose TEXT NOT NULL CHECK (purpose IN ('load', 'pickup', 'retrieve', 'recall',
                                                 'maintenance')),
        actor TEXT NOT NULL,
        request_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('intent', 'acked', 'opened', 'jammed', 'failed',
                                             'interrupted')),
        created_at TEXT NOT NULL,
        finished_at TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX openings_state ON openings(state);
    CREATE INDEX openings_request ON openings(request_id) WHERE request_id IS NOT NULL;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        bay_id TEXT,
        deposit_id INTEGER,
        opening_id INTEGER,
        actor TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TABLE alarms (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        cleared_at TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX alarms_one_active ON alarms(kind, subject) WHERE cleared_at IS NULL;
    """,
    # version 2: overdue deposits are reported to the hall once
    """
    ALTER TABLE deposits ADD COLUMN overdue_reported_at TEXT;
    """,
]


class StoreError(LockerError, RuntimeError):
    code = "store_error"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA synchronous=FULL")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(SCHEMA):
        raise StoreError(f"database schema {version} is newer than this release ({len(SCHEMA)})")
    for number in range(version, len(SCHEMA)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA[number].split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class Store:
    """Thin wrapper over one connection; used from one thread (lockerd's event loop)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._synchronous = "FULL"

    @classmethod
    def open(cls, path: Path) -> Store:
        return cls(open_db(path))

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """``durable`` commits with an fsync; otherwise the WAL is synced at the next checkpoint
        or durable commit (safe against a process kill, not against a power cut)."""
        wanted = "FULL" if durable else "NORMAL"
        if wanted != self._synchronous:
            self.conn.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous = wanted
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def audit(
        self,
        at: datetime,
        kind: str,
        *,
        bay_id: str | None = None,
        deposit_id: int | None = None,
        opening_id: int | None = None,
        actor: str | None = None,
        **detail: Any,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO audit (at, kind, bay_id, deposit_id, opening_id, actor, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                utc_iso(at),
                kind,
                bay_id,
                deposit_id,
                opening_id,
                actor,
                json.dumps(detail, ensure_ascii=False, sort_keys=True),
            ),
        )
        return int(cur.lastrowid or 0)

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, args).fetchall())
