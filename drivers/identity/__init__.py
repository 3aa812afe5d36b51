"""Identity readers: one interface over the GA 467 SAM reader, PC/SC readers and a simulator.

    reader = open_reader(IdentityReaderSettings(reader="pcsc"), hasher)
    identity = reader.read(timeout_s=10.0)     # Identity: keyed hash + masked fields only
    reader.start_watch(WatchCallbacks(on_inserted=..., on_removed=..., on_error=...))
    staff = reader.verify_staff_pin("123456")  # PC/SC staff cards; typed errors otherwise
    reader.close()

Watch callbacks run on the reader's own thread: a kiosk posts them to the Kivy main thread
(``Clock.schedule_once``) and never touches widgets there. ``on_inserted`` carries the identity
already read; ``on_removed`` follows every card that was seen, read or not; ``on_error`` reports
each new fault once (pcscd down, no reader, an unreadable card) and ``on_ready`` the recovery.

Backends are chosen by ``IdentityReaderSettings.reader``; pyscard and the GA 467 driver are
imported only when their backend is opened.
"""

from __future__ import annotations

import importlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from drivers.identity.errors import (
    CardInvalid,
    CardReadFailed,
    IdentityReaderError,
    NoCard,
    ReaderOffline,
    ReaderTimeout,
)
from drivers.identity.pcsc.errors import (
    StaffPinBlocked,
    StaffPinError,
    StaffPinFormat,
    StaffPinWrong,
)
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity, IdentitySource
from hallkiosk.config import StrictModel
from hallkiosk.privacy import IdentityHasher

log = logging.getLogger(__name__)

__all__ = [
    "CardInserted",
    "CardInvalid",
    "CardReadFailed",
    "CardRemoved",
    "Identity",
    "IdentityReader",
    "IdentityReaderError",
    "IdentityReaderSettings",
    "IdentitySource",
    "NoCard",
    "PcscSettings",
    "PollingWatch",
    "ReaderOffline",
    "ReaderReady",
    "ReaderStatus",
    "ReaderTimeout",
    "SimSettings",
    "StaffPinBlocked",
    "StaffPinError",
    "StaffPinFormat",
    "StaffPinWrong",
    "WatchCallbacks",
    "open_reader",
]


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardInserted:
    reader: str  # PC/SC reader name, "ga467" or "sim"
    identity: Identity
    atr: str | None = None  # upper-case hex where the backend has one


@dataclass(frozen=True)
class CardRemoved:
    reader: str


@dataclass(frozen=True)
class ReaderReady:
    """The reader is usable: at start, and again after pcscd or the reader came back."""

    readers: tuple[str, ...]


@dataclass(frozen=True)
class WatchCallbacks:
    on_inserted: Callable[[CardInserted], None]
    on_removed: Callable[[CardRemoved], None]
    on_error: Callable[[IdentityReaderError], None]
    on_ready: Callable[[ReaderReady], None] | None = None


@dataclass(frozen=True)
class ReaderStatus:
    """For hwctl and telemetry ("reader presence"). ``detail`` is a stable code or a status."""

    online: bool
    detail: str
    readers: tuple[str, ...] = ()
    card_present: bool = False


# -- the interface ---------------------------------------------------------------------------


