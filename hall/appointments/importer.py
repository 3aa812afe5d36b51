"""Parse a booking platform's appointment export (CSV or JSON) into AppointmentRecords.

Parsing never raises on bad data: every problem becomes a ``RowError`` and the good rows are
still returned, so the caller decides between a partial import and none.

Privacy: the raw ID number is hashed and masked while its row is parsed and is then dropped.
No error message quotes a cell's value (a shifted column can put an ID number or a name into
any cell); messages name the row, the field and what was expected.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import ClassVar, Final, TypeVar

from hall.appointments.records import (
    AREA_RE,
    BOOKING_CODE_RE,
    MATTER_CODE_RE,
    MAX_NAME_CHARS,
    MAX_SLOT,
    MAX_TEXT_CHARS,
    MOBILE_RE,
    AppointmentRecord,
    AppointmentStatus,
)
from hall.appointments.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS
from hallkiosk.privacy import (
    IdentityHasher,
    gb11643_check_digit,
    mask_id_number,
    mask_name,
)

_log = logging.getLogger(__name__)
_Bad = Callable[[str, str], None]  # records a RowError for the current row

FIELDS: Final = (
    "booking_code",
    "id_number",
    "name",
    "matter_code",
    "matter_name",
    "area",
    "slot_start",
    "slot_end",
    "phone",
    "place",
    "status",
)
REQUIRED_FIELDS: Final = FIELDS[:8]

# CSV header names, compared after trimming, lower-casing and dropping '*' required markers.
HEADER_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "booking_code": ("预约号", "预约编号", "预约码"),
    "id_number": ("身份证号", "身份证号码", "证件号码"),
    "name": ("姓名", "申请人姓名"),
    "matter_code": ("事项编码", "事项代码"),
    "matter_name": ("事项名称",),
    "area": ("区域", "业务区域"),
    "slot_start": ("开始时间", "预约开始时间"),
    "slot_end": ("结束时间", "预约结束时间"),
    "phone": ("手机号", "手机号码"),
    "place": ("地点", "办理地点"),
    "status": ("状态", "预约状态"),
}
_HEADER_TO_FIELD: Final[Mapping[str, str]] = {
    alias: name for name, aliases in HEADER_ALIASES.items() for alias in (name, *aliases)
}
STATUS_ALIASES: Final[Mapping[str, AppointmentStatus]] = {
    "booked": "booked",
    "已预约": "booked",
    "预约成功": "booked",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "已取消": "cancelled",
}
# Row 0 is the file as a whole; in CSV, row 1 is the header row.
FILE_FIELD: Final = "file"
HEADER_FIELD: Final = "header"
ROW_FIELD: Final = "row"

_EXCEL_TIME = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:\s+|T)(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?$"
)
_HAS_TIME = re.compile(r"\d[T ]\d{1,2}(?::?\d{2})")
_EXCEL_NUMBER = re.compile(r"^\d(?:\.\d+)?E\+?\d+$", re.IGNORECASE)
_LONG_DIGITS = re.compile(r"\d{6,}")


@dataclass(frozen=True)
class RowError:
    """``row`` counts like a spreadsheet (CSV header = 1) or a JSON list (first item = 1)."""

    row: int
    field: str
    message: str
    # how the position is named in messages and in ``as_dict`` (the case import counts lines)
    unit: ClassVar[str] = "row"

    def __str__(self) -> str:
        return f"{self.unit} {self.row}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {self.unit: self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class ImportResult:
    records: list[AppointmentRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rejected_rows(self) -> list[int]:
        """Data rows that produced no record (file and header problems not counted)."""
        return sorted({e.row for e in self.errors if e.field not in (FILE_FIELD, HEADER_FIELD)})


def parse_csv(
    data: bytes,
    *,
    hasher: IdentityHasher,
    tz: tzinfo,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ImportResult:
    """UTF-8 (BOM or not) or GB18030 CSV with a header row naming the columns."""
    if len(data) > max_bytes:
        return _fatal(f"is {len(data)} bytes, more than the limit of {max_bytes}")
    text = _decode_csv(data)
    if isinstance(text, _Problem):
        return _fatal(text.message)
    if not text.strip():
        return _fatal("is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    rows: list[tuple[int, dict[str, str | None]]] = []
    errors: list[RowError] = []
    data_rows = 0
    try:
        numbered = enumerate(reader, start=1)
        header = next(((n, c) for n, c in numbered if _non_blank(c)), None)
        if header is None:
            return _fatal("is empty")
        names, header_errors = _map_header(*header)
        if header_errors:
            return ImportResult([], header_errors)
        for row_no, cells in numbered:
            if not _non_blank(cells):
                continue  # blank and all-empty lines (Excel pads with ",,,,")
            data_rows += 1
            if data_rows > max_rows:
                return _fatal(f"has more than {max_rows} rows (the limit)")
            if len(cells) > len(names) and _non_blank(cells[len(names) :]):
                errors.append(
                    RowError(
                        row_no,
                        ROW_FIELD,
                        f"has {len(cells)} cells but the header names {len(names)} columns "
                        "(a comma inside an unquoted cell?)",
                    )
                )
                continue
            values = {
                name: (cells[i].strip() or None) if i < len(cells) else None
                for i, name in enumerate(names)
            }
            rows.append((row_no, values))
    except csv.Error as exc:
        # csv's messages describe the syntax ("line contains NUL"), never the content
        return _fatal(f"is not valid CSV near line {reader.line_num}: {exc}")
    return _finish("csv", _build_all(rows, hasher, tz), errors)


def parse_json(
    data: bytes,
    *,
    hasher: IdentityHasher,
    tz: tzinfo,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ImportResult:
    """A UTF-8 JSON list of objects with the English keys, or ``{"appointments": [...]}``."""
    if len(data) > max_bytes:
        return _fatal(f"is {len(data)} bytes, more than the limit of {max_bytes}")
    try:
        doc = json.loads(data.decode("utf-8-sig"), object_pairs_hook=_object_without_repeats)
    except UnicodeDecodeError:
        return _fatal("is not UTF-8 (JSON must be UTF-8)")
    except _RepeatedKey as exc:
        return _fatal(f"an object repeats the key {_label(exc.key)}")
    except json.JSONDecodeError as exc:
        return _fatal(f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return _fatal("is not valid JSON: nested too deeply")
    if isinstance(doc, dict):
        if set(doc) != {"appointments"} or not isinstance(doc["appointments"], list):
            return _fatal('must be a list of appointments or {"appointments": [...]}, nothing else')
        items: list[object] = doc["appointments"]
    elif isinstance(doc, list):
        items = doc
    else:
        return _fatal('must be a list of appointments or {"appointments": [...]}')
    if len(items) > max_rows:
        return _fatal(f"has more than {max_rows} rows (the limit)")
    unknown: dict[str, int] = {}
    for n, item in enumerate(items, start=1):
        if isinstance(item, dict):
            for key in item:
                if key not in FIELDS:
                    unknown.setdefault(key, n)
    if unknown:
        listed = ", ".join(f"{_label(k)} (first in row {n})" for k, n in unknown.items())
        return _fatal(f"unknown keys: {listed}; the keys are: {', '.join(FIELDS)}")
    rows: list[tuple[int, dict[str, str | None]]] = []
    errors: list[RowError] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(RowError(n, ROW_FIELD, f"must be an object, not {_json_type(item)}"))
            continue
        values: dict[str, str | None] = {}
        bad = False
        for name in FIELDS:
            value = item.get(name)
            if value is None:
                values[name] = None
            elif isinstance(value, str):
                values[name] = value.strip() or None
            else:
                errors.append(RowError(n, name, f"must be a string, not {_json_type(value)}"))
                bad = True
        if not bad:
            rows.append((n, values))
    return _finish("json", _build_all(rows, hasher, tz), errors)


# --- decoding and header -------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    message: str


def _decode_csv(data: bytes) -> str | _Problem:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _Problem(
            "is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8' or plain CSV instead"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Excel on Chinese Windows saves "CSV" in the ANSI code page (GBK, within GB18030)
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return _Problem("is neither UTF-8 nor GB18030 text")


def _delimiter(text: str) -> str:
    first = text.lstrip("\r\n").split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _non_blank(cells: Iterable[str]) -> bool:
    return any(c.strip() for c in cells)


def _map_header(row: int, header: list[str]) -> tuple[list[str], list[RowError]]:
    """Column index -> field name, or the header's problems (each reported once)."""
    while header and not header[-1].strip():
        header = header[:-1]  # Excel exports trailing empty columns
    names: list[str] = []
    unknown: list[str] = []
    seen: dict[str, int] = {}
    repeated: list[str] = []
    for i, cell in enumerate(header, start=1):
        label = cell.strip()
        name = _HEADER_TO_FIELD.get(label.strip("*").strip().lower())
        if name is None:
            unknown.append(f"column {i} {_label(label)}" if label else f"column {i} (empty)")
            names.append("")
            continue
        if name in seen:
            repeated.append(f"{name} (columns {seen[name]} and {i})")
        seen.setdefault(name, i)
        names.append(name)
    if not seen:
        # Probably no header row at all: the first row is data, so quote none of it.
        message = (
            "the first row names no known column; the file must start with a header row "
            "(see docs/hall-appointments-import.md)"
        )
        return [], [RowError(row, HEADER_FIELD, message)]
    problems: list[RowError] = []
    if unknown:
        message = (
            f"unknown columns: {', '.join(unknown)}; known: {', '.join(FIELDS)} "
            "or their Chinese names"
        )
        problems.append(RowError(row, HEADER_FIELD, message))
    if repeated:
        problems.append(RowError(row, HEADER_FIELD, f"repeated columns: {', '.join(repeated)}"))
    missing = [n for n in REQUIRED_FIELDS if n not in seen]
    if missing:
        message = f"missing required columns: {', '.join(missing)}"
        problems.append(RowError(row, HEADER_FIELD, message))
    return names, problems


