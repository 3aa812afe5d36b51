"""Scanner settings: which backend, how to find the device, where a scan ends, what it may be.

Composed by the kiosk as ``[kiosk.scanner]`` with sub-tables ``evdev``, ``serial`` and
``formats``. Every value is range-checked; a backend's required keys are checked here too, so a
wrong file fails at start-up, not at the first scan.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from hallkiosk.config import StrictModel

ScannerBackend = Literal["sim", "evdev", "serial"]
# Key that ends a scan in keyboard-wedge mode; "none" = the silence timeout alone ends it.
EndKey = Literal["enter", "tab", "none"]
# Line end of a serial scanner; "any" ends a scan on CR or LF and skips empty lines, so CR, LF
# and CR LF suffixes all work without knowing the scanner's setting.
LineEnd = Literal["cr", "lf", "crlf", "any"]

HostName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
    ),
]


class EvdevSettings(StrictModel):
    """A scanner in USB keyboard-wedge mode ("USB-KBW"), read through evdev.

    At least one selector must be set; every selector that is set must match. ``device_path`` is
    best when it is a stable ``/dev/input/by-id/…-event-kbd`` link.
    """

    device_path: Annotated[str, Field(max_length=256)] = ""
    device_name: Annotated[str, Field(max_length=128)] = ""  # case-insensitive substring
    phys: Annotated[str, Field(max_length=128)] = ""  # prefix, e.g. "usb-0000:01:00.0-1.3"
    vendor_id: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None
    product_id: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None
    # Exclusive access, so the scanner's keystrokes never reach the UI or a console.
    grab: bool = True
    end_key: EndKey = "enter"

    def has_selector(self) -> bool:
        return bool(
            self.device_path
            or self.device_name
            or self.phys
            or self.vendor_id is not None
            or self.product_id is not None
        )


class SerialSettings(StrictModel):
    """A scanner on a serial line (USB-CDC "virtual COM" or RS232), one scan per line."""

    url: Annotated[str, Field(max_length=256)] = ""
    baud: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    line_end: LineEnd = "any"


class FormatSettings(StrictModel):
    """What a scan may be. The formats themselves are fixed; see docs/drivers/scanner.md."""

    # Longest scan accepted, in characters (bytes on a serial line); longer is refused unread.
    max_length: Annotated[int, Field(ge=32, le=2048)] = 512
    booking_prefix: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "YY"
    # Hosts whose https booking links are accepted; empty = the URL form is refused.
    booking_url_hosts: tuple[HostName, ...] = ()
    booking_url_param: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")] = "yyh"

    @model_validator(mode="before")
    @classmethod
    def _hosts_from_list(cls, data: object) -> object:
        # TOML arrays arrive as lists, which strict mode refuses for a tuple
        if isinstance(data, dict) and isinstance(data.get("booking_url_hosts"), list):
            data = {**data, "booking_url_hosts": tuple(data["booking_url_hosts"])}
        return data


class ScannerSettings(StrictModel):
    backend: ScannerBackend = "sim"
    # A scan with no end key / line end is complete after this much silence. Scanners type a
    # whole code within a few ms per character, people far slower.
    silence_end_ms: Annotated[int, Field(ge=20, le=5_000)] = 150
    # How often to look for the device again after it went away or was never there.
    reconnect_interval_ms: Annotated[int, Field(ge=100, le=60_000)] = 2_000
    # Scans waiting for ``read``; when full the oldest is dropped (nobody wants a stale scan).
    queue_size: Annotated[int, Field(ge=1, le=256)] = 16
    evdev: EvdevSettings = EvdevSettings()
    serial: SerialSettings = SerialSettings()
    formats: FormatSettings = FormatSettings()

    @model_validator(mode="after")
    def _backend_needs(self) -> Self:
        if self.backend == "evdev" and not self.evdev.has_selector():
            raise ValueError(
                "backend 'evdev' needs evdev.device_path, device_name, phys or vendor_id/product_id"
            )
        if self.backend == "serial" and not self.serial.url:
            raise ValueError("backend 'serial' needs serial.url")
        return self

    @property
    def silence_end_s(self) -> float:
        return self.silence_end_ms / 1000

    @property
    def reconnect_interval_s(self) -> float:
        return self.reconnect_interval_ms / 1000
