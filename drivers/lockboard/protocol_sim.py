"""pyserial URL handler for ``sim://``: a lock-board bus simulated in-process.

    register()
    port = serial.serial_for_url("sim://8a80?boards=1,2&channels=16&feedback_open=set&reply=1")
    port.sim.jam(1, 3)            # the SimBus behind the port, for hooks and records

Options (all optional): ``boards`` (comma list; default 1 for 8a80, 0 for kerong), ``channels``
(16), ``feedback_open`` (set|clear), ``reply`` (1|0), ``status_bytes`` (3), ``auto_person``
(1|0), ``pull_after_ms``, ``close_after_ms``, ``release_window_ms``, ``open_all_step_ms``.
Replies become readable only at their due time. The SimBus is made on the first ``open`` and
kept across close and reopen of the same port object, like boards that stay powered.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from drivers.lockboard.settings import Protocol
from drivers.lockboard.sim.model import SimBus

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

HANDLER_PACKAGE = "drivers.lockboard"
TICK_INTERVAL_S = 0.01
_INT_OPTIONS = (
    "channels",
    "status_bytes",
    "pull_after_ms",
    "close_after_ms",
    "release_window_ms",
    "open_all_step_ms",
)


def register() -> None:
    """Make ``serial.serial_for_url`` find this module for ``sim://`` URLs."""
    if HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def sim_from_url(url: str) -> SimBus:
    """Build the SimBus a ``sim://`` URL describes; SerialException if the URL is wrong."""
    parts = urllib.parse.urlsplit(url)
    family = parts.netloc.lower()
    if parts.scheme.lower() != "sim" or family not in ("8a80", "kerong"):
        raise SerialException(f"expected sim://8a80?... or sim://kerong?..., not {url!r}")
    protocol: Protocol = "8a80" if family == "8a80" else "kerong"
    kwargs: dict[str, Any] = {}
    boards = [1] if protocol == "8a80" else [0]
    channels = 16
    try:
        for name, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
            value = values[-1]
            if name == "boards":
                boards = [int(part) for part in value.split(",") if part]
            elif name == "channels":
                channels = int(value)
            elif name in _INT_OPTIONS:
                kwargs[name] = int(value)
            elif name == "feedback_open":
                if value not in ("set", "clear"):
                    raise ValueError("feedback_open must be set or clear")
                kwargs[name] = value
            elif name in ("reply", "auto_person"):
                if value not in ("0", "1"):
                    raise ValueError(f"{name} must be 0 or 1")
                kwargs["expect_reply" if name == "reply" else name] = value == "1"
            else:
                raise ValueError(f"unknown option {name!r}")
        return SimBus(protocol, boards, channels, **kwargs)
    except ValueError as exc:
        raise SerialException(f"bad sim:// URL {url!r}: {exc}") from exc


class Serial(SerialBase):
    """A serial port whose far end is a ``SimBus``. Line settings are accepted and ignored."""

    BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # set before SerialBase.__init__, which opens the port when given one
        self._sim: SimBus | None = None
        self._sim_url: str | None = None
        self._cond = threading.Condition()
        self._pending: list[tuple[float, int, bytes]] = []  # (due_s, seq, reply) not yet due
        self._ready = bytearray()  # arrived, not yet read
        self._seq = itertools.count()
        self._read_cancelled = False
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None
        super().__init__(*args, **kwargs)

    @property
    def sim(self) -> SimBus:
        """The simulated bus; exists from the first ``open``."""
        if self._sim is None:
            raise SerialException("sim:// port was never opened")
        return self._sim

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self._sim is None or self._sim_url != self.port:
            self._sim = sim_from_url(self.port)
            self._sim_url = self.port
        with self._cond:
            self._pending.clear()
            self._ready.clear()
        self._ticker_stop = threading.Event()
        self._ticker = threading.Thread(
            target=self._tick_loop, args=(self._sim, self._ticker_stop), daemon=True
        )
        self._ticker.start()
        self.is_open = True

    def close(self) -> None:
        if not self.is_open:
            return
        self.is_open = False
        self._ticker_stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=1)
        self._ticker = None

    # -- data -------------------------------------------------------------------------------

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes; blocks until then or until ``timeout`` (None: forever)."""
        if not self.is_open:
            raise PortNotOpenError()
        if size < 0:
            size = self.in_waiting  # "read everything": what has arrived, without waiting
        timeout_s = self.timeout
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        out = bytearray()
        with self._cond:
            self._read_cancelled = False
            while True:
                self._promote_due()
                take = min(size - len(out), len(self._ready))
                out += self._ready[:take]
                del self._ready[:take]
                now = time.monotonic()
                if len(out) >= size or not self.is_open or self._read_cancelled:
                    break
                if deadline is not None and now >= deadline:
                    break
                waits = [self._pending[0][0] - now] if self._pending else []
                if deadline is not None:
                    waits.append(deadline - now)
                self._cond.wait(max(0.0, min(waits)) if waits else None)
        return bytes(out)

    def write(self, b: ReadableBuffer, /) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        data = bytes(b)
        replies = self.sim.handle(data)
        with self._cond:
            for due_s, reply in replies:
                heapq.heappush(self._pending, (due_s, next(self._seq), reply))
            self._cond.notify_all()
        return len(data)

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        with self._cond:
            self._promote_due()
            return len(self._ready)

    @property
    def out_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return 0  # writes reach the simulated boards at once

    def reset_input_buffer(self) -> None:
        """Drop what has arrived; replies still on their way arrive later, as on a real line."""
        if not self.is_open:
            raise PortNotOpenError()
        with self._cond:
            self._promote_due()
            self._ready.clear()

    def reset_output_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    def cancel_read(self) -> None:
        with self._cond:
            self._read_cancelled = True
            self._cond.notify_all()

    def cancel_write(self) -> None:
        """Writes never block, so there is nothing to cancel."""

    # -- line settings and modem lines: nothing to do on a simulated line -------------------

    def _reconfigure_port(self, force_update: bool = False) -> None:
        """Baud rate and framing do not matter to the simulator."""

    def _update_rts_state(self) -> None:
        """RTS is not wired on the simulated bus."""

    def _update_dtr_state(self) -> None:
        """DTR is not wired on the simulated bus."""

    def _update_break_state(self) -> None:
        """A break is not simulated."""

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True

    # -- internals --------------------------------------------------------------------------

    def _promote_due(self) -> None:
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            self._ready += heapq.heappop(self._pending)[2]

    @staticmethod
    def _tick_loop(sim: SimBus, stop: threading.Event) -> None:
        # physics runs even while the host is silent, so a snapshot never lags far behind
        while not stop.wait(TICK_INTERVAL_S):
            sim.tick()
