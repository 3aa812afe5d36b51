"""Submissions and the department's side: list, show, accept, return (一次性告知).

A submission is created from complete uploads by ``prereview.submit``; the kiosk names it with a
key of its own, so a resent submit after a lost answer gives the same receipt, not a second
submission. A return must list every missing or faulty item in one go; a submission is decided
once, and the applicant is told through the notification queue in the same transaction.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from hall.errors import RequestInvalid, SubmissionNotFound, UploadError
from hall.notify.queue import enqueue
from hall.prereview.intake import UploadIntake
from hall.settings import PreReviewSettings
from hall.store import HallStore, dumps, from_iso
from hallkiosk.clock import Clock, utc_iso

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[0-9a-f]{32}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_PHONE = re.compile(r"^1[3-9]\d{9}$")


class AlreadyDecided(RequestInvalid):
    code = "prereview_already_decided"
    message_zh = "该申请已处理。"
    message_en = "This submission has already been decided."


@dataclass(frozen=True)
class Submission:
    id: str
    receipt_no: str
    matter_code: str
    id_masked: str | None
    name_masked: str | None
    phone_masked: str | None
    device: str
    files: list[dict[str, str]]
    submitted_at: str
    state: str
    decided_at: str | None
    decided_by: str | None
    return_items: list[str]
    note: str | None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def _local_iso(text: str | None, tz: tzinfo) -> str | None:
    """A stored UTC time as ISO 8601 with the hall's offset (e.g. ``…T09:30:00+08:00``)."""
    return from_iso(text).astimezone(tz).isoformat() if text else None


def _submission(r: sqlite3.Row, tz: tzinfo) -> Submission:
    """A submission as the kiosk and staff see it: times in the hall's zone (``tz``)."""
    return Submission(
        id=r["id"],
        receipt_no=r["receipt_no"],
        matter_code=r["matter_code"],
        id_masked=r["id_masked"],
        name_masked=r["name_masked"],
        phone_masked=mask_phone(r["phone"]),
        device=r["device"],
        files=json.loads(r["files"]),
        submitted_at=_local_iso(r["submitted_at"], tz) or "",
        state=r["state"],
        decided_at=_local_iso(r["decided_at"], tz),
        decided_by=r["decided_by"],
        return_items=json.loads(r["return_items"] or "[]"),
        note=r["note"],
    )


class PreReviewDesk:
    def __init__(
        self,
        store: HallStore,
        settings: PreReviewSettings,
        intake: UploadIntake,
        clock: Clock,
    ) -> None:
        self._store = store
        self._settings = settings
        self._intake = intake
        self._clock = clock

    def catalog(self) -> list[dict[str, object]]:
        return [m.model_dump() for m in self._settings.matters]

    # -- kiosk side --------------------------------------------------------------------------

    def submit(self, device: str, args: Mapping[str, Any]) -> Submission:
        key = args.get("submission_key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise RequestInvalid("submission_key: 32 hex characters")
        existing = self._store.one("SELECT * FROM submissions WHERE id = ?", key)
        if existing is not None:
            return _submission(existing, self._clock.tz)
        matter_code = args.get("matter_code")
        matter = self._settings.matter(matter_code) if isinstance(matter_code, str) else None
        if matter is None:
            raise RequestInvalid(f"unknown matter {matter_code!r}")
        identity_hash = args.get("identity_hash")
        if identity_hash is not None and (
            not isinstance(identity_hash, str) or not _HASH.match(identity_hash)
        ):
            raise RequestInvalid("identity_hash: 64 hex characters")
        phone = args.get("phone")
        if not isinstance(phone, str) or not _PHONE.match(phone):
            raise RequestInvalid("phone: an 11-digit mobile number")
        files = args.get("files")
        if not isinstance(files, list) or not files or len(files) > self._settings.max_files:
            raise RequestInvalid(f"files: 1..{self._settings.max_files} entries")
        checked: list[dict[str, str]] = []
        item_ids = {i.id for i in matter.items}
        for entry in files:
            if not isinstance(entry, dict):
                raise RequestInvalid("files: each entry is an object")
            item, upload_id = entry.get("item_id"), entry.get("upload_id")
            if item not in item_ids or not isinstance(upload_id, str):
                raise RequestInvalid(f"files: unknown item {item!r}")
            if not self._intake.state(upload_id).complete:
                raise UploadError(f"upload {upload_id} for item {item} is not complete")
            checked.append({"item_id": str(item), "upload_id": upload_id})
        missing = [
            i.id for i in matter.items if i.required and i.id not in {f["item_id"] for f in checked}
        ]
        if missing:
            raise RequestInvalid(f"required items missing: {', '.join(missing)}")
        now = self._clock.now()
        with self._store.transaction() as conn:
            day = now.astimezone(self._clock.tz).strftime("%Y%m%d")
            count = conn.execute(
                "SELECT COUNT(*) AS n FROM submissions WHERE receipt_no LIKE ?", (f"YS{day}%",)
            ).fetchone()["n"]
            receipt_no = f"YS{day}{count + 1:05d}"
            conn.execute(
                "INSERT INTO submissions (id, receipt_no, matter_code, identity_hash, id_masked,"
                " name_masked, phone, device, files, submitted_at, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                (
                    key,
                    receipt_no,
                    matter.code,
                    identity_hash,
                    _opt_str(args, "id_masked"),
                    _opt_str(args, "name_masked"),
                    phone,
                    device,
                    dumps(checked),
                    utc_iso(now),
                ),
            )
        log.info("pre-review %s submitted for %s from %s", receipt_no, matter.code, device)
        return self.get(key)

    def status(self, args: Mapping[str, Any]) -> list[Submission]:
        """Case status look-up by receipt number or identity hash."""
        receipt_no, identity_hash = args.get("receipt_no"), args.get("identity_hash")
        if isinstance(receipt_no, str):
            rows = self._store.all("SELECT * FROM submissions WHERE receipt_no = ?", receipt_no)
        elif isinstance(identity_hash, str):
            rows = self._store.all(
                "SELECT * FROM submissions WHERE identity_hash = ? ORDER BY submitted_at DESC"
                " LIMIT 20",
                identity_hash,
            )
        else:
            raise RequestInvalid("a status look-up needs receipt_no or identity_hash")
        return [_submission(r, self._clock.tz) for r in rows]

    # -- department side ---------------------------------------------------------------------

    def list(self, state: str | None = None) -> list[Submission]:
        if state:
            rows = self._store.all(
                "SELECT * FROM submissions WHERE state = ? ORDER BY submitted_at", state
            )
        else:
            rows = self._store.all("SELECT * FROM submissions ORDER BY submitted_at")
        return [_submission(r, self._clock.tz) for r in rows]

    def get(self, key_or_receipt: str) -> Submission:
        row = self._store.one(
            "SELECT * FROM submissions WHERE id = ? OR receipt_no = ?",
            key_or_receipt,
            key_or_receipt,
        )
        if row is None:
            raise SubmissionNotFound(f"no submission {key_or_receipt!r}")
        return _submission(row, self._clock.tz)

    def accept(self, key_or_receipt: str, *, by: str, note: str = "") -> Submission:
        return self._decide(key_or_receipt, "accepted", by=by, items=(), note=note)

    def return_(
        self, key_or_receipt: str, *, by: str, items: Sequence[str], note: str = ""
    ) -> Submission:
        cleaned = [i.strip() for i in items if i.strip()]
        if not cleaned:
            raise RequestInvalid(
                "a return lists every missing or faulty item at once (一次性告知): none given"
            )
        return self._decide(key_or_receipt, "returned", by=by, items=cleaned, note=note)

    def _decide(
        self, key_or_receipt: str, state: str, *, by: str, items: Sequence[str], note: str
    ) -> Submission:
        if not by.strip():
            raise RequestInvalid("the deciding staff member must be named")
        now = utc_iso(self._clock.now())
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM submissions WHERE id = ? OR receipt_no = ?",
                (key_or_receipt, key_or_receipt),
            ).fetchone()
            if row is None:
                raise SubmissionNotFound(f"no submission {key_or_receipt!r}")
            if row["state"] != "pending":
                raise AlreadyDecided(f"{row['receipt_no']} is already {row['state']}")
            conn.execute(
                "UPDATE submissions SET state = ?, decided_at = ?, decided_by = ?,"
                " return_items = ?, note = ? WHERE id = ?",
                (state, now, by, dumps(list(items)), note or None, row["id"]),
            )
            matter = self._settings.matter(row["matter_code"])
            params: dict[str, str | list[str]] = {
                "receipt_no": row["receipt_no"],
                "matter": matter.name_zh if matter else row["matter_code"],
            }
            if state == "returned":
                params["items"] = list(items)
            enqueue(
                conn,
                kind=f"prereview_{state}",
                recipient_phone=row["phone"],
                params=params,
                dedup_key=f"prereview:{row['id']}:{state}",
            )
        log.info("pre-review %s %s by %s", row["receipt_no"], state, by)
        return self.get(row["id"])


def _opt_str(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    return value[:64] if isinstance(value, str) else None


__all__ = ["AlreadyDecided", "PreReviewDesk", "Submission", "from_iso", "mask_phone"]
