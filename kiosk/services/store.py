"""The kiosk's own SQLite file (``kiosk.db``): offline tickets, caches, queued pre-reviews, the
ops lock, the clerk's lock and the kiosk's raised alarms.

The file is shared with the kiosk's uplink outbox and session counter (``uplink/outbox.py``,
``uplink/session.py``) and, over MQTT, its signed-command store (``uplink/commands.py``), as
lockerd shares ``locker.db``: an offline ticket's number, its row and
its ``ticket_issued_offline`` event commit in one transaction (``Outbox.append_in``), so the
event exists exactly when the number does.

Every commit is ``synchronous=FULL`` (the WAL is fsynced before ``transaction()`` returns): a
number is durable before it is printed, so a power cut can never hand it out again. The tables
are prefixed ``kiosk_`` and versioned in ``kiosk_schema`` (``uplink.schema.migrate_in``), because
``user_version`` is nobody's in a shared file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from kiosk.flows.base import KioskError
from uplink.schema import migrate_in

BUSY_TIMEOUT_MS: Final = 5000

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # version 1
    (
        """
        CREATE TABLE kiosk_offline_counters (
            category TEXT NOT NULL,
            service_day TEXT NOT NULL,
            last_number INTEGER NOT NULL,
            PRIMARY KEY (category, service_day)
        )
        """,
        # one row per number this kiosk handed out offline; booking_code marks a check-in
        """
        CREATE TABLE kiosk_offline_tickets (
            ticket_id TEXT PRIMARY KEY,
            service_day TEXT NOT NULL,
            category TEXT NOT NULL,
            number INTEGER NOT NULL,
            label TEXT NOT NULL,
            priority TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            identity_hash TEXT,
            booking_code TEXT UNIQUE,
            UNIQUE (service_day, category, number)
        )
        """,
        """
        CREATE TABLE kiosk_catalog (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            payload TEXT NOT NULL,
            fetched_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE kiosk_appointment_list (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            service_day TEXT NOT NULL,
            revision TEXT NOT NULL,
            generated_at TEXT NOT NULL,
            payload BLOB NOT NULL,
            received_at TEXT NOT NULL
        )
        """,
        # the hall's last answer about a ticket, for ticket.status while it cannot be reached
        """
        CREATE TABLE kiosk_known_tickets (
            ticket_id TEXT PRIMARY KEY,
            service_day TEXT NOT NULL,
            payload TEXT NOT NULL,
            seen_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE kiosk_prereviews (
            submission_key TEXT PRIMARY KEY,
            matter_code TEXT NOT NULL,
            phone TEXT,
            identity_hash TEXT,
            id_masked TEXT,
            name_masked TEXT,
            created_at TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'submitted', 'refused')),
            receipt_no TEXT,
            submitted_at TEXT,
            error_code TEXT,
            attempts INTEGER NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE kiosk_prereview_files (
            submission_key TEXT NOT NULL REFERENCES kiosk_prereviews (submission_key),
            position INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            file_name TEXT NOT NULL,
            upload_id TEXT NOT NULL UNIQUE,
            total_bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            chunk_bytes INTEGER NOT NULL,
            complete INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (submission_key, position)
        )
        """,
    ),
    # version 2: the ops lock (kiosk/services/commands.py); the row exists while it holds
    (
        """
        CREATE TABLE kiosk_ops_lock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            reason_zh TEXT NOT NULL,
            reason_en TEXT NOT NULL,
            where_instead_zh TEXT,
            where_instead_en TEXT,
            command_id TEXT NOT NULL,
            locked_at TEXT NOT NULL
        )
        """,
    ),
    # version 3: the clerk's lock (kiosk/services/staff_lock.py); the row exists while it holds
    (
        """
        CREATE TABLE kiosk_staff_lock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            staff_id TEXT NOT NULL,
            locked_at TEXT NOT NULL
        )
        """,
    ),
    # version 4: the kiosk's own alarms while they are raised (kiosk/services/backlog.py), so a
    # restart neither raises one twice nor forgets to clear it
    (
        """
        CREATE TABLE kiosk_alarms (
            alarm TEXT NOT NULL,
            subject TEXT NOT NULL,
            raised_at TEXT NOT NULL,
            detail TEXT NOT NULL,
            PRIMARY KEY (alarm, subject)
        )
        """,
    ),
)


class KioskStoreError(KioskError, RuntimeError):
    code = "kiosk_store_error"
    message_zh = "自助机存储故障，请联系工作人员。"
    message_en = "The kiosk's storage failed. Please contact staff."


class KioskStore:
    """One connection to ``kiosk.db`` under one lock, shared by the kiosk's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise KioskStoreError(f"cannot open {path}: {exc}") from exc
        try:
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise KioskStoreError(f"{path} refused WAL mode (got {mode!r})")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            with self.transaction() as conn:
                migrate_in(conn, "kiosk", MIGRATIONS, KioskStoreError)
        except sqlite3.Error as exc:
            self.conn.close()
            raise KioskStoreError(f"cannot open {path}: {exc}") from exc
        except BaseException:
            self.conn.close()
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, fsynced before this returns; rolled back on
        any exception."""
        with self.lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
            return row

    def all(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self.lock:
            return list(self.conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self.lock:
            self.conn.close()
