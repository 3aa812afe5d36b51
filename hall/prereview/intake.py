"""Chunked, resumable uploads of captured materials, and the submission that ties them together.

An upload is named by the kiosk (``upload_id``, 32 hex) and declared with every chunk: file name,
total size, SHA-256 of the whole file and the chunk size. Each chunk carries its index and its
own SHA-256. A chunk is written to ``uploads/{id}/{index}.part`` (temp file, fsync, rename)
before it is recorded, so a recorded chunk is always on disk; the same chunk sent again is
acknowledged without rewriting. When the last chunk arrives the parts are joined, the whole
file's SHA-256 is checked, and the file moves to ``files/{id}``. The answer to every chunk (and
to a status query, a chunk request without ``index``) lists the chunks still missing, so a kiosk
resumes after a broker restart, a power cut or a hall restart by sending just those.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from hall.errors import RequestInvalid, UploadError
from hall.settings import PreReviewSettings
from hall.store import HallStore, dumps
from hallkiosk.clock import Clock, utc_iso

log = logging.getLogger(__name__)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class UploadState:
    upload_id: str
    complete: bool
    missing: list[int]
    chunks_total: int

    def as_result(self) -> dict[str, object]:
        return {
            "upload_id": self.upload_id,
            "complete": self.complete,
            "missing": self.missing,
            "chunks_total": self.chunks_total,
        }


def _str(args: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = args.get(key)
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise RequestInvalid(f"{key}: missing or malformed")
    return value


def _int(args: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = args.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RequestInvalid(f"{key}: must be an integer in {low}..{high}")
    return value


class UploadIntake:
    def __init__(
        self, store: HallStore, settings: PreReviewSettings, directory: Path, clock: Clock
    ) -> None:
        self._store = store
        self._settings = settings
        self._dir = directory
        self._clock = clock
        (directory / "uploads").mkdir(parents=True, exist_ok=True)
        (directory / "files").mkdir(parents=True, exist_ok=True)

    def file_path(self, upload_id: str) -> Path:
        return self._dir / "files" / upload_id

    def chunk(self, device: str, args: Mapping[str, Any]) -> UploadState:
        """Handle one ``prereview.upload`` request: a chunk, or (no ``index``) a status query."""
        upload_id = _str(args, "upload_id", _HEX32)
        if "index" not in args:
            return self.state(upload_id)
        s = self._settings
        file_name = _str(args, "file_name", _FILE_NAME)
        total = _int(args, "total_bytes", 1, s.max_file_bytes)
        chunk_bytes = _int(args, "chunk_bytes", 1, s.max_chunk_bytes)
        whole_sha = _str(args, "sha256", _SHA256)
        chunks_total = -(-total // chunk_bytes)
        index = _int(args, "index", 0, chunks_total - 1)
        chunk_sha = _str(args, "chunk_sha256", _SHA256)
        try:
            data = base64.b64decode(_str(args, "data"), validate=True)
        except (binascii.Error, ValueError):
            raise UploadError("data: not base64") from None
        expected = chunk_bytes if index < chunks_total - 1 else total - chunk_bytes * index
        if len(data) != expected:
            raise UploadError(f"chunk {index}: {len(data)} bytes, expected {expected}")
        if hashlib.sha256(data).hexdigest() != chunk_sha:
            raise UploadError(f"chunk {index}: checksum mismatch")
        now = utc_iso(self._clock.now())
        with self._store.transaction() as conn:
            row = conn.execute("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO uploads (upload_id, device, file_name, total_bytes, sha256,"
                    " chunk_bytes, chunks_total, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                    (
                        upload_id,
                        device,
                        file_name,
                        total,
                        whole_sha,
                        chunk_bytes,
                        chunks_total,
                        now,
                        now,
                    ),
                )
            else:
                declared = (row["device"], row["total_bytes"], row["sha256"], row["chunk_bytes"])
                if declared != (device, total, whole_sha, chunk_bytes):
                    raise UploadError(f"upload {upload_id}: declaration differs from its start")
                if row["state"] == "complete":
                    return self.state(upload_id)
                if row["state"] == "expired":
                    raise UploadError(f"upload {upload_id} expired; start again")
            seen = conn.execute(
                "SELECT sha256 FROM upload_chunks WHERE upload_id = ? AND idx = ?",
                (upload_id, index),
            ).fetchone()
            if seen is None:
                self._write_part(upload_id, index, data)
                conn.execute(
                    "INSERT INTO upload_chunks (upload_id, idx, size, sha256) VALUES (?, ?, ?, ?)",
                    (upload_id, index, len(data), chunk_sha),
                )
                conn.execute(
                    "UPDATE uploads SET updated_at = ? WHERE upload_id = ?", (now, upload_id)
                )
            elif seen["sha256"] != chunk_sha:
                raise UploadError(f"chunk {index} was already received with other content")
            have = conn.execute(
                "SELECT COUNT(*) AS n FROM upload_chunks WHERE upload_id = ?", (upload_id,)
            ).fetchone()["n"]
            if have == chunks_total:
                self._assemble(conn, upload_id, chunks_total, whole_sha)
        return self.state(upload_id)

    def state(self, upload_id: str) -> UploadState:
        row = self._store.one("SELECT * FROM uploads WHERE upload_id = ?", upload_id)
        if row is None:
            return UploadState(upload_id, False, [], 0)
        have = {
            r["idx"]
            for r in self._store.all("SELECT idx FROM upload_chunks WHERE upload_id = ?", upload_id)
        }
        missing = [i for i in range(row["chunks_total"]) if i not in have]
        return UploadState(upload_id, row["state"] == "complete", missing, row["chunks_total"])

    def _write_part(self, upload_id: str, index: int, data: bytes) -> None:
        folder = self._dir / "uploads" / upload_id
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / f"{index}.part", data)

    def _assemble(self, conn: Any, upload_id: str, chunks_total: int, whole_sha: str) -> None:
        folder = self._dir / "uploads" / upload_id
        digest = hashlib.sha256()
        target = self.file_path(upload_id)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for index in range(chunks_total):
                data = (folder / f"{index}.part").read_bytes()
                digest.update(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != whole_sha:
            tmp.unlink()
            # every chunk matched its own checksum, so the declaration itself was wrong
            conn.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (upload_id,))
            shutil.rmtree(folder, ignore_errors=True)
            raise UploadError(f"upload {upload_id}: whole-file checksum mismatch; send again")
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        conn.execute(
            "UPDATE uploads SET state = 'complete', updated_at = ? WHERE upload_id = ?",
            (utc_iso(self._clock.now()), upload_id),
        )
        shutil.rmtree(folder, ignore_errors=True)
        log.info("upload %s complete (%d chunks)", upload_id, chunks_total)

    def expire(self) -> int:
        """Drop unfinished uploads older than ``upload_expiry_s``."""
        cutoff = utc_iso(self._clock.now() - timedelta(seconds=self._settings.upload_expiry_s))
        rows = self._store.all(
            "SELECT upload_id FROM uploads WHERE state = 'open' AND updated_at < ?", cutoff
        )
        with self._store.transaction() as conn:
            for r in rows:
                conn.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (r["upload_id"],))
                conn.execute(
                    "UPDATE uploads SET state = 'expired' WHERE upload_id = ?", (r["upload_id"],)
                )
        for r in rows:
            shutil.rmtree(self._dir / "uploads" / r["upload_id"], ignore_errors=True)
        return len(rows)

    def describe(self, upload_id: str) -> dict[str, Any]:
        row = self._store.one("SELECT * FROM uploads WHERE upload_id = ?", upload_id)
        if row is None:
            return {"upload_id": upload_id, "state": "unknown"}
        return {
            "upload_id": upload_id,
            "file_name": row["file_name"],
            "total_bytes": row["total_bytes"],
            "sha256": row["sha256"],
            "state": row["state"],
            "path": str(self.file_path(upload_id)),
        }


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["UploadIntake", "UploadState", "dumps"]
