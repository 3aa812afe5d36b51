"""Debounce and hold timing, done by us and not by the pin factory.

gpiozero's ``bounce_time`` means different things per factory (RPi.GPIO ignores edges for a while
after one, which can lose the final level; lgpio wants the level stable; MockPin ignores it), so
each input here keeps its own filter: a level counts only once it has held for ``bounce_s``.
That gives one behaviour on a Pi 4, a Pi 5 and the mock, and the mock tests the real code path.

``InputFilter`` is the pure rule (times passed in). ``EventPump`` is one thread per board that
feeds raw edges to the filters and runs the user callbacks when levels settle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)


class Change(StrEnum):
    ACTIVATED = "activated"
    DEACTIVATED = "deactivated"
    HELD = "held"


class InputFilter:
    """Debounced logical level of one input, plus an optional "held for hold_s" event."""

    def __init__(self, *, active: bool, bounce_s: float, hold_s: float | None = None) -> None:
        self.stable = active  # the debounced level; the starting level raises no event
        self._raw = active
        self._bounce_s = bounce_s
        self._hold_s = hold_s
        self._settle_at: float | None = None
        self._hold_at: float | None = None

    def edge(self, active: bool, now: float) -> None:
        """A raw level change: every edge restarts the settling time."""
        self._raw = active
        self._settle_at = now + self._bounce_s

    def poll(self, now: float) -> list[Change]:
        changes: list[Change] = []
        if self._settle_at is not None and now >= self._settle_at:
            settled_at, self._settle_at = self._settle_at, None
            if self._raw != self.stable:
                self.stable = self._raw
                changes.append(Change.ACTIVATED if self.stable else Change.DEACTIVATED)
                if self.stable and self._hold_s is not None:
                    self._hold_at = settled_at + self._hold_s
                else:
                    self._hold_at = None
        # a release still settling must not count as a hold; a glitch that settles back does
        if self._hold_at is not None and now >= self._hold_at and self._raw and self.stable:
            self._hold_at = None
            changes.append(Change.HELD)
        return changes

    def next_deadline(self) -> float | None:
        times = [t for t in (self._settle_at, self._hold_at) if t is not None]
        return min(times) if times else None


Dispatch = Callable[[Change, float], None]


class EventPump:
    """The board's event thread. Raw edges arrive on gpiozero's (or lgpio's) thread and only
    update a filter under a lock; callbacks run here, one at a time, never under that lock."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._inputs: list[tuple[InputFilter, Dispatch]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="gpio-events", daemon=True)

    def add(self, flt: InputFilter, dispatch: Dispatch) -> Callable[[bool], None]:
        """Register a filter; returns the edge sink to hook onto the device."""
        with self._cond:
            self._inputs.append((flt, dispatch))

        def sink(active: bool) -> None:
            with self._cond:
                flt.edge(active, self._monotonic())
                self._cond.notify()

        return sink

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                due: list[tuple[Dispatch, Change, float]] = []
                while not due:
                    if self._stopping:
                        return
                    now = self._monotonic()
                    for flt, dispatch in self._inputs:
                        due.extend((dispatch, change, now) for change in flt.poll(now))
                    if not due:
                        deadlines = [
                            d for f, _ in self._inputs if (d := f.next_deadline()) is not None
                        ]
                        timeout = max(0.0, min(deadlines) - now) if deadlines else None
                        self._cond.wait(timeout)
            for dispatch, change, at in due:
                try:
                    dispatch(change, at)
                except Exception:
                    # one broken callback must not stop door events for everyone else
                    log.exception("GPIO callback failed for %s", change)
