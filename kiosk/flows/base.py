"""What every flow is made of: texts, background jobs, and the Flow base class.

A flow is a plain state machine. Screens read ``flow.state`` and ``flow.view`` and call the
flow's methods on touches; they hold no rules. A flow never blocks: slow work (printing, a hall
request, opening a bay) goes to a ``Worker``, and the flow shows ``busy`` until the job's
``done`` callback runs. The worker decides which thread ``done`` runs on: the Kivy worker posts
it through ``Clock.schedule_once`` (DESIGN §4 "UI thread"); ``InlineWorker`` runs it at once,
``QueueWorker`` hands it to the test's thread through ``pump()``.

Texts shown to the applicant are ``Msg`` (a gettext msgid, English, translated by the UI's
catalog) or ``Bilingual`` (both languages already, e.g. a hall or lockerd error). Flows never
hold a translated string, so switching language re-renders everything.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from hallkiosk.errors import HallkioskError

T = TypeVar("T")
S = TypeVar("S", bound=StrEnum)


class KioskError(HallkioskError):
    code = "kiosk_error"
    message_zh = "自助机暂时无法完成此操作，请联系工作人员。"
    message_en = "The kiosk cannot do this right now. Please contact staff."


class FlowStateError(KioskError, RuntimeError):
    """A method was called in a state where it means nothing (a screen bug, not the user's)."""

    code = "flow_state"


# -- texts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    """A gettext msgid (English source text) with ``str.format`` parameters."""

    msgid: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, msgid: str, **params: Any) -> Msg:
        return cls(msgid, tuple(sorted(params.items())))


@dataclass(frozen=True)
class Bilingual:
    """A text that arrives already in both languages (hall and lockerd errors)."""

    zh: str
    en: str

    @classmethod
    def from_error(cls, error: HallkioskError | Any) -> Bilingual:
        return cls(str(error.message_zh), str(error.message_en))


Text = Msg | Bilingual


@dataclass(frozen=True)
class Notice:
    """A message box: what happened, in plain words, and whether staff should be fetched."""

    text: Text
    code: str = ""
    call_staff: bool = False


# -- background jobs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class Worker(Protocol):
    def submit(self, job: Callable[[], T], done: Callable[[Outcome[T]], None]) -> None:
        """Run ``job`` off the UI thread; call ``done`` with its outcome on the UI thread."""
        ...


def _run(job: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=job())
    except Exception as exc:  # the flow decides what an error means
        return Outcome(error=exc)


class InlineWorker:
    """Runs the job at once on the caller's thread (flow tests that need no timing)."""

    def submit(self, job: Callable[[], T], done: Callable[[Outcome[T]], None]) -> None:
        done(_run(job))


class QueueWorker:
    """Runs jobs on a thread pool and queues the ``done`` calls for ``pump()``: the test's
    thread plays the UI thread, so a flow can be seen in its busy state."""

    def __init__(self, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kiosk-job")
        self._done: queue.Queue[Callable[[], None]] = queue.Queue()
        self._outstanding = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], T], done: Callable[[Outcome[T]], None]) -> None:
        with self._lock:
            self._outstanding += 1

        def run() -> None:
            outcome = _run(job)
            self._done.put(lambda: done(outcome))

        self._pool.submit(run)

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def pump(self, timeout_s: float = 10.0) -> int:
        """Wait for every submitted job (including ones submitted by ``done`` callbacks) and
        run their ``done`` calls here. Returns how many ran."""
        ran = 0
        while self._outstanding:
            call = self._done.get(timeout=timeout_s)
            with self._lock:
                self._outstanding -= 1
            call()
            ran += 1
        return ran

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# -- the flow base ----------------------------------------------------------------------------


Listener = Callable[["Flow[Any]"], None]


@dataclass
class FlowStatus:
    """What every flow shows besides its own view: a job in progress, or a notice."""

    busy: Text | None = None
    notice: Notice | None = None
    listeners: list[Listener] = field(default_factory=list)


