"""``KivyWorker``: the ``Worker`` flows use in the app. Jobs run on a small thread pool; each
job's ``done`` is posted to the Kivy main thread with ``Clock.schedule_once``, so flows change
state (and screens render) only on that thread (DESIGN §4 "UI thread")."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from kivy.clock import Clock

from kiosk.flows.base import Outcome

T = TypeVar("T")


class KivyWorker:
    def __init__(self, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kiosk-job")

    def submit(self, job: Callable[[], T], done: Callable[[Outcome[T]], None]) -> None:
        def run() -> None:
            try:
                outcome: Outcome[T] = Outcome(value=job())
            except Exception as exc:  # the flow decides what an error means
                outcome = Outcome(error=exc)
            Clock.schedule_once(lambda _dt: done(outcome))

        self._pool.submit(run)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
