"""The scanner interface and the part every backend shares: classify, log safely, deliver.

A backend only turns its transport into raw scans and calls ``_deliver_text`` or
``_deliver_bytes``. Delivery classifies the scan, logs its kind and length (never its content),
then calls ``when_scanned`` / ``when_rejected`` if set, otherwise queues it for ``read``.
Callbacks run on the backend's reader thread: a UI posts them on to its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Self

from drivers.scanner.errors import (
    ScanBadCharacters,
    ScannerOffline,
    ScannerTimeout,
    ScanRejected,
)
from drivers.scanner.formats import Scan, classify
from drivers.scanner.settings import ScannerSettings

log = logging.getLogger(__name__)


class Scanner(ABC):
    """What the kiosk sees of any scanner."""

    when_scanned: Callable[[Scan], None] | None
    when_rejected: Callable[[ScanRejected], None] | None
    when_connection: Callable[[bool], None] | None

    @abstractmethod
    def start(self) -> None:
        """Begin listening (opens the device in the background; never raises if it is absent)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop listening and release the device (ungrab, close)."""

    @abstractmethod
    def read(self, timeout_s: float | None = None) -> Scan:
        """The next scan. Raises its ``ScanRejected`` if it was refused, ``ScannerTimeout``."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """Whether the device is open right now (for telemetry and hwctl)."""

    @abstractmethod
    def wait_connected(self, timeout_s: float) -> None:
        """Return once the device is open; ``ScannerOffline`` if it is not within ``timeout_s``."""

    @property
    @abstractmethod
    def source(self) -> str:
        """Short name of where scans come from, e.g. ``evdev:/dev/input/event3``."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class BaseScanner(Scanner):
    def __init__(self, settings: ScannerSettings) -> None:
        self.settings = settings
        self.when_scanned = None
        self.when_rejected = None
        self.when_connection = None
        self._queue: queue.Queue[Scan | ScanRejected] = queue.Queue(maxsize=settings.queue_size)
        self._connected = False
        self._connected_event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle: backends with a reader thread override _run ---

    def _run(self, stop: threading.Event) -> None:
        return None

    def _has_reader(self) -> bool:
        return type(self)._run is not BaseScanner._run

    def start(self) -> None:
        if self._thread is not None or not self._has_reader():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run_guarded, name=f"scanner-{self.settings.backend}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run_guarded(self) -> None:
        try:
            self._run(self._stop)
        except Exception:
            # the reader must never die silently: the kiosk would just stop reacting to scans
            log.exception("scanner reader thread failed")
        finally:
            self._set_connected(False)

    # --- state ---

    @property
    def connected(self) -> bool:
        return self._connected

    def wait_connected(self, timeout_s: float) -> None:
        if not self._connected_event.wait(timeout_s):
            raise ScannerOffline(f"{self.source}: no scanner connected within {timeout_s} s")

    def _set_connected(self, value: bool) -> None:
        if value == self._connected:
            return
        self._connected = value
        if value:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        log.info("scanner %s %s", self.source, "connected" if value else "disconnected")
        callback = self.when_connection
        if callback is not None:
            self._call(callback, value)

    # --- delivery ---

    def read(self, timeout_s: float | None = None) -> Scan:
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            raise ScannerTimeout(f"no scan within {timeout_s} s") from None
        if isinstance(item, ScanRejected):
            raise item
        return item

    def _deliver_bytes(self, data: bytes, raw_length: int | None = None) -> None:
        length = len(data) if raw_length is None else raw_length
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            self._deliver(
                ScanBadCharacters(
                    f"scan of {length} bytes is not ASCII", raw_length=length, source=self.source
                )
            )
            return
        self._deliver_text(text, length)

    def _deliver_text(self, text: str, raw_length: int | None = None) -> None:
        try:
            item: Scan | ScanRejected = classify(
                text, self.settings.formats, source=self.source, raw_length=raw_length
            )
        except ScanRejected as exc:
            item = exc
        self._deliver(item)

    def _deliver(self, item: Scan | ScanRejected) -> None:
        if isinstance(item, Scan):
            log.info("scan accepted kind=%s length=%d", item.kind.value, item.raw_length)
            scanned = self.when_scanned
            if scanned is not None:
                self._call(scanned, item)
                return
        else:
            # length and reason only: the content of an unknown code may be personal data
            log.info("scan rejected reason=%s length=%d", item.code, item.raw_length)
            rejected = self.when_rejected
            if rejected is not None:
                self._call(rejected, item)
                return
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    @staticmethod
    def _call(callback: Callable[[object], None] | Callable[..., None], arg: object) -> None:
        try:
            callback(arg)
        except Exception:
            log.exception("scanner callback failed")
