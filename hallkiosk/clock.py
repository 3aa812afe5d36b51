"""The one clock object. Business time is always timezone-aware in the hall's zone.

Tests move a ``ManualClock``; production uses ``SystemClock``. Monotonic time (for timeouts and
intervals) is separate from wall time, because wall time can jump when NTP syncs.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    tz: tzinfo

    def now(self) -> datetime:
        """Aware wall-clock time in the hall's time zone."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""
        ...


class SystemClock:
    def __init__(self, tz: str | tzinfo = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock tests move by hand. Wall and monotonic time advance together."""

    def __init__(self, start: datetime, tz: str | tzinfo = "Asia/Shanghai") -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._now = start.astimezone(self.tz)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds


def utc_iso(moment: datetime) -> str:
    """The one way times are stored in SQLite: UTC ISO-8601 with microseconds, so text order is
    time order (locker, outbox and command tables alike)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
