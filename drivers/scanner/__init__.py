"""QR / barcode scanners: one interface, keyboard-wedge and serial backends, a simulator.

    scanner = open_scanner(ScannerSettings(backend="serial", serial=SerialSettings(url=...)))
    scanner.when_scanned = on_scan            # called on the reader thread with a Scan
    scanner.when_rejected = on_rejected       # ... with a ScanRejected (plain zh/en message)
    with scanner:
        scan = scanner.read(timeout_s=30)     # or pull: Scan(kind, value, raw_length, source)

Every scan is untrusted input: ``drivers.scanner.formats.classify`` checks length, charset,
format and check digit, and nothing but a ``Scan`` or a ``ScanRejected`` comes out of it.
"""

from __future__ import annotations

from drivers.scanner.base import Scanner
from drivers.scanner.errors import (
    CheckDigitMismatch,
    CodeNotRecognised,
    ScanBadCharacters,
    ScannerError,
    ScannerOffline,
    ScannerTimeout,
    ScanRejected,
    ScanTooLong,
)
from drivers.scanner.formats import Scan, ScanKind, classify
from drivers.scanner.settings import (
    EvdevSettings,
    FormatSettings,
    ScannerSettings,
    SerialSettings,
)


def open_scanner(settings: ScannerSettings) -> Scanner:
    """The backend the settings name; call ``start()`` (or use ``with``) to begin listening."""
    if settings.backend == "evdev":
        from drivers.scanner.wedge import WedgeScanner  # noqa: PLC0415

        return WedgeScanner(settings)
    if settings.backend == "serial":
        from drivers.scanner.serial_line import SerialScanner  # noqa: PLC0415

        return SerialScanner(settings)
    from drivers.scanner.sim import SimScanner  # noqa: PLC0415

    return SimScanner(settings)


__all__ = [
    "CheckDigitMismatch",
    "CodeNotRecognised",
    "EvdevSettings",
    "FormatSettings",
    "Scan",
    "ScanBadCharacters",
    "ScanKind",
    "ScanRejected",
    "ScanTooLong",
    "Scanner",
    "ScannerError",
    "ScannerOffline",
    "ScannerSettings",
    "ScannerTimeout",
    "SerialSettings",
    "classify",
    "open_scanner",
]
