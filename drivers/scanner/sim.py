"""Simulated scanners.

``SimScanner`` is the in-process backend (``backend = "sim"``): ``scan(text)`` and
``scan_bytes(data)`` act as if a code had been read, and go through the same classifier, logging
and delivery as a real scan. ``PtyScannerSim`` plays a serial scanner on the far end of a pty,
so the real serial backend can be pointed at ``sim.url``. ``key_events(text)`` types text the way
a USB-KBW scanner does, for the keyboard-wedge translator.
"""

from __future__ import annotations

import contextlib
import os
import tty
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from drivers.scanner.base import BaseScanner
from drivers.scanner.settings import ScannerSettings
from drivers.scanner.wedge import EV_KEY, KEY_DOWN, KEY_ENTER, KEY_UP, US_KEYMAP

LEFT_SHIFT = 42
EV_SYN = 0


class SimScanner(BaseScanner):
    def __init__(self, settings: ScannerSettings) -> None:
        super().__init__(settings)
        self._plugged = True

    @property
    def source(self) -> str:
        return "sim"

    def start(self) -> None:
        self._set_connected(self._plugged)

    def stop(self) -> None:
        self._set_connected(False)

    # --- hooks ---

    def scan(self, text: str) -> bool:
        """A code is read. False (and nothing delivered) while unplugged."""
        if not self._connected:
            return False
        self._deliver_text(text)
        return True

    def scan_bytes(self, data: bytes) -> bool:
        """Raw bytes as a serial scanner would send them (garbage, non-ASCII, over-long)."""
        if not self._connected:
            return False
        self._deliver_bytes(data)
        return True

    def unplug(self) -> None:
        self._plugged = False
        self._set_connected(False)

    def plug(self) -> None:
        self._plugged = True
        self._set_connected(True)


@dataclass(frozen=True)
class SimKeyEvent:
    """Shaped like ``evdev.InputEvent`` (type, code, value, timestamp())."""

    sec: int
    usec: int
    type: int
    code: int
    value: int

    def timestamp(self) -> float:
        return self.sec + self.usec / 1_000_000


_CHAR_TO_KEY: dict[str, tuple[int, bool]] = {}
for _code, (_plain, _shifted) in sorted(US_KEYMAP.items()):
    # prefer the main block over the keypad (lower codes come first)
    _CHAR_TO_KEY.setdefault(_plain, (_code, False))
    _CHAR_TO_KEY.setdefault(_shifted, (_code, _shifted != _plain))
del _code, _plain, _shifted


def key_events(
    text: str,
    *,
    start_s: float = 1_700_000_000.0,
    step_s: float = 0.002,
    end: int | None = KEY_ENTER,
) -> list[SimKeyEvent]:
    """Key down/up events (with shift and SYN reports) that type ``text`` on a US layout.

    ``end`` is the key code pressed after the text (None for none). Characters a US keyboard
    cannot type raise ``ValueError``.
    """
    events: list[SimKeyEvent] = []
    t = start_s

    def emit(code: int, value: int) -> None:
        nonlocal t
        usec_total = round(t * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        events.append(SimKeyEvent(sec, usec, EV_KEY, code, value))
        events.append(SimKeyEvent(sec, usec, EV_SYN, 0, 0))
        t += step_s

    for ch in text:
        try:
            code, shifted = _CHAR_TO_KEY[ch]
        except KeyError:
            raise ValueError(f"a US keyboard cannot type {ch!r}") from None
        if shifted:
            emit(LEFT_SHIFT, KEY_DOWN)
        emit(code, KEY_DOWN)
        emit(code, KEY_UP)
        if shifted:
            emit(LEFT_SHIFT, KEY_UP)
    if end is not None:
        emit(end, KEY_DOWN)
        emit(end, KEY_UP)
    return events


class PtyScannerSim:
    """A serial scanner on the master side of a pty; point the serial backend at ``url``.

    ``url`` is a symlink to the pty's slave, so ``unplug()`` then ``plug()`` gives a new pty
    behind the same name, the way a USB-serial scanner comes back after a replug.
    """

    def __init__(self, link_path: str | Path, *, line_end: bytes = b"\r") -> None:
        self.url = str(link_path)
        self.line_end = line_end
        self._master: int | None = None
        self._slave: int | None = None
        self.plug()

    def plug(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave = master, slave
        link = Path(self.url)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(os.ttyname(slave))

    def unplug(self) -> None:
        """The cable is pulled: the pty closes and the name points nowhere."""
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            Path(self.url).unlink()

    def scan(self, text: str) -> None:
        self.scan_bytes(text.encode("ascii") + self.line_end)

    def scan_bytes(self, data: bytes) -> None:
        if self._master is None:
            raise ConnectionError("the simulated scanner is unplugged")
        view = memoryview(data)
        while view:
            written = os.write(self._master, view)
            view = view[written:]

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
