"""The clerk's lock: a kiosk a clerk took out of service from staff mode stays out of service
across a restart (a power cut, the systemd watchdog) until a clerk unlocks it.

    staff_lock = StaffLock(store, clock)    # restores the lock found in kiosk.db
    staff_lock.lock("clerk7")               # fsynced before it returns: then the screen says so
    staff_lock.state()                      # StaffLockState(staff_id, since) or None
    staff_lock.unlock("clerk7")

It is kept in ``kiosk.db`` (``kiosk_staff_lock``, one row while it holds), apart from the ops
lock (kiosk/services/commands.py): each is lifted only by whoever set it (docs/kiosk.md "Out of
service"). The row records the staff id of the card that locked the kiosk and when, nothing
about any applicant. The staff journey (kiosk/flows/staff.py) calls ``lock``/``unlock`` on its
worker thread and hands over to the session only after the change is on disk; the session
(kiosk/flows/session.py) reads ``state()`` on the UI thread when it starts and whenever it goes
home. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hallkiosk.clock import Clock, utc_iso

if TYPE_CHECKING:  # the flows import this module: keep SQLite out of their import
    from kiosk.services.store import KioskStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaffLockState:
    """A clerk's lock in force: whose staff card locked the kiosk, and when."""

    staff_id: str
    since: str  # UTC, ISO 8601


class StaffLock:
    """The clerk's lock, persisted in ``kiosk.db``; readable from any thread."""

    def __init__(self, store: KioskStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._state = self._load()
        if self._state is not None:
            log.warning(
                "kiosk is locked by staff %s since %s", self._state.staff_id, self._state.since
            )

    def state(self) -> StaffLockState | None:
        with self._lock:
            return self._state

    @property
    def locked(self) -> bool:
        return self.state() is not None

    def lock(self, staff_id: str) -> StaffLockState:
        """Lock (a clerk locking a locked kiosk becomes the one on record); durable before it
        returns. Raises ``KioskStoreError`` when it could not be written: then nothing changed."""
        if not staff_id:
            raise ValueError("a staff lock needs the staff id of the card that set it")
        state = StaffLockState(staff_id, utc_iso(self._clock.now()))
        with self._lock:
            with self._store.transaction() as conn:
                conn.execute(
                    "INSERT INTO kiosk_staff_lock (id, staff_id, locked_at) VALUES (1, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET staff_id = excluded.staff_id,"
                    " locked_at = excluded.locked_at",
                    (state.staff_id, state.since),
                )
            self._state = state
        log.warning("kiosk locked by staff %s", staff_id)
        return state

    def unlock(self, staff_id: str) -> StaffLockState | None:
        """Lift the clerk's lock (any clerk may); returns the lock that was in force (None:
        there was none). Durable before it returns."""
        with self._lock:
            was = self._state
            with self._store.transaction() as conn:
                conn.execute("DELETE FROM kiosk_staff_lock WHERE id = 1")
            self._state = None
        if was is not None:
            log.warning("kiosk unlocked by staff %s (locked by %s)", staff_id, was.staff_id)
        return was

    def _load(self) -> StaffLockState | None:
        row = self._store.one("SELECT staff_id, locked_at FROM kiosk_staff_lock WHERE id = 1")
        if row is None:
            return None
        return StaffLockState(row["staff_id"], row["locked_at"])
