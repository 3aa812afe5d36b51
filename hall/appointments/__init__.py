"""Appointments (预约): import from the booking platform (records, importer, http_import,
settings); the book of bookings and check-in lives in ``hall.appointments.book``."""

from typing import TYPE_CHECKING

from hall.appointments.records import (
    AppointmentImportError,
    AppointmentRecord,
    AppointmentRecordError,
    ImportServerBindError,
    ImportServerConfigError,
    ImportServerStateError,
)
from hall.appointments.settings import AppointmentImportSettings
from hallkiosk.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use, not with the settings (hallkiosk/lazy.py)
    from hall.appointments.http_import import AppointmentImportServer, read_token
    from hall.appointments.importer import ImportResult, RowError, parse_csv, parse_json

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "hall.appointments.http_import": (
            "AppointmentImportServer",
            "read_token",
        ),
        "hall.appointments.importer": (
            "ImportResult",
            "RowError",
            "parse_csv",
            "parse_json",
        ),
    },
)

__all__ = [
    "AppointmentImportError",
    "AppointmentImportServer",
    "AppointmentImportSettings",
    "AppointmentRecord",
    "AppointmentRecordError",
    "ImportResult",
    "ImportServerBindError",
    "ImportServerConfigError",
    "ImportServerStateError",
    "RowError",
    "parse_csv",
    "parse_json",
    "read_token",
]
