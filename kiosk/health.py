"""What the kiosk's devices and session say about themselves, for the hall: the state source of
the telemetry and of the ``status`` command (kiosk/services/telemetry.py).

    reading = read_devices(devices)       # blocks: a printer status query (the health thread)
    health.record_devices(reading)
    health.record_session(session)        # the UI thread, on every session change
    health()                              # any thread: the latest values, plain JSON values

The assembly's health loop (kiosk/assembly.py) reads the devices every few seconds and also
derives the session's hardware faults from the same reading, so the hall and the screen agree.
Nothing here is personal: paper, presence and error codes only.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.camera import Camera
from drivers.printer import PaperStatus, PrinterError
from kiosk.flows.home import Component
from kiosk.flows.session import KioskSession
from kiosk.hardware import KioskDevices

PAPER = {PaperStatus.OK: "ok", PaperStatus.NEAR_END: "low", PaperStatus.OUT: "out"}


@dataclass(frozen=True)
class DeviceReading:
    printer_paper: PaperStatus | None  # None: the printer gave no paper status
    printer_error: str | None  # the driver's error code when it did not
    id_reader_present: bool
    scanner_ok: bool
    camera_ok: bool | None  # None: this camera cannot be checked without taking a picture

    @property
    def printer_ok(self) -> bool:
        """The printer can print (paper low still prints)."""
        return self.printer_paper in (PaperStatus.OK, PaperStatus.NEAR_END)


def read_devices(devices: KioskDevices) -> DeviceReading:
    """Ask each device how it is; never raises for a device fault."""
    paper: PaperStatus | None = None
    error: str | None = None
    try:
        paper = devices.printer.status()
    except PrinterError as exc:  # offline, cover open, a fault, a garbled reply
        error = exc.code
    except Exception:
        error = "printer_fault"
    try:
        reader = devices.identity.status().online
    except Exception:
        reader = False
    try:
        scanner = devices.scanner.connected
    except Exception:
        scanner = False
    return DeviceReading(paper, error, reader, scanner, camera_present(devices.camera))


def camera_present(camera: Camera) -> bool | None:
    """Whether the document camera is there, without taking a picture (the applicant may be
    using it): the simulator's plug, a V4L2 device node; None for any other camera."""
    # a backend's module is imported only when that backend was opened (drivers.camera)
    sim, v4l2 = sys.modules.get("drivers.camera.sim"), sys.modules.get("drivers.camera.v4l2")
    if sim is not None and isinstance(camera, sim.SimCamera):
        return bool(camera.plugged)
    if v4l2 is not None and isinstance(camera, v4l2.V4L2Camera):
        path = camera.settings.device_path
        if path:
            return Path(path).is_char_device()
        try:
            camera.find_device()  # by name: opens each node for its capabilities only
        except Exception:  # CameraOffline, or no linuxpy on this machine
            return False
        return True
    return None


class KioskHealth:
    """The latest device reading and session state, read from any thread. ``on_change`` runs
    (on the recording thread) when a value the hall sees changes."""

    def __init__(self, *, has_locker: bool, on_change: Callable[[], object] | None = None) -> None:
        self._has_locker = has_locker
        self._on_change = on_change
        self._lock = threading.Lock()
        self._devices: dict[str, Any] = {}
        self._session: dict[str, Any] = {}

    def record_devices(self, reading: DeviceReading) -> None:
        paper = reading.printer_paper
        self._record(
            "_devices",
            {
                "printer_paper": PAPER[paper] if paper is not None else None,
                "printer_error": reading.printer_error,
                "id_reader_present": reading.id_reader_present,
                "scanner_ok": reading.scanner_ok,
                "camera_ok": reading.camera_ok,
            },
        )

    def record_session(self, session: KioskSession) -> None:
        """On the UI thread (the session's own). The clerk's lock is reported with the staff
        id of the card that set it and when (no applicant data)."""
        staff_lock = session.staff_lock
        self._record(
            "_session",
            {
                "out_of_service": session.out_of_service_reason is not None,
                "staff_locked": staff_lock is not None,
                "staff_locked_by": staff_lock.staff_id if staff_lock is not None else None,
                "staff_locked_since": staff_lock.since if staff_lock is not None else None,
                "lockerd_reachable": (
                    Component.LOCKER not in session.faults if self._has_locker else None
                ),
            },
        )

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            return {**self._devices, **self._session}

    def _record(self, name: str, values: dict[str, Any]) -> None:
        with self._lock:
            changed = getattr(self, name) != values
            setattr(self, name, values)
        if changed and self._on_change is not None:
            self._on_change()
