"""Cases (办件) whose certificates staff load into the lockers, and who may collect them.

The ``cases`` table holds, per case number, where the pickup SMS goes (``phone``) and who the
certificate is for: the keyed identity hash (HMAC of the ID number under the hall's identity
key, the same hash the kiosks compute from an ID card) and the masked name (张*明). Never the ID
number or the full name (DESIGN §4).

- ``parse_cases_csv`` reads the case system's export (``hall case import FILE.csv``): a header
  row naming ``case_number``, ``phone``, ``id_number`` and ``name`` (or their Chinese names),
  UTF-8 (GB18030 from Excel is read too). Each ID number is checked (GB 11643 check digit),
  hashed and masked while its row is parsed and then dropped; each name is masked. A bad row
  becomes a ``CaseRowError`` with its line in the file and the good rows are still returned.
  No message quotes a cell (a shifted column can put an ID number into any cell).
- ``CaseBook.store`` writes records (a re-import updates), ``CaseBook.register`` one case by
  hand (``hall case add``), ``CaseBook.lookup`` answers a kiosk's ``case.lookup`` and audits it
  in ``case_lookups`` (device, staff id, case number, found; no personal data).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from hall.appointments.importer import (
    RowError,
    _decode_csv,
    _delimiter,
    _identity,
    _label,
    _non_blank,
    _phone,
    _Problem,
    _unexcel,
    drop_repeated,
)
from hall.appointments.records import IDENTITY_HASH_RE, MOBILE_RE
from hall.appointments.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS
from hall.errors import HallError, RequestInvalid
from hall.store import HallStore
from hallkiosk.clock import Clock, utc_iso
from hallkiosk.privacy import IdentityHasher, mask_name

log = logging.getLogger(__name__)

# lockerd's deposit.start takes these shapes (locker/service.py); a case or a staff id it would
# refuse is refused here first.
CASE_NUMBER_RE: Final = re.compile(r"^[A-Za-z0-9-]{4,40}$")
STAFF_ID_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
# lockerd keeps a masked name of 1-32 characters with a '*' in it, so a name has 2-32.
MIN_NAME_CHARS: Final = 2
MAX_NAME_CHARS: Final = 32

FIELDS: Final = ("case_number", "phone", "id_number", "name")
HEADER_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "case_number": ("办件编号", "办件号", "案件编号", "受理编号", "受理号"),
    "phone": ("手机号", "手机号码", "联系电话"),
    "id_number": ("身份证号", "身份证号码", "证件号码"),
    "name": ("姓名", "申请人姓名", "申请人"),
}
_HEADER_TO_FIELD: Final[Mapping[str, str]] = {
    alias: name for name, aliases in HEADER_ALIASES.items() for alias in (name, *aliases)
}
FILE_FIELD: Final = "file"
HEADER_FIELD: Final = "header"
ROW_FIELD: Final = "row"
LOOKUP_ARGS: Final = frozenset({"case_number", "staff_id"})


class CaseError(HallError):
    code = "case_error"
    message_zh = "办件数据有误，请核对后重试。"
    message_en = "The case data is not valid. Please check it and try again."


class CaseInvalid(CaseError, ValueError):
    """A case or recipient given by hand (``hall case add``) that cannot be stored."""

    code = "case_invalid"


@dataclass(frozen=True)
class CaseRowError(RowError):
    """A ``RowError`` whose position is the file's line the row starts on (the header is
    usually line 1); 0 is the file as a whole."""

    unit: ClassVar[str] = "line"

    @property
    def line(self) -> int:
        return self.row


@dataclass(frozen=True)
class CaseRecord:
    """One case and its recipient: keyed hash and masked name only (checked here)."""

    case_number: str
    phone: str
    identity_hash: str
    name_masked: str
    line: int = 0

    def __post_init__(self) -> None:
        if not CASE_NUMBER_RE.match(self.case_number):
            raise CaseInvalid("case_number: 4-40 letters, digits or '-'")
        if not MOBILE_RE.match(self.phone):
            raise CaseInvalid("phone: an 11-digit mainland mobile number")
        if not IDENTITY_HASH_RE.match(self.identity_hash):
            raise CaseInvalid("identity_hash: 64 lower-case hex characters")
        if not 1 <= len(self.name_masked) <= MAX_NAME_CHARS or "*" not in self.name_masked:
            raise CaseInvalid("name_masked: a masked name such as 张*明")


@dataclass(frozen=True)
class CaseImport:
    records: list[CaseRecord] = field(default_factory=list)
    errors: list[CaseRowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)  # header labels, as shown

    @property
    def rejected_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors if e.field not in (FILE_FIELD, HEADER_FIELD)})


# -- parsing ------------------------------------------------------------------------------------


def parse_cases_csv(
    data: bytes,
    *,
    hasher: IdentityHasher,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> CaseImport:
    """The case system's CSV export: header row, then one case per row. Never raises on bad
    data; file and header problems import nothing, row problems only skip their row."""
    if len(data) > max_bytes:
        return _fatal(f"is {len(data)} bytes, more than the limit of {max_bytes}")
    text = _decode_csv(data)
    if isinstance(text, _Problem):
        return _fatal(text.message)
    if not text.strip():
        return _fatal("is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    names: list[str] | None = None
    ignored: list[str] = []
    rows: list[tuple[int, dict[str, str | None]]] = []
    errors: list[CaseRowError] = []
    try:
        while True:
            line = reader.line_num + 1  # a quoted cell may span lines: where the row starts
            cells = next(reader, None)
            if cells is None:
                break
            if not _non_blank(cells):
                continue
            if names is None:
                mapped = _map_header(line, cells)
                if isinstance(mapped, CaseRowError):
                    return CaseImport([], [mapped])
                names, ignored = mapped
                continue
            if len(rows) >= max_rows:
                return _fatal(f"has more than {max_rows} rows (the limit)")
            if len(cells) > len(names) and _non_blank(cells[len(names) :]):
                errors.append(
                    CaseRowError(
                        line,
                        ROW_FIELD,
                        f"has {len(cells)} cells but the header names {len(names)} columns "
                        "(a comma inside an unquoted cell?)",
                    )
                )
                continue
            rows.append(
                (
                    line,
                    {
                        name: (cells[i].strip() or None) if i < len(cells) else None
                        for i, name in enumerate(names)
                        if name
                    },
                )
            )
    except csv.Error as exc:
        # csv's messages describe the syntax ("line contains NUL"), never the content
        return _fatal(f"is not valid CSV near line {reader.line_num}: {exc}")
    if names is None:
        return _fatal("is empty")
    records: dict[int, CaseRecord] = {}
    lines_of_case: dict[str, list[int]] = {}
    for line, values in rows:
        record, row_errors, case_number = _build(line, values, hasher)
        errors.extend(row_errors)
        if record is not None:
            records[line] = record
        if case_number is not None:
            lines_of_case.setdefault(case_number, []).append(line)
    drop_repeated(
        records,
        lines_of_case,
        lambda line, message: errors.append(CaseRowError(line, "case_number", message)),
    )
    errors.sort(key=lambda e: e.line)  # stable: a row's errors keep column order
    result = CaseImport([records[n] for n in sorted(records)], errors, ignored)
    log.info(
        "case import: %d records, %d errors in %d rows",
        len(result.records),
        len(errors),
        len(result.rejected_lines),
    )
    return result


def _fatal(message: str) -> CaseImport:
    log.info("case import refused: file %s", message)
    return CaseImport([], [CaseRowError(0, FILE_FIELD, message)])


def _map_header(line: int, header: list[str]) -> tuple[list[str], list[str]] | CaseRowError:
    """Column index -> field name ("" for a column that is ignored), and the ignored labels."""
    while header and not header[-1].strip():
        header = header[:-1]  # Excel exports trailing empty columns
    names: list[str] = []
    ignored: list[str] = []
    seen: dict[str, int] = {}
    repeated: list[str] = []
    for i, cell in enumerate(header, start=1):
        label = cell.strip()
        name = _HEADER_TO_FIELD.get(label.strip("*").strip().lower(), "")
        if not name:
            ignored.append(f"column {i} {_label(label)}" if label else f"column {i} (empty)")
        elif name in seen:
            repeated.append(f"{name} (columns {seen[name]} and {i})")
        else:
            seen[name] = i
        names.append(name)
    if not seen:
        return CaseRowError(
            line,
            HEADER_FIELD,
            "the first row names no known column; the file must start with a header row "
            f'naming {", ".join(FIELDS)} (docs/hall.md "Cases")',
        )
    if repeated:
        return CaseRowError(line, HEADER_FIELD, f"repeated columns: {', '.join(repeated)}")
    missing = [n for n in FIELDS if n not in seen]
    if missing:
        return CaseRowError(line, HEADER_FIELD, f"missing required columns: {', '.join(missing)}")
    return names, ignored


def _build(
    line: int, values: Mapping[str, str | None], hasher: IdentityHasher
) -> tuple[CaseRecord | None, list[CaseRowError], str | None]:
    """One row to a record; also the case number when it is valid, for duplicate checks."""
    errors: list[CaseRowError] = []
    for name in FIELDS:
        if values.get(name) is None:
            errors.append(CaseRowError(line, name, "is required"))

    case_number = _unexcel(values.get("case_number"))
    if case_number is not None:
        case_number = case_number.upper()  # as the kiosk's scanner reads the barcode
        if not CASE_NUMBER_RE.match(case_number):
            errors.append(CaseRowError(line, "case_number", "must be 4-40 letters, digits or '-'"))
            case_number = None

    phone = _phone(_unexcel(values.get("phone")))
    if isinstance(phone, _Problem):
        errors.append(CaseRowError(line, "phone", phone.message))
        phone = None

    identity_hash: str | None = None
    raw_id = _unexcel(values.get("id_number"))
    if raw_id is not None:
        outcome = _identity(raw_id, hasher)
        if isinstance(outcome, _Problem):
            errors.append(CaseRowError(line, "id_number", outcome.message))
        else:
            identity_hash = outcome[0]
    del raw_id  # the raw number leaves this frame only as its keyed hash

    name_masked: str | None = None
    raw_name = values.get("name")
    if raw_name is not None:
        masked = _masked_name(raw_name)
        if isinstance(masked, _Problem):
            errors.append(CaseRowError(line, "name", masked.message))
        else:
            name_masked = masked
    del raw_name

    if errors:
        return None, errors, case_number
    assert case_number is not None and phone is not None
    assert identity_hash is not None and name_masked is not None
    record = CaseRecord(case_number, phone, identity_hash, name_masked, line)
    return record, [], case_number


def _masked_name(raw: str) -> str | _Problem:
    name = " ".join(raw.split())  # full-width spaces, NBSP and line breaks from Excel cells
    if not MIN_NAME_CHARS <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        return _Problem(
            f"must be {MIN_NAME_CHARS}-{MAX_NAME_CHARS} characters without control codes"
        )
    if "*" in name:
        return _Problem("is masked; the import needs the full name to mask it the hall's way")
    return mask_name(name)


def recipient(id_number: str, name: str, hasher: IdentityHasher) -> tuple[str, str]:
    """(identity hash, masked name) of a recipient typed in by hand, or ``CaseInvalid``
    (whose text never quotes the input)."""
    outcome = _identity(id_number.strip(), hasher)
    if isinstance(outcome, _Problem):
        raise CaseInvalid(f"id_number: {outcome.message}")
    masked = _masked_name(name)
    if isinstance(masked, _Problem):
        raise CaseInvalid(f"name: {masked.message}")
    return outcome[0], masked


# -- the table --------------------------------------------------------------------------------


class CaseBook:
    def __init__(self, store: HallStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def store(self, records: Sequence[CaseRecord], *, source: str) -> dict[str, int]:
        """Insert or update cases in one transaction: a case already known gets the file's
        phone and recipient. Cases not in the file are kept."""
        now = utc_iso(self._clock.now())
        added = updated = unchanged = 0
        with self._store.transaction() as conn:
            for rec in records:
                old = conn.execute(
                    "SELECT phone, identity_hash, name_masked FROM cases WHERE case_number = ?",
                    (rec.case_number,),
                ).fetchone()
                if old is None:
                    added += 1
                elif (old["phone"], old["identity_hash"], old["name_masked"]) == (
                    rec.phone,
                    rec.identity_hash,
                    rec.name_masked,
                ):
                    unchanged += 1
                    continue
                else:
                    updated += 1
                _upsert(
                    conn,
                    rec.case_number,
                    phone=rec.phone,
                    identity_hash=rec.identity_hash,
                    name_masked=rec.name_masked,
                    source=source,
                    now=now,
                )
        log.info(
            "cases stored (%s): %d added, %d updated, %d unchanged",
            source,
            added,
            updated,
            unchanged,
        )
        return {"added": added, "updated": updated, "unchanged": unchanged}

    def register(
        self,
        case_number: str,
        *,
        phone: str | None,
        source: str,
        identity_hash: str | None = None,
        name_masked: str | None = None,
    ) -> None:
        """One case by hand. The recipient is changed only when given (both together), so a
        new phone number keeps the imported recipient."""
        if (identity_hash is None) != (name_masked is None):
            raise CaseInvalid("a recipient needs both its identity hash and its masked name")
        with self._store.transaction() as conn:
            _upsert(
                conn,
                case_number,
                phone=phone,
                identity_hash=identity_hash,
                name_masked=name_masked,
                source=source,
                now=utc_iso(self._clock.now()),
            )

    def recipient_of(self, case_number: str) -> tuple[str, str] | None:
        """(identity hash, masked name), or None when the case or its recipient is unknown."""
        row = self._store.one(
            "SELECT identity_hash, name_masked FROM cases WHERE case_number = ?", case_number
        )
        if row is None or not row["identity_hash"] or not row["name_masked"]:
            return None
        return str(row["identity_hash"]), str(row["name_masked"])

    def lookup(self, device: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """``case.lookup``: who may collect this case's certificate. Audited (device, staff
        id, case number, found) in the same step; the log names no person."""
        case_number, staff_id = _lookup_args(args)
        found = self.recipient_of(case_number)
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO case_lookups (at, device, staff_id, case_number, found)"
                " VALUES (?, ?, ?, ?, ?)",
                (utc_iso(self._clock.now()), device, staff_id, case_number, int(found is not None)),
            )
        log.info(
            "case.lookup %s by %s on %s: %s",
            case_number,
            staff_id,
            device,
            "found" if found is not None else "not found",
        )
        if found is None:
            return {"found": False}
        return {"found": True, "identity_hash": found[0], "masked_name": found[1]}

    def lookups(self, *, case_number: str | None = None, last: int = 50) -> list[dict[str, Any]]:
        """The newest audited lookups, newest first."""
        where, params = ("WHERE case_number = ?", [case_number]) if case_number else ("", [])
        rows = self._store.all(
            f"SELECT at, device, staff_id, case_number, found FROM case_lookups {where}"  # noqa: S608 - fixed text
            " ORDER BY id DESC LIMIT ?",
            *params,
            last,
        )
        return [
            {
                "at": r["at"],
                "device": r["device"],
                "staff_id": r["staff_id"],
                "case_number": r["case_number"],
                "found": bool(r["found"]),
            }
            for r in rows
        ]


def _upsert(
    conn: sqlite3.Connection,
    case_number: str,
    *,
    phone: str | None,
    identity_hash: str | None,
    name_masked: str | None,
    source: str,
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO cases (case_number, phone, identity_hash, name_masked, source, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (case_number) DO UPDATE SET"
        " phone = excluded.phone,"
        " identity_hash = COALESCE(excluded.identity_hash, cases.identity_hash),"
        " name_masked = COALESCE(excluded.name_masked, cases.name_masked),"
        " source = excluded.source, updated_at = excluded.updated_at",
        (case_number, phone, identity_hash, name_masked, source, now),
    )


def _lookup_args(args: Mapping[str, Any]) -> tuple[str, str]:
    unknown = sorted(k for k in args if k not in LOOKUP_ARGS)
    if unknown:
        listed = ", ".join(_label(str(k)[:64]) for k in unknown[:5])
        raise RequestInvalid(
            f"case.lookup: unknown arguments {listed} (only case_number, staff_id)"
        )
    case_number = args.get("case_number")
    if not isinstance(case_number, str) or not CASE_NUMBER_RE.match(case_number):
        raise RequestInvalid("case_number: required, 4-40 letters, digits or '-'")
    staff_id = args.get("staff_id")
    if not isinstance(staff_id, str) or not STAFF_ID_RE.match(staff_id):
        raise RequestInvalid("staff_id: required, 1-32 letters, digits, '_', '.' or '-'")
    return case_number, staff_id
