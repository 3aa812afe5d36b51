"""The kiosk's devices, opened from ``[kiosk.identity]``, ``[kiosk.printer]``, ``[kiosk.scanner]``,
``[kiosk.camera]``, ``[kiosk.voice]`` and ``[kiosk.gpio]`` (simulators by default).

    devices = open_devices(settings)
    devices.scanner.start()             # listening is the app's choice
    ...
    devices.close()                     # reverse order; every output to its safe state

Only the drivers' factories are used (``drivers/``), so a laptop without pyscard, evdev,
linuxpy or lgpio opens the simulators. The identity reader hashes with the hall secret
(``[kiosk] identity_key_file``); without one installed (the embedded default) a random key is
created, which the embedded hall in the same data directory shares.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.camera import Camera, open_camera
from drivers.gpio import GpioBoard
from drivers.identity import IdentityReader, open_reader
from drivers.printer import TicketPrinter, open_printer
from drivers.scanner import Scanner, open_scanner
from drivers.voice import Voice, open_voice
from hallkiosk.privacy import IdentityHasher, ensure_key_file
from kiosk.settings import KioskSettings

log = logging.getLogger(__name__)


@dataclass
class KioskDevices:
    identity: IdentityReader
    printer: TicketPrinter
    scanner: Scanner
    camera: Camera
    voice: Voice
    gpio: GpioBoard
    _closers: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self) -> None:
        """Close every device, the last opened first; one failing does not keep the others
        open. Closing twice is harmless."""
        self._closers.close()


def _guarded(name: str, close: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            close()
        except Exception:
            log.exception("closing the %s failed", name)

    return run


def open_devices(settings: KioskSettings) -> KioskDevices:
    """Every device of ``settings``; if one fails to open, those already open are closed."""
    kiosk = settings.kiosk
    ensure_key_file(settings.identity_key_path)
    hasher = IdentityHasher.from_file(settings.identity_key_path)
    with contextlib.ExitStack() as stack:
        identity = open_reader(kiosk.identity, hasher)
        stack.callback(_guarded("identity reader", identity.close))
        printer = open_printer(kiosk.printer)
        stack.callback(_guarded("printer", printer.close))
        scanner = open_scanner(kiosk.scanner)
        stack.callback(_guarded("scanner", scanner.stop))
        camera = open_camera(kiosk.camera)
        stack.callback(_guarded("camera", camera.close))
        voice = open_voice(kiosk.voice)
        stack.callback(_guarded("voice", voice.close))
        gpio = GpioBoard(kiosk.gpio)
        stack.callback(_guarded("gpio", gpio.close))
        devices = KioskDevices(identity, printer, scanner, camera, voice, gpio)
        devices._closers = stack.pop_all()
        return devices
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns
