"""Pre-review submissions: resumable chunked uploads, and the spool that keeps them on the kiosk
until the hall has accepted them.

The protocol (docs/hall.md "Pre-review"): each file is an upload named by the kiosk
(``upload_id``, 32 hex); every chunk repeats the declaration (``file_name``, ``total_bytes``,
``sha256``, ``chunk_bytes``) and carries ``index``, ``chunk_sha256`` and ``data`` (base64). A
request with just ``upload_id`` asks which chunks are missing, so an upload is resumed by
sending only those. When every file is complete, ``prereview.submit`` (idempotent on the
kiosk's ``submission_key``) gives the receipt number.

The spool makes this survive anything: ``save`` writes each file under
``{spool_dir}/{submission_key}/{upload_id}`` (temp file, fsync, rename, fsync of the directory)
and then one fsynced row per submission and file in ``kiosk.db``. Whoever sends (the flow's
call, or the background retry) holds the submission's lock; chunks come from the spooled file.
After the hall accepted the submit the files are deleted and the row keeps the receipt number
(the phone number is dropped).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hallkiosk.clock import Clock, utc_iso
from kiosk.flows.base import KioskError
from kiosk.services.hall_gateway import (
    HallUnreachable,
    MaterialFile,
    PreReviewReceipt,
    PreReviewSubmission,
)
from kiosk.services.store import KioskStore

log = logging.getLogger(__name__)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A chunk the hall did not record (an answer lost, then a status query) is sent again; after
# this many status rounds without progress the hall is treated as unreachable for now.
MAX_ROUNDS = 3

Call = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


class SubmissionInvalid(KioskError, ValueError):
    """A submission the kiosk built wrongly (a screen bug); nothing was stored or sent."""

    code = "prereview_invalid"
    message_zh = "材料提交内容有误，请重新操作或联系工作人员。"
    message_en = "The submission is not complete. Please start again or contact staff."


@dataclass(frozen=True)
class UploadProgress:
    """One chunk the hall acknowledged. Runs on the sending thread (never the UI thread)."""

    submission_key: str
    file_index: int  # 0-based, of files_total
    files_total: int
    chunk_index: int
    chunks_total: int
    complete: bool  # this file is complete at the hall


@dataclass
class UploadStats:
    chunks_sent: int = 0
    status_queries: int = 0
    submits: int = 0


@dataclass(frozen=True)
class FileToSend:
    upload_id: str
    file_name: str
    total_bytes: int
    sha256: str
    chunk_bytes: int
    read: Callable[[int, int], bytes]  # (offset, size) -> bytes

    @property
    def chunks_total(self) -> int:
        return -(-self.total_bytes // self.chunk_bytes)

    def chunk(self, index: int) -> bytes:
        offset = index * self.chunk_bytes
        return self.read(offset, min(self.chunk_bytes, self.total_bytes - offset))


def check_submission(submission: PreReviewSubmission) -> None:
    problems = []
    if not _HEX32.match(submission.submission_key):
        problems.append("submission_key: 32 lower-case hex characters")
    if not submission.files:
        problems.append("files: at least one")
    for f in submission.files:
        if not _FILE_NAME.match(f.file_name):
            problems.append(f"file_name {f.file_name!r}: 1-64 of A-Z a-z 0-9 _ . -")
        if not f.data:
            problems.append(f"{f.file_name}: empty")
    if problems:
        raise SubmissionInvalid("; ".join(problems))


def upload_file(
    call: Call,
    upload: FileToSend,
    stats: UploadStats,
    on_chunk: Callable[[int, bool], None] | None = None,
) -> None:
    """Bring one upload to complete at the hall, sending only the chunks it lacks. Raises
    ``HallUnreachable`` (try again later) or ``HallRefusal`` (the hall will not take it)."""
    for _round in range(MAX_ROUNDS):
        stats.status_queries += 1
        state = call("prereview.upload", {"upload_id": upload.upload_id})
        if state.get("complete"):
            return
        known = int(state.get("chunks_total") or 0)
        missing = [int(i) for i in state.get("missing") or []] if known else []
        if not known:  # the hall has never heard of it: everything
            missing = list(range(upload.chunks_total))
        for index in missing:
            data = upload.chunk(index)
            answer = call(
                "prereview.upload",
                {
                    "upload_id": upload.upload_id,
                    "file_name": upload.file_name,
                    "total_bytes": upload.total_bytes,
                    "sha256": upload.sha256,
                    "chunk_bytes": upload.chunk_bytes,
                    "index": index,
                    "chunk_sha256": hashlib.sha256(data).hexdigest(),
                    "data": base64.b64encode(data).decode("ascii"),
                },
            )
            stats.chunks_sent += 1
            complete = bool(answer.get("complete"))
            if on_chunk is not None:
                on_chunk(index, complete)
            if complete:
                return
    raise HallUnreachable(f"upload {upload.upload_id} still incomplete after {MAX_ROUNDS} rounds")


def submit_args(
    submission_key: str,
    *,
    matter_code: str,
    phone: str,
    identity_hash: str | None,
    id_masked: str | None,
    name_masked: str | None,
    files: Sequence[tuple[str, str]],  # (item_id, upload_id)
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "submission_key": submission_key,
        "matter_code": matter_code,
        "phone": phone,
        "files": [{"item_id": item, "upload_id": upload} for item, upload in files],
    }
    for key, value in (
        ("identity_hash", identity_hash),
        ("id_masked", id_masked),
        ("name_masked", name_masked),
    ):
        if value is not None:
            args[key] = value
    return args


def new_upload_id() -> str:
    return os.urandom(16).hex()


# -- the spool ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpooledFile:
    position: int
    item_id: str
    upload: FileToSend
    complete: bool


@dataclass(frozen=True)
class Spooled:
    submission_key: str
    matter_code: str
    phone: str | None
    identity_hash: str | None
    id_masked: str | None
    name_masked: str | None
    created_at: datetime
    state: str  # pending / submitted / refused
    receipt_no: str | None
    submitted_at: datetime | None
    error_code: str | None
    files: tuple[SpooledFile, ...]

    def receipt(self) -> PreReviewReceipt:
        return PreReviewReceipt(
            submission_key=self.submission_key,
            receipt_no=self.receipt_no,
            queued=self.state == "pending",
            submitted_at=self.submitted_at or self.created_at,
        )


class PreReviewSpool:
    def __init__(self, store: KioskStore, directory: Path, clock: Clock, chunk_bytes: int) -> None:
        self._store = store
        self._dir = directory
        self._clock = clock
        self.chunk_bytes = chunk_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Directories with no pending row: files written before a crash that came before the
        row, or left after a submit; the applicant never got a receipt for them."""
        pending = {
            r["submission_key"]
            for r in self._store.all(
                "SELECT submission_key FROM kiosk_prereviews WHERE state = 'pending'"
            )
        }
        for entry in self._dir.iterdir():
            if entry.is_dir() and entry.name not in pending:
                shutil.rmtree(entry, ignore_errors=True)

    @contextmanager
    def sending(self, key: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the submission's send lock; yields False if ``wait`` is off and it is taken."""
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        got = lock.acquire(blocking=wait)
        try:
            yield got
        finally:
            if got:
                lock.release()

    def save(self, submission: PreReviewSubmission) -> Spooled:
        """Store the submission durably (files fsynced, then the rows); an existing key is
        returned as it is, never stored twice."""
        key = submission.submission_key
        existing = self.get(key)
        if existing is not None:
            return existing
        folder = self._dir / key
        folder.mkdir(mode=0o700, exist_ok=True)
        rows = []
        for position, f in enumerate(submission.files):
            upload_id = new_upload_id()
            _write_durably(folder / upload_id, f.data)
            rows.append(
                (
                    key,
                    position,
                    f.item_id,
                    f.file_name,
                    upload_id,
                    len(f.data),
                    hashlib.sha256(f.data).hexdigest(),
                    self.chunk_bytes,
                )
            )
        _fsync_dir(folder)
        _fsync_dir(self._dir)
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO kiosk_prereviews (submission_key, matter_code, phone, identity_hash,"
                " id_masked, name_masked, created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?,"
                " 'pending')",
                (
                    key,
                    submission.matter_code,
                    submission.phone,
                    submission.identity_hash,
                    submission.id_masked,
                    submission.name_masked,
                    utc_iso(self._clock.now()),
                ),
            )
            conn.executemany(
                "INSERT INTO kiosk_prereview_files (submission_key, position, item_id, file_name,"
                " upload_id, total_bytes, sha256, chunk_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        saved = self.get(key)
        assert saved is not None
        return saved

    def get(self, key: str) -> Spooled | None:
        row = self._store.one("SELECT * FROM kiosk_prereviews WHERE submission_key = ?", key)
        if row is None:
            return None
        files = self._store.all(
            "SELECT * FROM kiosk_prereview_files WHERE submission_key = ? ORDER BY position", key
        )
        return Spooled(
            submission_key=key,
            matter_code=row["matter_code"],
            phone=row["phone"],
            identity_hash=row["identity_hash"],
            id_masked=row["id_masked"],
            name_masked=row["name_masked"],
            created_at=self._local(row["created_at"]),
            state=row["state"],
            receipt_no=row["receipt_no"],
            submitted_at=self._local(row["submitted_at"]) if row["submitted_at"] else None,
            error_code=row["error_code"],
            files=tuple(
                SpooledFile(
                    position=f["position"],
                    item_id=f["item_id"],
                    upload=FileToSend(
                        upload_id=f["upload_id"],
                        file_name=f["file_name"],
                        total_bytes=f["total_bytes"],
                        sha256=f["sha256"],
                        chunk_bytes=f["chunk_bytes"],
                        read=self._reader(key, f["upload_id"]),
                    ),
                    complete=bool(f["complete"]),
                )
                for f in files
            ),
        )

    def pending(self) -> list[Spooled]:
        keys = self._store.all(
            "SELECT submission_key FROM kiosk_prereviews WHERE state = 'pending'"
            " ORDER BY created_at, submission_key"
        )
        out = [self.get(r["submission_key"]) for r in keys]
        return [s for s in out if s is not None]

    def file_path(self, key: str, upload_id: str) -> Path:
        return self._dir / key / upload_id

    def _reader(self, key: str, upload_id: str) -> Callable[[int, int], bytes]:
        path = self.file_path(key, upload_id)

        def read(offset: int, size: int) -> bytes:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(size)

        return read

    def _local(self, stored: str) -> datetime:
        return datetime.fromisoformat(stored).astimezone(self._clock.tz)

    def attempted(self, key: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE kiosk_prereviews SET attempts = attempts + 1 WHERE submission_key = ?",
                (key,),
            )

    def file_complete(self, key: str, position: int) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE kiosk_prereview_files SET complete = 1"
                " WHERE submission_key = ? AND position = ?",
                (key, position),
            )

    def submitted(self, key: str, receipt_no: str, submitted_at: datetime) -> Spooled:
        """The hall accepted the submit: keep the receipt, forget the phone, delete the files."""
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE kiosk_prereviews SET state = 'submitted', receipt_no = ?,"
                " submitted_at = ?, phone = NULL WHERE submission_key = ?",
                (receipt_no, utc_iso(submitted_at), key),
            )
        shutil.rmtree(self._dir / key, ignore_errors=True)
        done = self.get(key)
        assert done is not None
        return done

    def refused(self, key: str, code: str) -> None:
        """The hall will never take it: the files and the phone go."""
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE kiosk_prereviews SET state = 'refused', error_code = ?, phone = NULL"
                " WHERE submission_key = ?",
                (code, key),
            )
        shutil.rmtree(self._dir / key, ignore_errors=True)


def in_memory(files: Sequence[MaterialFile], chunk_bytes: int) -> list[tuple[str, FileToSend]]:
    """(item_id, upload) for files sent straight from memory (no spool)."""
    return [
        (
            f.item_id,
            FileToSend(
                upload_id=new_upload_id(),
                file_name=f.file_name,
                total_bytes=len(f.data),
                sha256=hashlib.sha256(f.data).hexdigest(),
                chunk_bytes=chunk_bytes,
                read=_slicer(f.data),
            ),
        )
        for f in files
    ]


def _slicer(data: bytes) -> Callable[[int, int], bytes]:
    def read(offset: int, size: int) -> bytes:
        return data[offset : offset + size]

    return read


def _write_durably(path: Path, data: bytes) -> None:
    """Temp file (owner only: these are scanned documents), fsync, rename."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