class Flow(Generic[S]):
    """Base of every journey. Subclasses define ``State`` and their own view fields, and
    change state only through ``_go`` so listeners (the screen) see every change."""

    name = "flow"

    def __init__(self, worker: Worker, initial: S) -> None:
        self._worker = worker
        self._state = initial
        self._status = FlowStatus()
        self._generation = 0  # bumped on reset: a late job result for a wiped flow is dropped

    @property
    def state(self) -> S:
        return self._state

    @property
    def busy(self) -> Text | None:
        return self._status.busy

    @property
    def notice(self) -> Notice | None:
        return self._status.notice

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._status.listeners.append(listener)
        return lambda: self._status.listeners.remove(listener)

    def dismiss_notice(self) -> None:
        self._status.notice = None
        self._changed()

    def wipe(self) -> None:
        """Forget personal data (timeout, language reset, going home). Subclasses clear their
        own fields and call this last."""
        self._generation += 1
        self._status.busy = None
        self._status.notice = None
        self._changed()

    # -- for subclasses ----------------------------------------------------------------------

    def _require(self, *states: S) -> None:
        if self._state not in states:
            raise FlowStateError(f"{self.name}: not allowed in state {self._state.value}")

    def _go(self, state: S, notice: Notice | None = None) -> None:
        self._state = state
        self._status.notice = notice
        self._changed()

    def _notify(self, notice: Notice) -> None:
        self._status.notice = notice
        self._changed()

    def _changed(self) -> None:
        for listener in list(self._status.listeners):
            listener(self)

    def _job(
        self,
        busy: Text,
        job: Callable[[], T],
        done: Callable[[Outcome[T]], None],
    ) -> None:
        """Run ``job`` in the background showing ``busy``; ``done`` runs on the UI thread,
        unless the flow was wiped meanwhile."""
        if self._status.busy is not None:
            raise FlowStateError(f"{self.name}: a job is already running")
        generation = self._generation
        self._status.busy = busy
        self._changed()

        def finish(outcome: Outcome[T]) -> None:
            if generation != self._generation:
                return
            self._status.busy = None
            done(outcome)
            self._changed()

        self._worker.submit(job, finish)


# -- paging -----------------------------------------------------------------------------------


class Pager(Generic[T]):
    """A list shown a page at a time: fewer choices per page in elderly mode (大字版)."""

    def __init__(self, items: tuple[T, ...] = (), size: int = 6) -> None:
        if size < 1:
            raise ValueError("a page holds at least one item")
        self._items = items
        self._size = size
        self._index = 0

    @property
    def items(self) -> tuple[T, ...]:
        """Every item, not just this page's."""
        return self._items

    @property
    def page(self) -> tuple[T, ...]:
        start = self._index * self._size
        return self._items[start : start + self._size]

    @property
    def index(self) -> int:
        return self._index

    @property
    def count(self) -> int:
        """Pages in all (at least one, even when empty)."""
        return max(1, -(-len(self._items) // self._size))

    @property
    def has_next(self) -> bool:
        return self._index + 1 < self.count

    @property
    def has_prev(self) -> bool:
        return self._index > 0

    def next(self) -> None:
        if self.has_next:
            self._index += 1

    def prev(self) -> None:
        if self.has_prev:
            self._index -= 1

    def show(self, items: tuple[T, ...]) -> None:
        self._items = items
        self._index = 0

    def resize(self, size: int) -> None:
        """A new page size, keeping the first item shown now on the page shown next."""
        if size < 1:
            raise ValueError("a page holds at least one item")
        first = self._index * self._size
        self._size = size
        self._index = first // size


Item = TypeVar("Item")


class PagedFlow(Flow[S], Generic[S, Item]):
    """A flow that shows one list a page at a time (``self._pager``, set by the subclass):
    the page buttons and the session's page size (smaller in 大字版) are the same for all."""

    _pager: Pager[Item]

    def next_page(self) -> None:
        self._pager.next()
        self._changed()

    def prev_page(self) -> None:
        self._pager.prev()
        self._changed()

    def set_page_size(self, size: int) -> None:
        self._pager.resize(size)
        self._changed()
