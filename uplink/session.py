"""The durable session counter of one MQTT client and the boot id of this process.

docs/mqtt.md "Presence": the counter goes up by 1 before every connection attempt and the birth
and will of that connection carry it, so the hall can tell a late will from an old connection.
It must therefore be on disk (fsynced) before the CONNECT that uses it leaves: otherwise a power
cut could hand the same number to two connections. A tiny SQLite table does that atomically.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

from uplink.errors import UplinkError

_CREATE = (
    "CREATE TABLE IF NOT EXISTS uplink_session"
    " (client_id TEXT PRIMARY KEY, session INTEGER NOT NULL CHECK (session >= 0))"
)
_NEXT = (
    "INSERT INTO uplink_session (client_id, session) VALUES (?, 1)"
    " ON CONFLICT (client_id) DO UPDATE SET session = session + 1 RETURNING session"
)
_CURRENT = "SELECT session FROM uplink_session WHERE client_id = ?"


class SessionStoreError(UplinkError, RuntimeError):
    code = "uplink_session_error"


class SessionStore:
    """Session numbers for ``client_id`` in the SQLite file at ``path`` (shared by clients)."""

    def __init__(self, path: Path, client_id: str) -> None:
        self.path = path
        self.client_id = client_id
        # New at every process start: the hall tells a restart from a reconnect by it.
        self.boot_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(_CREATE)
        except (OSError, sqlite3.Error) as exc:
            raise SessionStoreError(f"cannot open session store {path}: {exc}") from exc

    def next_session(self) -> int:
        """Increment, commit with fsync, and return the new session number."""
        with self._lock:
            try:
                row = self._conn.execute(_NEXT, (self.client_id,)).fetchone()
            except sqlite3.Error as exc:
                raise SessionStoreError(f"next_session: {exc}") from exc
        return int(row[0])

    def current(self) -> int:
        """The last number handed out, 0 if none yet."""
        with self._lock:
            row = self._conn.execute(_CURRENT, (self.client_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
