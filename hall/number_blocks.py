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
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from hall.store import HallStore

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (category id, service day)


@dataclass
class ReserverStats:
    inline: int = 0  # reservations synced on the request path
    ahead: int = 0  # reservations synced by the background thread


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
        self._thread = threading.Thread(target=self._run, name="hall-numbers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is wanted and no reservation is in flight (tests and benches)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._wanted and not self._busy, timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted or self._stop)
                if self._stop:
                    return
                key = self._wanted.pop()
                last = self._last[key]
                self._busy = True
            try:
                self._extend(key, last)
            except Exception:
                # the issuing path falls back to an inline synced reservation
                log.exception("reserving ticket numbers ahead failed for %s", key)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _extend(self, key: Key, last: int) -> None:
        category, day = key
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT next_number, reserved_upto FROM ticket_counters"
                " WHERE category = ? AND service_day = ?",
                (category, day),
            ).fetchone()
            if row is None:
                return
            target = min(last, max(row["reserved_upto"], row["next_number"] - 1) + self._block)
            if target > row["reserved_upto"]:
                conn.execute(
                    "UPDATE ticket_counters SET reserved_upto = ?"
                    " WHERE category = ? AND service_day = ?",
                    (target, category, day),
                )
            else:
                target = row["reserved_upto"]
        # outside the store lock: requests go on while the disk syncs; the commit above is in
        # the WAL, so this fsync makes it (and every earlier commit) survive a power cut
        self._store.sync_wal()
        with self._cond:
            self.stats.ahead += 1
        self.synced(key, target)
