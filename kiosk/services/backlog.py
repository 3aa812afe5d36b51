"""The ``outbox_over_limit`` alarm: the kiosk's unsent backlog passed its written bound, as
lockerd raises it for its own outbox (locker/hall_link.py).

    alarm = BacklogAlarm(store, events, clock, subject="kiosk-01.kiosk", limit_rows=10_000)
    alarm.check()        # any thread; the telemetry calls it before every snapshot

The bound is ``[kiosk.offline] outbox_alarm_rows``; the outbox is opened with the same number as
its ``max_business_rows``, so ``Backlog.over_limit`` is this bound. Nothing is ever dropped: past
the bound every event is still recorded and sent in order once the hall can be reached; the
alarm only tells staff that the link has been down long (docs/operations.md).

- Raised once, when the backlog (events the broker, or the embedded hall, has not taken) is over
  the bound: one ``alarm`` event ``{alarm: "outbox_over_limit", subject, active: true, events,
  limit_rows}``. Further checks while it holds record nothing.
- Cleared once the backlog is below the bound again: the same with ``active: false``. "Below",
  not "at": the clearing event is itself in the backlog and must not put it over the bound.
- The raised state is kept in ``kiosk.db`` (``kiosk_alarms``) in the same transaction as the
  event (``Outbox.append_in``), so a restart neither raises it a second time nor forgets to
  clear it.

The alarm event travels through the same outbox, behind the backlog it reports: the hall learns
of it when the link is back (as with lockerd); until then the kiosk's log says so.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Final

from hallkiosk.clock import Clock, utc_iso
from kiosk.services.events import OutboxEvents
from kiosk.services.store import KioskStore

log = logging.getLogger(__name__)

ALARM: Final = "outbox_over_limit"


class BacklogAlarm:
    """Raises and clears ``outbox_over_limit`` for one outbox; thread-safe."""

    def __init__(
        self,
        store: KioskStore,
        events: OutboxEvents,
        clock: Clock,
        *,
        subject: str,
        limit_rows: int,
    ) -> None:
        if limit_rows < 1:
            raise ValueError(f"limit_rows must be at least 1, not {limit_rows}")
        self._store = store
        self._events = events
        self._clock = clock
        self.subject = subject
        self.limit_rows = limit_rows
        self._lock = threading.Lock()
        row = store.one(
            "SELECT raised_at FROM kiosk_alarms WHERE alarm = ? AND subject = ?", ALARM, subject
        )
        self._raised = row is not None

    @property
    def raised(self) -> bool:
        with self._lock:
            return self._raised

    def check(self) -> bool | None:
        """Compare the backlog with the bound; raise or clear the alarm when that changed.
        Returns True when it was raised now, False when cleared now, None when nothing was
        recorded. Never raises: a check that fails (e.g. a full disk) is logged and the next
        one tries again."""
        with self._lock:
            try:
                backlog = self._events.outbox.backlog()
                if not self._raised and backlog.over_limit:
                    self._record(True, backlog.events)
                    self._raised = True
                    log.warning(
                        "alarm %s: %d events wait for the hall (bound %d); none is dropped",
                        ALARM,
                        backlog.events,
                        self.limit_rows,
                    )
                    return True
                if self._raised and backlog.events < self.limit_rows:
                    self._record(False, backlog.events)
                    self._raised = False
                    log.warning("alarm %s cleared: %d events wait", ALARM, backlog.events)
                    return False
            except Exception:
                log.exception("the outbox backlog alarm could not be checked")
                return None
        return None

    def _record(self, active: bool, events: int) -> None:
        detail: dict[str, Any] = {"events": events, "limit_rows": self.limit_rows}
        with self._store.transaction() as conn:
            if active:
                conn.execute(
                    "INSERT OR IGNORE INTO kiosk_alarms (alarm, subject, raised_at, detail)"
                    " VALUES (?, ?, ?, ?)",
                    (ALARM, self.subject, utc_iso(self._clock.now()), json.dumps(detail)),
                )
            else:
                conn.execute(
                    "DELETE FROM kiosk_alarms WHERE alarm = ? AND subject = ?",
                    (ALARM, self.subject),
                )
            data = {"alarm": ALARM, "subject": self.subject, "active": active, **detail}
            self._events.outbox.append_in(conn, "alarm", data)
        self._events.recorded()