def _label(text: str) -> str:
    """A header or key name for a message, unless it looks like data (long digit runs)."""
    if len(text) > 40 or _LONG_DIGITS.search(text):
        return "(name not shown: it looks like data)"
    return repr(text)


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("repeated key")
        self.key = key


def _object_without_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(key)
        out[key] = value
    return out


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "a string"


# --- rows ------------------------------------------------------------------------------------


def _build_all(
    rows: list[tuple[int, dict[str, str | None]]], hasher: IdentityHasher, tz: tzinfo
) -> Iterator[tuple[int, AppointmentRecord | None, list[RowError], str | None]]:
    for row_no, values in rows:
        yield (row_no, *_build(row_no, values, hasher, tz))


R = TypeVar("R")


def drop_repeated(
    records: dict[int, R],
    rows_of_key: Mapping[str, list[int]],
    report: Callable[[int, str], object],
) -> None:
    """A key (booking code, case number) in more than one row: which copy is right is unknown,
    so none of them is imported, and each row is reported."""
    for rows in rows_of_key.values():
        if len(rows) > 1:
            listed = ", ".join(str(n) for n in rows)
            for row in rows:
                report(row, f"appears in more than one row ({listed})")
                records.pop(row, None)


def _finish(
    kind: str,
    built: Iterable[tuple[int, AppointmentRecord | None, list[RowError], str | None]],
    errors: list[RowError],
) -> ImportResult:
    records: dict[int, AppointmentRecord] = {}
    rows_of_code: dict[str, list[int]] = {}
    for row_no, record, row_errors, code in built:
        errors.extend(row_errors)
        if record is not None:
            records[row_no] = record
        if code is not None:
            rows_of_code.setdefault(code, []).append(row_no)
    drop_repeated(
        records,
        rows_of_code,
        lambda row_no, message: errors.append(RowError(row_no, "booking_code", message)),
    )
    errors.sort(key=lambda e: e.row)  # stable: a row's errors keep field order
    result = ImportResult([records[n] for n in sorted(records)], errors)
    _log.info(
        "appointment import (%s): %d records, %d errors in %d rows",
        kind,
        len(result.records),
        len(errors),
        len({e.row for e in errors}),
    )
    return result


