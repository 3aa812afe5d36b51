"""Serial-line scanners: one scan per line, opened with ``serial.serial_for_url``.

A device path, a pty, ``loop://`` or ``spy://`` all work unchanged. A line that never ends is
cut after ``max_length + 1`` bytes and only counted from then on; a partial line followed by
silence is delivered as it is (the classifier decides). A lost port is reopened every
``reconnect_interval_ms``.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import serial

from drivers.scanner.base import BaseScanner
from drivers.scanner.settings import LineEnd, ScannerSettings

log = logging.getLogger(__name__)

# what a serial port raises when the adapter or pty goes away (termios.error is no OSError)
LINK_ERRORS = (serial.SerialException, OSError, termios.error)
READ_CHUNK = 256

SerialFactory = Callable[[str, int], Any]


class RawLine(NamedTuple):
    data: bytes  # at most max_length + 1 bytes are kept
    length: int  # every byte received before the line end


class LineAssembler:
    """Bytes in, lines out. Pure: no port, no clock."""

    def __init__(self, *, line_end: LineEnd, max_length: int) -> None:
        self.line_end = line_end
        self.keep = max_length + 1
        self._buf = bytearray()
        self._length = 0
        self._prev = -1

    @property
    def pending(self) -> bool:
        return self._length > 0

    def feed(self, data: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        for byte in data:
            ends = self._ends_line(byte)
            self._prev = byte
            if ends:
                line = self.flush()
                if line is not None:
                    out.append(line)
                continue
            self._length += 1
            if len(self._buf) < self.keep:
                self._buf.append(byte)
        return out

    def _ends_line(self, byte: int) -> bool:
        if self.line_end == "any":
            return byte in (0x0D, 0x0A)
        if self.line_end == "cr":
            return byte == 0x0D
        if self.line_end == "lf":
            return byte == 0x0A
        # crlf: an LF right after a CR ends the line; that CR is no part of it
        if byte == 0x0A and self._prev == 0x0D:
            if self._length <= self.keep:
                del self._buf[-1]
            self._length -= 1
            return True
        return False

    def flush(self) -> RawLine | None:
        if not self._length:
            return None
        line = RawLine(bytes(self._buf), self._length)
        self._buf = bytearray()
        self._length = 0
        return line


def open_serial(url: str, baud: int) -> Any:
    return serial.serial_for_url(url, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=0)


class SerialScanner(BaseScanner):
    def __init__(
        self, settings: ScannerSettings, *, serial_factory: SerialFactory = open_serial
    ) -> None:
        super().__init__(settings)
        self._factory = serial_factory

    @property
    def source(self) -> str:
        return f"serial:{self.settings.serial.url}"

    def _run(self, stop: threading.Event) -> None:
        cfg = self.settings.serial
        announced = False
        while not stop.is_set():
            try:
                port = self._factory(cfg.url, cfg.baud)
            except LINK_ERRORS as exc:
                if not announced:
                    log.warning("scanner port %s cannot be opened (%s); retrying", cfg.url, exc)
                    announced = True
                stop.wait(self.settings.reconnect_interval_s)
                continue
            announced = False
            try:
                self._serve(port, stop)
            except LINK_ERRORS as exc:
                log.warning("scanner port %s went away (%s)", cfg.url, exc)
            finally:
                with contextlib.suppress(*LINK_ERRORS):
                    port.close()
                self._set_connected(False)
            stop.wait(self.settings.reconnect_interval_s)

    def _serve(self, port: Any, stop: threading.Event) -> None:
        assembler = LineAssembler(
            line_end=self.settings.serial.line_end, max_length=self.settings.formats.max_length
        )
        silence_s = self.settings.silence_end_s
        port.timeout = min(0.05, silence_s / 2)
        port.reset_input_buffer()  # bytes from before we listened belong to nobody
        self._set_connected(True)
        last_input = time.monotonic()
        while not stop.is_set():
            # one byte with a timeout, then whatever else is already waiting
            data = port.read(1)
            if data and port.in_waiting:
                data += port.read(min(port.in_waiting, READ_CHUNK))
            now = time.monotonic()
            if not data:
                if assembler.pending and now - last_input >= silence_s:
                    self._emit(assembler.flush())
                continue
            last_input = now
            for line in assembler.feed(data):
                self._emit(line)

    def _emit(self, line: RawLine | None) -> None:
        if line is not None:
            self._deliver_bytes(line.data, line.length)