class IdentityReader(ABC):
    """One identity reader. Thread-safe: a watch and direct reads may run together."""

    @abstractmethod
    def read(self, timeout_s: float) -> Identity:
        """Wait up to ``timeout_s`` for a card and read it. NoCard when none came."""

    @abstractmethod
    def start_watch(self, callbacks: WatchCallbacks) -> None:
        """Report cards coming and going until ``stop_watch``; recovers from faults itself."""

    @abstractmethod
    def stop_watch(self) -> None: ...

    @abstractmethod
    def status(self) -> ReaderStatus: ...

    def verify_staff_pin(self, pin: str, timeout_s: float = 2.0) -> Identity:
        """Check a staff card's PIN; the staff identity on success. Typed StaffPin* errors."""
        raise StaffPinError(
            "this reader cannot check a staff card PIN",
            code="staff_pin_unsupported",
            message_zh="此读卡器不支持工作证登录，请联系工作人员。",
            message_en="This reader cannot log staff in. Please contact staff.",
        )

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def call_safely(callback: Callable[[Any], None] | None, event: object) -> None:
    """Run a watch callback; a bug in the kiosk's handler must not kill the watch thread."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        log.exception("identity watch callback %r failed", callback)


class PollingWatch:
    """A watch for readers without card events (GA 467): poll ``read`` and diff the result."""

    def __init__(
        self,
        read: Callable[[float], Identity],
        reader: str,
        callbacks: WatchCallbacks,
        *,
        poll_s: float,
    ) -> None:
        self._read = read
        self._reader = reader
        self._callbacks = callbacks
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{reader}-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        current: Identity | None = None
        seen = False  # a card (read or not) is in the field
        last_error: str | None = None
        while not self._stop.is_set():
            try:
                identity = self._read(self._poll_s)
            except NoCard:
                if seen:
                    call_safely(self._callbacks.on_removed, CardRemoved(self._reader))
                current, seen = None, False
                if last_error is not None:
                    last_error = None
                    call_safely(self._callbacks.on_ready, ReaderReady((self._reader,)))
            except (ReaderOffline, ReaderTimeout) as exc:
                if seen:
                    call_safely(self._callbacks.on_removed, CardRemoved(self._reader))
                current, seen = None, False
                if exc.code != last_error:
                    last_error = exc.code
                    call_safely(self._callbacks.on_error, exc)
                self._stop.wait(self._poll_s)
            except IdentityReaderError as exc:  # a card is there but cannot be read
                if not seen or exc.code != last_error:
                    call_safely(self._callbacks.on_error, exc)
                seen, last_error = True, exc.code
                self._stop.wait(self._poll_s)
            else:
                if last_error is not None and not seen:
                    call_safely(self._callbacks.on_ready, ReaderReady((self._reader,)))
                last_error = None
                if identity != current:
                    if seen:
                        call_safely(self._callbacks.on_removed, CardRemoved(self._reader))
                    call_safely(self._callbacks.on_inserted, CardInserted(self._reader, identity))
                current, seen = identity, True
                self._stop.wait(self._poll_s)


# -- settings --------------------------------------------------------------------------------


class SimSettings(StrictModel):
    """``[kiosk.identity.sim]``: the in-process simulator (synthetic virtual cards)."""

    card: Literal["none", "idcard", "citizen", "staff"] = "none"  # in the field at start


class IdentityReaderSettings(StrictModel):
    """``[kiosk.identity]``: which backend, and its sub-table."""

    reader: Literal["ga467", "pcsc", "sim"] = "sim"
    pcsc: PcscSettings = PcscSettings()  # also the card profiles the simulator uses
    sim: SimSettings = SimSettings()
    # The GA 467 driver's own table, validated by its Ga467Settings when reader = "ga467".
    ga467: dict[str, Any] = Field(default_factory=dict)
    # The GA 467 protocol has no card events: the watch polls a read this often.
    ga467_poll_ms: Annotated[int, Field(ge=100, le=5_000)] = 500

    @model_validator(mode="after")
    def _ga467_table(self) -> IdentityReaderSettings:
        if self.reader == "ga467":
            _ga467_settings(self.ga467)  # a bad table fails at config load, not at first read
        return self


def _ga467_settings(table: dict[str, Any]) -> Any:
    try:
        module = importlib.import_module("drivers.identity.ga467.settings")
    except ImportError as exc:
        raise ValueError(f"reader = 'ga467' but the GA 467 driver is missing: {exc}") from None
    return module.Ga467Settings.model_validate(table)


# -- the factory -----------------------------------------------------------------------------


def open_reader(settings: IdentityReaderSettings, hasher: IdentityHasher) -> IdentityReader:
    """An opened reader of the configured kind. The caller closes it."""
    if settings.reader == "pcsc":
        from drivers.identity.pcsc.reader import PcscReader  # noqa: PLC0415 - pyscard lazily

        return PcscReader(settings.pcsc, hasher)
    if settings.reader == "sim":
        from drivers.identity.vcard.sim import SimIdentityReader  # noqa: PLC0415

        return SimIdentityReader(settings.sim, settings.pcsc, hasher)
    # the GA 467 driver is imported by name so this package never depends on it being there
    reader_module = importlib.import_module("drivers.identity.ga467.reader")
    inner = reader_module.Ga467Reader(_ga467_settings(settings.ga467), hasher)
    inner.open()
    return Ga467IdentityReader(inner, poll_s=settings.ga467_poll_ms / 1000)


class Ga467IdentityReader(IdentityReader):
    """Adapts ``drivers.identity.ga467.reader.Ga467Reader`` (open/close/sam_status/read)."""

    def __init__(self, inner: Any, *, poll_s: float) -> None:
        self._inner = inner
        self._poll_s = poll_s
        self._lock = threading.Lock()  # one serial exchange at a time: watch and direct reads
        self._watch: PollingWatch | None = None

    def read(self, timeout_s: float) -> Identity:
        with self._lock:
            identity: Identity = self._inner.read(timeout_s)
            return identity

    def start_watch(self, callbacks: WatchCallbacks) -> None:
        self.stop_watch()
        self._watch = PollingWatch(self.read, "ga467", callbacks, poll_s=self._poll_s)
        self._watch.start()

    def stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    def status(self) -> ReaderStatus:
        try:
            with self._lock:
                sam = str(self._inner.sam_status())
        except IdentityReaderError as exc:
            return ReaderStatus(online=False, detail=exc.code)
        return ReaderStatus(online=True, detail=sam, readers=("ga467",))

    def close(self) -> None:
        self.stop_watch()
        self._inner.close()