def _fatal(message: str) -> ImportResult:
    _log.info("appointment import refused: file %s", message)
    return ImportResult([], [RowError(0, FILE_FIELD, message)])


def _build(
    row: int, values: Mapping[str, str | None], hasher: IdentityHasher, tz: tzinfo
) -> tuple[AppointmentRecord | None, list[RowError], str | None]:
    """One row to a record. Returns the booking code when it is valid, for duplicate checks."""
    errors: list[RowError] = []

    def bad(name: str, message: str) -> None:
        errors.append(RowError(row, name, message))

    for name in REQUIRED_FIELDS:
        if values.get(name) is None:
            bad(name, "is required")

    booking_code = _unexcel(values.get("booking_code"))
    if booking_code is not None and not BOOKING_CODE_RE.match(booking_code):
        bad("booking_code", "must be 4-32 characters of A-Z, a-z, 0-9 and -")
        booking_code = None

    identity: tuple[str, str] | None = None
    raw_id = _unexcel(values.get("id_number"))
    if raw_id is not None:
        outcome = _identity(raw_id, hasher)
        if isinstance(outcome, _Problem):
            bad("id_number", outcome.message)
        else:
            identity = outcome
    del raw_id  # the raw number leaves this frame only as hash and mask

    name_masked: str | None = None
    raw_name = values.get("name")
    if raw_name is not None:
        name = " ".join(raw_name.split())
        if len(name) > MAX_NAME_CHARS or not name.isprintable():
            bad("name", f"must be 1-{MAX_NAME_CHARS} characters without control codes")
        else:
            name_masked = mask_name(name)
    del raw_name

    matter_code = _unexcel(values.get("matter_code"))
    if matter_code is not None and not MATTER_CODE_RE.match(matter_code):
        bad("matter_code", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
    matter_name = _text(values.get("matter_name"), "matter_name", bad)
    area = values.get("area")
    if area is not None and not AREA_RE.match(area):
        bad("area", "must be a business area id: 1-32 characters of a-z, 0-9 and -")

    start = _time(values.get("slot_start"), "slot_start", tz, bad)
    end = _time(values.get("slot_end"), "slot_end", tz, bad)
    if start is not None and end is not None:
        if end <= start:
            bad("slot_end", "must be after slot_start")
        elif end - start > MAX_SLOT:
            bad("slot_end", "must be at most 24 hours after slot_start")

    phone = _phone(_unexcel(values.get("phone")))
    if isinstance(phone, _Problem):
        bad("phone", phone.message)
    place = _text(values.get("place"), "place", bad)

    status: AppointmentStatus = "booked"
    raw_status = values.get("status")
    if raw_status is not None:
        found = STATUS_ALIASES.get(raw_status.lower())
        if found is None:
            bad("status", "must be booked (已预约) or cancelled (已取消)")
        else:
            status = found

    if errors:
        errors.sort(key=lambda e: FIELDS.index(e.field))  # report in column order
        return None, errors, booking_code
    assert booking_code is not None and identity is not None and name_masked is not None
    assert matter_code is not None and matter_name is not None and area is not None
    assert start is not None and end is not None and not isinstance(phone, _Problem)
    record = AppointmentRecord(
        booking_code=booking_code,
        matter_code=matter_code,
        matter_name=matter_name,
        area=area,
        slot_start=start,
        slot_end=end,
        identity_hash=identity[0],
        id_masked=identity[1],
        name_masked=name_masked,
        phone=phone,
        place=place,
        status=status,
    )
    return record, [], booking_code


def _unexcel(value: str | None) -> str | None:
    """Undo the tricks people use to keep Excel from turning codes into numbers."""
    if value is None:
        return None
    if value.startswith('="') and value.endswith('"') and len(value) >= 3:
        value = value[2:-1]
    value = value.lstrip("'").strip()
    return value or None


def _identity(raw: str, hasher: IdentityHasher) -> tuple[str, str] | _Problem:
    value = raw.replace(" ", "").upper()
    shape_ok = len(value) == 18 and value[:17].isdigit() and value[17] in "0123456789X"
    if not shape_ok:
        if "*" in value:
            return _Problem("is masked; the import needs the full number to match ID cards")
        if _EXCEL_NUMBER.match(value):
            return _Problem(
                "was turned into a number by Excel (like 3.30106E+17); export the column as text"
            )
        return _Problem("must be an 18-character resident ID number: 17 digits, then a digit or X")
    if gb11643_check_digit(value[:17]) != value[17]:
        return _Problem("check digit does not match")
    return hasher.hash_id_number(value), mask_id_number(value)


def _phone(value: str | None) -> str | _Problem | None:
    if value is None:
        return None
    digits = value.replace(" ", "").replace("-", "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not MOBILE_RE.match(digits):
        return _Problem("must be an 11-digit mainland mobile number (1, then 3-9, then 9 digits)")
    return digits


def _text(value: str | None, name: str, bad: _Bad) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())  # full-width spaces, NBSP and line breaks from Excel cells
    if len(text) > MAX_TEXT_CHARS or not text.isprintable():
        bad(name, f"must be 1-{MAX_TEXT_CHARS} characters without control codes")
        return None
    return text


def _time(value: str | None, name: str, tz: tzinfo, bad: _Bad) -> datetime | None:
    if value is None:
        return None
    outcome = _parse_time(value, tz)
    if isinstance(outcome, _Problem):
        bad(name, outcome.message)
        return None
    return outcome


def _parse_time(text: str, tz: tzinfo) -> datetime | _Problem:
    form = _Problem(
        "must be a date and time like 2024-05-06 09:30, 2024/5/6 9:30 or 2024-05-06T09:30:00+08:00"
    )
    try:
        match = _EXCEL_TIME.match(text)
        if match:
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
            moment = datetime(y, mo, d, h, mi, s)  # noqa: DTZ001 - zone attached just below
        elif _HAS_TIME.search(text):
            moment = datetime.fromisoformat(text)
        else:
            return form
    except ValueError:
        return form
    if not 2000 <= moment.year <= 2099:
        return _Problem("year must be between 2000 and 2099")
    if moment.tzinfo is None:
        early, late = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
        if early.utcoffset() != late.utcoffset():
            return _Problem(
                "falls in a daylight-saving change of the hall's time zone; give a UTC offset"
            )
        return early
    return moment.astimezone(tz)
