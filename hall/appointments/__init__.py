"""Appointments (预约): import from the booking platform (records, importer, http_import,
settings); the book of bookings and check-in lives in ``hall.appointments.book``."""

from hall.appointments.http_import import AppointmentImportServer, read_token
from hall.appointments.importer import ImportResult, RowError, parse_csv, parse_json
from hall.appointments.records import (
    AppointmentImportError,
    AppointmentRecord,
    AppointmentRecordError,
    ImportServerBindError,
    ImportServerConfigError,
    ImportServerStateError,
)
from hall.appointments.settings import AppointmentImportSettings

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
