"""One imported appointment (预约), and the errors of the import side.

A record holds no raw personal identifier: the ID number is only present as its keyed hash
(``identity_hash``) and masked form (``id_masked``), the name only masked. The checks in
``__post_init__`` make that an invariant, so a record built anywhere else keeps it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from hall.errors import HallError

AppointmentStatus = Literal["booked", "cancelled"]
STATUSES: Final = ("booked", "cancelled")

# The platform owns the booking-code format; this only keeps codes printable and bounded.
BOOKING_CODE_RE: Final = re.compile(r"^[A-Za-z0-9-]{4,32}$")
AREA_RE: Final = re.compile(r"^[a-z0-9-]{1,32}$")
# 事项编码 / 实施编码 are letters and digits, sometimes with dots, dashes or underscores.
MATTER_CODE_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Mainland mobile numbers: 11 digits, 1 then 3-9 (no landlines: the hall sends SMS).
MOBILE_RE: Final = re.compile(r"^1[3-9][0-9]{9}$")
IDENTITY_HASH_RE: Final = re.compile(r"^[0-9a-f]{64}$")
# The only shape hallkiosk.privacy.mask_id_number gives a normalised 18-character number.
ID_MASKED_RE: Final = re.compile(r"^[0-9]{4}\*{10}[0-9]{3}[0-9X]$")
MAX_NAME_CHARS: Final = 64
MAX_TEXT_CHARS: Final = 200
# A slot longer than a day is a wrong date in the export, not a real booking.
MAX_SLOT: Final = timedelta(hours=24)


class AppointmentImportError(HallError):
    """Root of the appointment import's errors (under the hall package's root, HallError)."""

    code = "appointment_import_error"
    message_zh = "预约数据导入失败，请联系运维人员。"
    message_en = "Importing appointments failed. Please contact ops."


class AppointmentRecordError(AppointmentImportError, ValueError):
    """A record built with a value that breaks its invariants (a programming error)."""

    code = "appointment_record_invalid"


class ImportServerConfigError(AppointmentImportError, ValueError):
    """The HTTP import cannot start as configured (disabled, token file missing or short)."""

    code = "appointment_import_config"
    message_zh = "预约导入服务配置有误，请联系运维人员。"
    message_en = "The appointment import service is misconfigured. Please contact ops."


class ImportServerBindError(AppointmentImportError, OSError):
    """The HTTP import cannot listen on its address (port taken, address not local)."""

    code = "appointment_import_bind"
    message_zh = "预约导入服务无法启动，请联系运维人员。"
    message_en = "The appointment import service cannot start. Please contact ops."


class ImportServerStateError(AppointmentImportError, RuntimeError):
    """start() twice, or port asked before start()."""

    code = "appointment_import_state"


@dataclass(frozen=True)
class AppointmentRecord:
    booking_code: str
    matter_code: str
    matter_name: str
    area: str
    slot_start: datetime
    slot_end: datetime
    identity_hash: str
    id_masked: str
    name_masked: str
    phone: str | None = None
    place: str | None = None
    status: AppointmentStatus = "booked"

    def __post_init__(self) -> None:
        problems = record_problems(self)
        if problems:
            # Field names only: the values may be personal data.
            raise AppointmentRecordError("invalid AppointmentRecord: " + "; ".join(problems))


def record_problems(record: AppointmentRecord) -> list[str]:
    """``field: reason`` for every broken invariant; never quotes a value."""
    out: list[str] = []
    if not BOOKING_CODE_RE.match(record.booking_code):
        out.append("booking_code: must be 4-32 of A-Z a-z 0-9 -")
    if not MATTER_CODE_RE.match(record.matter_code):
        out.append("matter_code: must be 1-64 of A-Z a-z 0-9 . _ -")
    if not _plain_text(record.matter_name, MAX_TEXT_CHARS):
        out.append(f"matter_name: must be 1-{MAX_TEXT_CHARS} characters without control codes")
    if not AREA_RE.match(record.area):
        out.append("area: must be 1-32 of a-z 0-9 -")
    if record.slot_start.utcoffset() is None or record.slot_end.utcoffset() is None:
        out.append("slot_start/slot_end: must be timezone-aware")
    elif not record.slot_start < record.slot_end <= record.slot_start + MAX_SLOT:
        out.append("slot_end: must be after slot_start and at most 24 hours later")
    if not IDENTITY_HASH_RE.match(record.identity_hash):
        out.append("identity_hash: must be 64 lower-case hex digits (HMAC-SHA256)")
    if not ID_MASKED_RE.match(record.id_masked):
        out.append("id_masked: must be a masked ID number (4 characters, 10 '*', 4 characters)")
    if not record.name_masked or len(record.name_masked) > MAX_NAME_CHARS:
        out.append(f"name_masked: must be 1-{MAX_NAME_CHARS} characters")
    elif len(record.name_masked) > 1 and "*" not in record.name_masked:
        out.append("name_masked: must be masked (hallkiosk.privacy.mask_name)")
    if record.phone is not None and not MOBILE_RE.match(record.phone):
        out.append("phone: must be an 11-digit mainland mobile number")
    if record.place is not None and not _plain_text(record.place, MAX_TEXT_CHARS):
        out.append(f"place: must be 1-{MAX_TEXT_CHARS} characters without control codes")
    if record.status not in STATUSES:
        out.append("status: must be 'booked' or 'cancelled'")
    return out


def _plain_text(value: str, max_chars: int) -> bool:
    return 0 < len(value) <= max_chars and value.isprintable()
