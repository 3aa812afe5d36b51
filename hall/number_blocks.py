"""Ticket number blocks reserved ahead of need, synced off the request path.

A number may be handed out only once a synced write has reserved it, so that after a power cut
the hall skips the rest of the block instead of repeating a printed number (docs/hall.md
"Ticket numbers"). Syncing inline costs one fsync per ``number_block`` tickets, under the store
lock, on the request that crosses the block: that was the p99 of ``bench/ticket_rtt.py``.

``BlockReserver`` keeps each category's reservation ahead: when fewer than half a block is
left, a background thread extends ``reserved_upto`` in an ordinary commit under the store lock,
then fsyncs the WAL *outside* the lock, and only then raises ``durable_upto``, the in-memory
bound the issuing path trusts. The issuing path still reserves inline (synced) when it finds
no durable number left, so the reserver only ever takes work off the request path.

The same thread checkpoints the WAL. SQLite otherwise checkpoints inside the commit that finds
the WAL over ``wal_autocheckpoint`` pages (1000): it copies the WAL into the database file and,
at ``synchronous=NORMAL``, fsyncs both, so every ~150th ticket (or event) waited for two fsyncs
on the request path. While the reserver runs (the serving process, ``Hall.start()``), this
thread looks every ``CHECKPOINT_POLL_S`` at how many rows the store's connection has changed,
and after ``CHECKPOINT_CHANGES`` (about SQLite's 1000 pages) it runs a ``PASSIVE`` checkpoint on
a connection of its own, which never blocks a writer. The store's connection keeps its own
automatic checkpoint only as a backstop, at ``BACKSTOP_FACTOR`` times its threshold. Checkpoints
come about as often as before, so commits are as durable as before and the WAL about as long.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass

from hall.store import HallStore

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (category id, service day)
CHECKPOINT_POLL_S = 0.1
# rows the store's connection changed since the last checkpoint that call for the next one: a
# ticket changes 2 rows and adds about 7 pages to the WAL, so this is near SQLite's 1000 pages
CHECKPOINT_CHANGES = 250
BACKSTOP_FACTOR = 10


@dataclass
class ReserverStats:
    inline: int = 0  # reservations synced on the request path
    ahead: int = 0  # reservations synced by the background thread
    checkpoints: int = 0  # WAL checkpoints run by the background thread


class BlockReserver:
    def __init__(self, store: HallStore, block: int) -> None:
        self._store = store
        self._block = block
        self._durable_upto: dict[Key, int] = {}
        self._last: dict[Key, int] = {}
        self._wanted: set[Key] = set()
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._autocheckpoint: int | None = None  # the store connection's, while raised
        self._changes_seen = 0  # the store connection's total_changes at the last checkpoint
        self.stats = ReserverStats()

    # -- the issuing path (called under the store lock) ----------------------------------------

    def durable_upto(self, key: Key) -> int | None:
        """The highest number a synced write has reserved, as far as this process knows."""
        with self._cond:
            return self._durable_upto.get(key)

    def synced(self, key: Key, reserved_upto: int) -> None:
        """A synced commit (inline or at start) holds ``reserved_upto`` for ``key``."""
        with self._cond:
            if reserved_upto > self._durable_upto.get(key, 0):
                self._durable_upto[key] = reserved_upto

    def issued(self, key: Key, number: int, last: int) -> None:
        """``number`` was handed out; ask for the next block when half of this one is used."""
        with self._cond:
            durable = self._durable_upto.get(key, 0)
            if durable >= last or durable - number >= self._block // 2:
                return
            self._last[key] = last
            if self._thread is not None and key not in self._wanted:
                self._wanted.add(key)
                self._cond.notify()

    # -- the background thread -----------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            self._stop = False
        # checkpoints move to this thread (see the module docstring)
        self._checkpointer = self._store.connect_new()
        with self._store.lock:
            row = self._store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
            self._autocheckpoint = int(row[0])
            backstop = self._autocheckpoint * BACKSTOP_FACTOR
            self._store.conn.execute(f"PRAGMA wal_autocheckpoint={backstop}")
            self._changes_seen = self._store.conn.total_changes
        self._thread = threading.Thread(target=self._run, name="hall-numbers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._autocheckpoint is not None:
            # the store checkpoints in its commits as before (and when it closes)
            with self._store.lock, contextlib.suppress(sqlite3.ProgrammingError):
                self._store.conn.execute(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")
            self._autocheckpoint = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is wanted and no reservation is in flight (tests and benches)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._wanted and not self._busy, timeout_s)

    def _run(self) -> None:
        next_poll = time.monotonic() + CHECKPOINT_POLL_S
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._wanted or self._stop, max(0.0, next_poll - time.monotonic())
                )
                if self._stop:
                    return
                # every category that wants a block now: one commit and one fsync for all
                wanted = {key: self._last[key] for key in self._wanted}
                self._wanted.clear()
                self._busy = bool(wanted)
            if wanted:
                try:
                    self._extend(wanted)
                except Exception:
                    # the issuing path falls back to an inline synced reservation
                    log.exception("reserving ticket numbers ahead failed for %s", sorted(wanted))
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + CHECKPOINT_POLL_S
                try:
                    self._checkpoint()
                except Exception:
                    # the WAL only grows until the next try; nothing is lost
                    log.exception("WAL checkpoint failed")

    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint once the store's connection has changed enough rows."""
        conn = self._checkpointer
        if conn is None:
            return
        changes = self._store.conn.total_changes  # thread-safe: a counter SQLite keeps
        if changes - self._changes_seen < CHECKPOINT_CHANGES:
            return
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self._changes_seen = changes
        self.stats.checkpoints += 1

    def _extend(self, wanted: dict[Key, int]) -> None:
        """Extend the reservation of every key in ``wanted`` (key -> the category's last
        number) in one commit, then sync once."""
        targets: dict[Key, int] = {}
        with self._store.transaction() as conn:
            for key, last in wanted.items():
                category, day = key
                row = conn.execute(
                    "SELECT next_number, reserved_upto FROM ticket_counters"
                    " WHERE category = ? AND service_day = ?",
                    (category, day),
                ).fetchone()
                if row is None:
                    continue
                target = min(last, max(row["reserved_upto"], row["next_number"] - 1) + self._block)
                if target > row["reserved_upto"]:
                    conn.execute(
                        "UPDATE ticket_counters SET reserved_upto = ?"
                        " WHERE category = ? AND service_day = ?",
                        (target, category, day),
                    )
                else:
                    target = row["reserved_upto"]
                targets[key] = target
        if not targets:
            return
        # outside the store lock: requests go on while the disk syncs; the commit above is in
        # the WAL, so this fsync makes it (and every earlier commit) survive a power cut
        self._store.sync_wal()
        with self._cond:
            self.stats.ahead += len(targets)
        for key, target in targets.items():
            self.synced(key, target)
